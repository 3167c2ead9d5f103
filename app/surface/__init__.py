"""Loss surfaces: the surface view (2-D, 3-D, sharpness) and its panel."""
