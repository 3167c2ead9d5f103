"""What a race trains on: 2-D test functions and typed expressions, data sets, network models, losses and metrics."""
