"""Optimizers and learning-rate schedules (registries over torch.optim), their hyperparameters, and what one update did (internals)."""
