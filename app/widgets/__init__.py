"""Reusable widgets: the hyperparameter form, tables, curve plots."""
