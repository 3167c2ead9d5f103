"""zoo-startup: the app's first paint with the optimizer zoo installed, against the same app with
the zoo made unimportable.

Ours: bench/startup.py's child (``app.shell.main_window.launch`` in a fresh process, timed from
spawn to the end of the main window's first painted frame) with pytorch-optimizer and
Schedule-Free installed, as ``make run`` installs them. Baseline: the same child with a
``sys.meta_path`` finder in front that refuses both packages, as if they were not installed.
The zoo must be imported lazily (app/runs/zoo_listing.py: on the picker's first open, or in the
background after the first paint), so the two should start alike: ratio = baseline seconds / ours
seconds, goal >= 0.9. Each child also says whether pytorch_optimizer had been imported by its
first paint (it must not have been). Best of ``REPEATS``, interleaved; settings in a temp
XDG_CONFIG_HOME.
"""

from __future__ import annotations

import os
import tempfile

from bench.common import report
from bench.startup import _APP_CHILD, _time_child

REPEATS = 5

# Prints "painted <imports s> <window s> <1 if pytorch_optimizer was imported by then>".
_CHILD = _APP_CHILD.replace(
    'print(f"painted {imported - t_launch:.4f} {now - imported:.4f}", flush=True)',
    'print(f"painted {imported - t_launch:.4f} {now - imported:.4f} '
    '{int(\'pytorch_optimizer\' in sys.modules)}", flush=True)',
)
assert _CHILD != _APP_CHILD, "bench/startup.py's child changed: update the replacement"

_BLOCK_ZOO = r"""
import sys


class _NoZoo:
    # As if the zoo packages were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pytorch_optimizer", "schedulefree"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoZoo())
"""


def run() -> dict:
    with_zoo, without_zoo, imported = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_CONFIG_HOME=tmp, DESCENT_LAB_DATA_DIR=tmp)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        for _ in range(REPEATS):
            t, _line = _time_child(_BLOCK_ZOO + _CHILD, "painted", env)
            without_zoo.append(t)
            t, line = _time_child(_CHILD, "painted", env)
            with_zoo.append(t)
            imported.append(line.split()[3] == "1")
    ours, baseline = min(with_zoo), min(without_zoo)
    eager = any(imported)
    return report(
        "zoo-startup", ours, "s to first paint with the zoo installed", baseline / ours,
        f"{baseline:.2f} s with the zoo unimportable",
        "pytorch_optimizer imported before the first paint!" if eager else
        "pytorch_optimizer not imported by the first paint",
        with_zoo_s=with_zoo, without_zoo_s=without_zoo, zoo_imported_before_paint=eager,
    )
