"""Network races: the problem panel (data set, training, layers), the views (curves, layers, boundaries, comparison), the network diagram."""
