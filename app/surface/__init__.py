"""Loss surfaces: the surface view (map, 3-D, 1-D slices, sharpness), its panel, and the wiring
of its computations to a worker thread."""
