"""Plots: the landscape, loss and lr curves."""
