"""A stand-in for the document in panel tests: remembers each edit and shows the new lab again."""

from __future__ import annotations

from core.lab.format import Lab, validate_lab


class Recorder:
    def __init__(self, panel):
        self.panel = panel
        self.edits: list[tuple[Lab, str]] = []
        panel.lab_edited.connect(self.on_edit)

    def on_edit(self, lab: Lab, description: str) -> None:
        validate_lab(lab)  # whatever the panel emits is a lab the file format accepts
        self.edits.append((lab, description))
        self.panel.set_lab(lab)

    @property
    def last(self) -> Lab:
        return self.edits[-1][0]
