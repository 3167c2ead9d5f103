"""Tools around races: the LR range test, sweeps and fair races on Optuna, and the data of the sweep views."""
