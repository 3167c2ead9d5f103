"""Races: the 2-D function race, the network race and its batched path, their histories and snapshots, devices, headless runs, smoothing and the verdict."""
