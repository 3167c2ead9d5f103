"""Descent Lab's Qt front end: windows, panels, plots, the worker thread. Knows core, never the reverse."""
