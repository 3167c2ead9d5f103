"""Exports: the export dialog, the screenshot taker."""
