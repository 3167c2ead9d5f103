"""The main window and what every window shares: controller, document and undo, recovery, status line, theme, layouts, workers, tool-window base, preflight."""
