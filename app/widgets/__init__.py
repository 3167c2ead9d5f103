"""Reusable widgets: the hyperparameter form, tables, curve plots, the side panels' static
preview plot."""
