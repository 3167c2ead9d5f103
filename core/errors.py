"""The one error type a user's mistake raises in core.

Every check in core (lab files, hyperparameters, schedules, expressions) raises `LabError`
with the *field* it is about, so the GUI can point at the field and the CLI can print one
clear line: ``banana.lab.json: runs[1].params.lr: must be >= 0, got -0.1``.
"""

from __future__ import annotations


class LabError(ValueError):
    """A user's input is wrong: names the field and says what is allowed."""

    def __init__(self, field: str, message: str, source: str = ""):
        self.field = field
        self.message = message
        self.source = source  # the file it came from, when there is one
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [p for p in (self.source, self.field, self.message) if p]
        return ": ".join(parts)

    def within(self, prefix: str) -> LabError:
        """The same error with its field nested under ``prefix`` (e.g. ``runs[2]``)."""
        if not prefix:
            return self
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)._rebuild(self, field=field)

    def from_file(self, source: str) -> LabError:
        """The same error, said of the file ``source``."""
        return type(self)._rebuild(self, source=source)

    def _rebuild(self, **changes) -> LabError:
        err = LabError.__new__(type(self))  # a subclass (core.optim.user_code) stays itself
        LabError.__init__(
            err,
            changes.get("field", self.field),
            changes.get("message", self.message),
            changes.get("source", self.source),
        )
        return err
