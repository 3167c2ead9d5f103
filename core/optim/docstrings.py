"""Argument descriptions read from a class's docstrings, for the tooltips of introspected optimizers.

core/optim/introspect.py asks `docstring_help` for each constructor argument's text. Three
conventions are read: Google (``Args:`` then ``lr (float): Learning rate.``, as
pytorch-optimizer 4 and Schedule-Free write), numpy (``Parameters`` underlined, ``lr : float``
then the text indented below) and Sphinx (``:param lr: float. learning rate.``, as older
pytorch-optimizer wrote, its leading type dropped). Continuation lines join the entry.
"""

from __future__ import annotations

import re
import textwrap

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:?\s*$")
_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_TYPE_PREFIX = re.compile(
    r"^(?:Optional\[)?(?:float|int|bool|str|tuple|Tuple|list|List|dict|Dict|Callable|BETAS|"
    r"OPTIMIZER|PARAMETERS|CLOSURE|DEFAULTS|torch\.\w+)[\w\[\], |]*\]?\.\s+"
)


def docstring_help(cls: type) -> dict[str, str]:
    """Argument name → its description, from the class's and ``__init__``'s docstrings."""
    helps: dict[str, str] = {}
    for doc in (cls.__init__.__doc__, cls.__doc__):
        if doc:
            for key, text in _parse_docstring(doc).items():
                helps.setdefault(key, text)
    return helps


def _parse_docstring(doc: str) -> dict[str, str]:
    lines = textwrap.dedent(doc.expandtabs()).splitlines()
    if lines and lines[0].strip() and not lines[0].startswith(" "):
        # The first line sits right after the quotes; dedent the rest on its own.
        lines = [lines[0], *textwrap.dedent("\n".join(lines[1:])).splitlines()]
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    section_indent: int | None = None
    numpy_style = False
    entry_indent = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        sphinx = _SPHINX.match(stripped)
        if sphinx:
            current = found.setdefault(sphinx.group(1), [])
            current.append(sphinx.group(2))
            section_indent, entry_indent = None, indent
            continue
        if _SECTION.match(stripped):
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            numpy_style = bool(following) and set(following) == {"-"}
            section_indent, entry_indent, current = indent, None, None
            continue
        if section_indent is None:
            if current is not None and stripped and entry_indent is not None and indent > entry_indent:
                current.append(stripped)  # a Sphinx entry's continuation
            elif current is not None and (not stripped or stripped.startswith(":")):
                current = None
            continue
        if not stripped:
            continue
        if set(stripped) == {"-"}:
            continue
        if indent <= section_indent and not numpy_style or (numpy_style and indent < section_indent):
            section_indent, current = None, None  # the section ended
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent:
            entry = _ENTRY.match(stripped)
            if entry:
                current = found.setdefault(entry.group(1), [])
                if not numpy_style:  # numpy puts the type after the colon, the text below
                    current.append(entry.group(3))
                continue
            section_indent, current = None, None  # a new section such as "Examples:"
            continue
        if current is not None:
            current.append(stripped)
    return {key: _clean(" ".join(parts)) for key, parts in found.items() if " ".join(parts).strip()}


def _clean(text: str) -> str:
    text = " ".join(text.split())
    text = _TYPE_PREFIX.sub("", text)  # pytorch-optimizer's old ":param lr: float. learning rate."
    if text:
        text = text[0].upper() + text[1:]
        if not text.endswith((".", "!", "?", ")")):
            text += "."
    return text
