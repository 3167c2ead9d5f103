"""The lessons panel."""
