"""Consent before the user's own optimizer code runs, and the contents the user trusts.

Loading an optimizer class from a ``.py`` file executes it (core/optim/user_code.py), so the
window asks first, once per file *content*: `ConsentDialog` shows the file's path and the SHA-256
of its bytes and asks "Run this code?". Content the user said yes to is remembered in a
`TrustStore` (a small JSON list of SHA-256 digests in the user data folder, written atomically),
so the same bytes are not asked about again — on any path. Edited content has another hash and is
asked about again. `WindowConsent` is the ``consent`` callback core/lab/code.py's `Consent` type
describes: what opening a lab, Add ▸ Optimizer from file… and Reset after an edit all call.

What the dialog shows is found without executing anything (the hash from the file's bytes, the
classes by parsing it with `ast`: `optimizer_classes`).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from core.lab.format import write_atomic
from core.optim.user_code import CodeRef
from core.user_data import user_data_dir

TRUST_FILE_NAME = "trusted_code.json"


def trust_file() -> Path:
    """Where the trusted SHA-256 digests are kept: ``trusted_code.json`` in the user data folder
    (core/user_data.py; ``DESCENT_LAB_TRUST_FILE`` overrides it)."""
    override = os.environ.get("DESCENT_LAB_TRUST_FILE")
    return Path(override) if override else user_data_dir() / TRUST_FILE_NAME


class TrustStore:
    """The SHA-256 digests of code contents the user has allowed to run (see the module text)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else trust_file()

    def trusted(self) -> set[str]:
        """Every trusted digest; an unreadable or malformed file trusts nothing."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        digests = data.get("sha256") if isinstance(data, dict) else None
        return {d for d in digests if isinstance(d, str)} if isinstance(digests, list) else set()

    def is_trusted(self, sha256: str) -> bool:
        return sha256 in self.trusted()

    def trust(self, sha256: str) -> None:
        """Remember ``sha256`` (atomic write: a crash never leaves half a file)."""
        digests = self.trusted() | {sha256}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"sha256": sorted(digests)}, indent=1) + "\n")


def optimizer_classes(path: str | Path) -> list[str]:
    """The classes of a Python file that look like ``torch.optim.Optimizer`` subclasses, found by
    parsing it (nothing runs): a base named ``Optimizer`` or a torch.optim class (``optim.SGD``),
    or a class of the same file that is one. A file whose classes name none of these (a base
    imported from elsewhere) gives all its top-level classes; a file that does not parse, []."""
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    import torch

    torch_classes = {name for name in dir(torch.optim)
                     if isinstance(getattr(torch.optim, name), type)
                     and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)}
    found: list[str] = []
    changed = True
    while changed:  # a subclass of a subclass defined earlier or later in the file
        changed = False
        for node in classes:
            if node.name in found:
                continue
            for base in node.bases:
                last = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if last in torch_classes or last in found:
                    found.append(node.name)
                    changed = True
                    break
    order = [node.name for node in classes]
    return sorted(found, key=order.index) if found else order


class ConsentDialog(QDialog):
    """"Run this code?" for one file content: its path, class and SHA-256, Run / Don't run."""

    def __init__(self, ref: CodeRef, sha256: str, where: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent, objectName="consentDialog")
        self.setWindowTitle("Run this code?")
        self.setModal(True)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(32, 32))
        question = QLabel(objectName="consentQuestion")
        question.setTextFormat(Qt.TextFormat.RichText)
        question.setWordWrap(True)
        what = "file" if ref.kind == "file" else "module"
        question.setText(
            f"<b>Run this code?</b><br>{where or 'The lab'} uses the optimizer class "
            f"<b>{ref.class_name}</b> from this {what}. Loading it runs the Python in it with "
            "your permissions, like running a script. Run it only if you trust where it came "
            "from.")
        layout.addWidget(icon)
        layout.addWidget(question)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.path_label = QLabel(ref.target, objectName="consentPath")
        self.hash_label = QLabel(f"SHA-256 {sha256}", objectName="consentHash")
        for label in (self.path_label, self.hash_label):
            label.setFont(mono)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(label)
        self.remember = QCheckBox("Trust this exact content from now on (it is asked again "
                                  "when the file changes)", objectName="consentRemember")
        self.remember.setChecked(True)
        layout.addWidget(self.remember)
        buttons = QDialogButtonBox()
        self.run_button = buttons.addButton("Run it", QDialogButtonBox.ButtonRole.AcceptRole)
        self.decline_button = buttons.addButton("Don't run",
                                                QDialogButtonBox.ButtonRole.RejectRole)
        self.decline_button.setDefault(True)  # Enter does not run code by accident
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)


class WindowConsent:
    """The window's consent callback ``(ref, sha256) -> bool``: yes for trusted content, else
    the dialog (``ask``, which tests replace). Each answer is kept in ``asked`` (tests read it)."""

    def __init__(self, parent: QWidget, store: TrustStore | None = None):
        self.parent = parent
        self.store = store if store is not None else TrustStore()
        self.where = ""  # what uses the code, for the question ("The lab banana.lab.json")
        self.asked: list[tuple[CodeRef, str, bool]] = []

    def ask(self, ref: CodeRef, sha256: str) -> tuple[bool, bool]:
        """The dialog: (run it?, remember the content?)."""
        dialog = ConsentDialog(ref, sha256, self.where, self.parent)
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        return accepted, dialog.remember.isChecked()

    def __call__(self, ref: CodeRef, sha256: str) -> bool:
        if self.store.is_trusted(sha256):
            return True
        allowed, remember = self.ask(ref, sha256)
        self.asked.append((ref, sha256, allowed))
        if allowed and remember:
            try:
                self.store.trust(sha256)
            except OSError:
                pass  # not remembered: it is asked again next time, nothing worse
        return allowed
