"""Side panels of the main window: the lab editor pieces."""
