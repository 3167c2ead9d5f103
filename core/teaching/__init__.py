"""Lessons with machine-checked claims, and exports (a lab as a standalone PyTorch script, metrics as CSV/JSON)."""
