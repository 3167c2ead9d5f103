"""A lab exported as a standalone PyTorch script (a race's metrics: `core.teaching.metrics_export`).

`export_script` writes a plain Python program (torch and numpy only, nothing of Descent Lab) that
trains the lab's runs exactly as `core.engine.function_race` / `core.engine.network_race` do and writes the same
``metrics.csv`` columns as ``main.py run``, so students can read, run and change it. The tests run
an exported script in a subprocess and compare its numbers with the engine's to 1e-6.

What the script writes out as code:

* the objective of a function lab — a registry function by its own source text (so the formula
  a student reads is the very code that ran), a typed expression by code generated from the
  parser's AST (never by evaluating the text);
* the optimizers (``torch.optim`` classes with the lab's hyperparameters; a zoo optimizer from its
  imported package; the user's own class loaded from its file by path with importlib, which the
  script then needs beside it), the schedules
  (``torch.optim.lr_scheduler`` classes with the values `core.optim.schedules` resolves, stepped once
  per update, negative lr clamped to 0, one-cycle stopped at its end), the divergence rule;
* for network labs: the ``nn.Sequential``, the shared mini-batch order (a seeded ``randperm`` per
  epoch), the per-run dropout random streams, L1/L2 penalties, gradient clipping, evaluation every
  ``eval_every`` steps and early stopping.

What it loads instead (network labs only, from an ``.npz`` beside the script, see `write_script`):
the data set's arrays and the initial weights. Both come from Descent Lab's generators and
initialisers; storing them is the honest way to start from the very same numbers without
re-implementing every data set generator in the script.

Refused with a `LabError` rather than exported wrong: network labs with several seeds (the metrics
are then means over seeds) and any layer the generator does not know. On a network, a closure
optimizer (L-BFGS, SAM) re-evaluates the batch through the script's ``train_step``, and a
matrix optimizer (Muon and its zoo kin) gets the weight matrices with AdamW over the rest, as in
the app.

The pieces: what every script shares (`core.teaching.script_common`), the function script
(`core.teaching.function_script`), the network script (`core.teaching.network_script`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from core.errors import LabError
from core.lab.format import Lab, write_atomic
from core.teaching.function_script import function_script
from core.teaching.network_script import network_arrays, network_script


def default_data_name(script_path: str | os.PathLike) -> str:
    """The data file a network script loads: ``<script stem>.npz`` beside it."""
    return Path(script_path).with_suffix(".npz").name


def export_script(lab: Lab, data_name: str = "lab_data.npz") -> str:
    """The lab as a standalone PyTorch script (source text). Raises `LabError` when unsupported.

    A network script loads its data and initial weights from ``data_name`` beside it: write that
    file with `network_arrays` (or use `write_script`, which writes both).
    """
    if lab.problem.kind == "rl":
        raise LabError("problem.kind", "the script export does not write rl labs yet; "
                       "main.py run writes their numbers, the same as the window's")
    if not lab.enabled_runs():
        raise LabError("runs", "no enabled runs: enable at least one run to export a script")
    for index, run in enumerate(lab.runs):
        # A branch replays its parent and takes over its optimizer state mid-race: refused rather
        # than written as a plain run whose numbers would differ from the app's.
        if run.enabled and run.branch is not None:
            raise LabError(f"runs[{index}].branch",
                           f"the script export does not write branched runs yet ({run.label!r} "
                           f"branches from {run.branch.parent!r} at step {run.branch.step}); "
                           "disable it or export the lab without it")
    if lab.is_network:
        return network_script(lab, data_name)
    return function_script(lab)


def write_script(lab: Lab, path: str | os.PathLike) -> list[Path]:
    """Write the script (and, for network labs, its ``.npz`` beside it) atomically; the paths."""
    path = Path(path)
    data_name = default_data_name(path)
    text = export_script(lab, data_name)
    written = []
    if lab.is_network:
        buffer = io.BytesIO()
        np.savez(buffer, **network_arrays(lab))
        write_atomic(path.with_name(data_name), buffer.getvalue())
        written.append(path.with_name(data_name))
    write_atomic(path, text)
    written.insert(0, path)
    return written
