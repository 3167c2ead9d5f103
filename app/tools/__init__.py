"""Tool windows: sweeps, fair races, the LR range test."""
