"""The lab: its file format (dataclasses, validation, load/save, migration), branches, per-run training controls."""
