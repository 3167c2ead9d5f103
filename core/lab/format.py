"""The lab file: what a race is, as frozen dataclasses, with validation, load/save and migration.

Longer than 600 lines because it is the whole schema of one file format: each dataclass sits
beside the reader and the writer of its keys, so a field is added in one module, not three.

A lab is plain data (``*.lab.json``, documented in docs/lab-format.md). Everything a user can type
into one is checked here, once, for both the GUI and the headless commands: each problem raises
`LabError` naming the field (``runs[1].params.lr``) and what is allowed.

Parsing is strict on purpose: an unknown key is almost always a typo (``"step": 500``) and silently
ignoring it would run a different experiment than the user wrote. The value checks themselves
(`expect`, `check_keys`, ...) live in core/lab/checks.py; a run's ``branch`` is read, written and
checked here with the rest of the file (replaying a branch: core/lab/branches.py).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import LabError
from core.lab.checks import check_keys, expect, finite_float, int_in, show
from core.lab.code import Consent, default_label, optimizer_from_file, optimizer_to_file
from core.problems.rl.spec import RLProblem, rl_problem_from_dict, rl_problem_to_dict

FORMAT = "descent-lab/1"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_STEPS = 1_000_000
MAX_RUNS = 32
MAX_LABEL_CHARS = 60
MAX_COORD = 1e6
MAX_SEEDS = 10  # a network problem's "seeds": each run trained from 1 … 10 seeds
SEED_STRIDE = 1000  # seed s of a network lab uses lab.seed + s·SEED_STRIDE
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

# The colours of runs without an explicit one, in order. The first seven are Paul Tol's
# colour-blind-safe set (bright, with the muted cyan and purple: lighter on a dark plot),
# ordered so that neighbouring runs alternate light and dark (and red and purple, alike on a
# dark plot, are not neighbours): two thin lines of runs 1 and 2 differ in lightness as well
# as hue, so they stay apart in grey and for colour-blind eyes (tests/core/test_run_colors.py
# checks both). Then Tol's muted sand and teal.
RUN_COLORS = (
    "#ee6677", "#88ccee", "#228833", "#ccbb44", "#aa4499", "#bbbbbb", "#4477aa",
    "#ddcc77", "#44aa99",
)


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule: a registry name from core.optim.schedules and its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BranchSpec:
    """A run that replays run ``parent`` up to ``step``, then continues on its own (core.lab.branches)."""

    parent: str  # "from" in the file
    step: int


@dataclass(frozen=True)
class RunSpec:
    """One racer: an optimizer with its hyperparameters and an optional schedule."""

    label: str
    optimizer: str
    params: Mapping[str, Any] = field(default_factory=dict)
    schedule: ScheduleSpec | None = None
    enabled: bool = True
    color: str | None = None
    # Training controls, network problems only (a 2-D function has no data or layers).
    l1: float = 0.0
    l2: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    early_stopping: Mapping[str, Any] | None = None  # {"patience": int, "min_delta": float}
    branch: BranchSpec | None = None  # replay another run up to a step, then go on (timeline)
    # User code only: the SHA-256 of the optimizer's file when the lab was saved (core/lab/code.py).
    code_sha256: str | None = None
    # rl problems with the dqn agent only: Adam-Rel, the optimizer's step counter set to 0 at
    # every target-network update (core/engine/rl_agents.py).
    adam_rel: bool = False


NETWORK_RUN_KEYS = ("l1", "l2", "clip_norm", "clip_value", "early_stopping")


@dataclass(frozen=True)
class NetworkProblem:
    """Train a small network on a data set.

    ``dataset`` and ``model`` are the lab file's mappings, checked by core.problems.datasets and
    core.problems.model_spec; ``batch_size`` None means full batch. ``seeds`` S > 1 trains every run S times:
    seed s (0 … S−1) draws the shared initial weights, the batch order and the dropout streams
    from ``lab.seed + s·SEED_STRIDE`` (the data set keeps its own seed), and the curves show the
    mean ± std over the seeds.
    """

    dataset: Mapping[str, Any] = field(default_factory=lambda: {"name": "moons"})
    model: Mapping[str, Any] = field(
        default_factory=lambda: {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16},
                                            {"act": "relu"}, {"linear": 2}]}
    )
    loss: str = "cross_entropy"
    batch_size: int | None = 64
    eval_every: int = 10
    device: str = "auto"
    seeds: int = 1
    # Steps between measurements of each run's top Hessian eigenvalue; 0 = off (not written).
    sharpness_every: int = 0
    # Cross entropy's class weights: None (off, not written), "balanced" (scikit-learn's
    # n / (k · count_c) over the training split) or one weight per class; core/problems/metrics.py.
    class_weights: str | tuple[float, ...] | None = None

    kind = "network"


@dataclass(frozen=True)
class FunctionProblem:
    """Minimise a 2-D test function from a start point.

    ``function`` is a registry name (``"rosenbrock"``) or a mapping ``{"expression": "..."}``.
    """

    function: str | Mapping[str, Any] = "rosenbrock"
    start: tuple[float, float] | None = None  # None: the function's own default start

    kind = "function"


@dataclass(frozen=True)
class Lab:
    """A whole race: the problem, the runs and how long to run them."""

    name: str = "Untitled lab"
    seed: int = 0
    steps: int = 500
    problem: FunctionProblem | NetworkProblem | RLProblem = field(default_factory=FunctionProblem)
    runs: tuple[RunSpec, ...] = ()
    # Where the lab file lives: relative paths in it (a CSV data set) are read from here.
    # Not part of the lab's identity and never written to the file.
    base_dir: str | None = field(default=None, compare=False)

    @property
    def is_network(self) -> bool:
        return isinstance(self.problem, NetworkProblem)

    @property
    def base_path(self) -> Path | None:
        """``base_dir`` as a Path: the folder a relative path in the lab is read from (None for a
        lab not read from a file: then the current directory, core/problems/datasets/build.py)."""
        return Path(self.base_dir) if self.base_dir else None

    def enabled_runs(self) -> tuple[RunSpec, ...]:
        return tuple(r for r in self.runs if r.enabled)

    def run_color(self, index: int) -> str:
        """The run's own colour, or its place in the default cycle."""
        color = self.runs[index].color
        return color if color else RUN_COLORS[index % len(RUN_COLORS)]

    def run_labelled(self, label: str, field: str = "--run") -> RunSpec:
        """The run called ``label``; a LabError listing the lab's labels if there is none."""
        for run in self.runs:
            if run.label == label:
                return run
        labels = ", ".join(repr(r.label) for r in self.runs)
        raise LabError(field, f"no run labelled {label!r}; the lab's runs are {labels}")

    def with_run(self, index: int, run: RunSpec) -> Lab:
        runs = list(self.runs)
        runs[index] = run
        return replace(self, runs=tuple(runs))


# --------------------------------------------------------------------------------------------
# Reading and checking


def migrate(data: dict) -> dict:
    """Bring an older lab dict up to `FORMAT`; refuse one written by a newer Descent Lab.

    There is only version 1 so far; a future version adds a step ``1 -> 2`` here and keeps
    reading every file ever written.
    """
    fmt = data.get("format", FORMAT)
    if not isinstance(fmt, str) or not fmt.startswith("descent-lab/"):
        raise LabError("format", f'must be "{FORMAT}", got {show(fmt)}')
    try:
        version = int(fmt.split("/", 1)[1])
    except ValueError:
        raise LabError("format", f'must be "{FORMAT}", got {show(fmt)}') from None
    if version > FORMAT_VERSION:
        raise LabError(
            "format",
            f"{fmt} was written by a newer Descent Lab; this version reads up to {FORMAT}",
        )
    if version < 1:
        raise LabError("format", f'must be "{FORMAT}", got {show(fmt)}')
    data = dict(data)
    data["format"] = FORMAT
    return data


def lab_from_dict(data: Any, base_dir: str | os.PathLike | None = None,
                  consent: Consent | None = None) -> Lab:
    """Check a parsed lab file and build the `Lab` it describes, or raise `LabError`.

    ``base_dir`` is the lab file's folder, for relative paths inside it. ``consent`` is asked
    before a run's own optimizer code runs (core/lab/code.py); without it such a lab raises
    `CodeNotTrusted` unless that code was loaded before.
    """
    expect(data, dict, "", "a JSON object")
    data = migrate(data)
    check_keys(data, {"format", "name", "seed", "steps", "problem", "runs"}, {"problem", "runs"}, "")
    name = expect(data.get("name", "Untitled lab"), str, "name", "a string")
    seed = int_in(data.get("seed", 0), "seed", 0, 2**32 - 1)
    steps = int_in(data.get("steps", 500), "steps", 1, MAX_STEPS)
    base = str(base_dir) if base_dir is not None else None
    problem = _problem_from_dict(data["problem"], seed, base)
    runs_data = expect(data["runs"], list, "runs", "a list of runs")
    if len(runs_data) > MAX_RUNS:
        raise LabError("runs", f"at most {MAX_RUNS} runs, got {len(runs_data)}")
    network = isinstance(problem, NetworkProblem)
    runs = tuple(
        _run_from_dict(r, f"runs[{i}]", steps, network, base, consent,
                       rl_dqn=isinstance(problem, RLProblem) and problem.agent == "dqn",
                       function=isinstance(problem, FunctionProblem))
        for i, r in enumerate(runs_data)
    )
    seen: dict[str, int] = {}
    for i, run in enumerate(runs):
        if run.label in seen:
            raise LabError(
                f"runs[{i}].label", f"duplicate label {run.label!r} (also runs[{seen[run.label]}])"
            )
        seen[run.label] = i
    lab = Lab(name=name, seed=seed, steps=steps, problem=problem, runs=runs, base_dir=base)
    check_runs_fit_problem(lab)
    check_branches(lab)
    return lab


def _problem_from_dict(
    data: Any, seed: int, base_dir: str | None
) -> FunctionProblem | NetworkProblem | RLProblem:
    from core.problems.functions import get_function

    expect(data, dict, "problem", "a JSON object")
    kind = data.get("kind")
    if kind == "network":
        return _network_problem_from_dict(data, seed, base_dir)
    if kind == "rl":  # its reader and writer: core/problems/rl/spec.py
        return rl_problem_from_dict(data)
    if kind != "function":
        raise LabError("problem.kind", f'must be "function", "network" or "rl", got {show(kind)}')
    check_keys(data, {"kind", "function", "start"}, {"function"}, "problem")
    function = data["function"]
    get_function(function, field="problem.function")  # raises a precise LabError
    if isinstance(function, dict):
        function = dict(function)
    start = data.get("start")
    if start is not None:
        expect(start, list, "problem.start", "a list [x, y]")
        if len(start) != 2:
            raise LabError("problem.start", f"must be a list [x, y] of two numbers, got {show(start)}")
        start = tuple(finite_float(v, f"problem.start[{i}]", MAX_COORD) for i, v in enumerate(start))
    return FunctionProblem(function=function, start=start)


def _network_problem_from_dict(data: dict, seed: int, base_dir: str | None) -> NetworkProblem:
    from core.engine.devices import DEVICES
    from core.problems.datasets.build import make_dataset
    from core.problems.metrics import check_class_weights, class_weight_values, loss_function
    from core.problems.model_spec import validate_model

    check_keys(
        data,
        {"kind", "dataset", "model", "loss", "batch_size", "eval_every", "device", "seeds",
         "sharpness_every", "class_weights"},
        {"dataset", "model"},
        "problem",
    )
    dataset_spec = expect(data["dataset"], dict, "problem.dataset", "a JSON object")
    # Building the data set checks every field of it and tells the model its input shape.
    dataset = make_dataset(
        dataset_spec, seed, field="problem.dataset",
        base_dir=Path(base_dir) if base_dir else None,
    )
    model_spec = expect(data["model"], dict, "problem.model", "a JSON object")
    validate_model(model_spec, dataset.input_shape, dataset.n_outputs, field="problem.model")
    default_loss = "cross_entropy" if dataset.task == "classification" else "mse"
    loss = expect(data.get("loss", default_loss), str, "problem.loss", "a loss name")
    loss_function(loss, dataset.task, field="problem.loss")
    class_weights = check_class_weights(data.get("class_weights"), dataset.n_classes,
                                        dataset.task)
    class_weight_values(class_weights, dataset.y_train, dataset.n_classes)  # a class missing
    if isinstance(class_weights, list):
        class_weights = tuple(class_weights)
    batch_size = data.get("batch_size", 64)
    if batch_size is not None:
        batch_size = int_in(batch_size, "problem.batch_size", 1, 1_000_000)
    eval_every = int_in(data.get("eval_every", 10), "problem.eval_every", 1, MAX_STEPS)
    device = expect(data.get("device", "auto"), str, "problem.device", "a device name")
    if device not in DEVICES:
        raise LabError("problem.device", f"must be one of {', '.join(DEVICES)}, got {show(device)}")
    seeds = int_in(data.get("seeds", 1), "problem.seeds", 1, MAX_SEEDS)
    sharpness_every = int_in(data.get("sharpness_every", 0), "problem.sharpness_every", 0,
                              MAX_STEPS)
    return NetworkProblem(
        dataset=dict(dataset_spec), model=dict(model_spec), loss=loss, batch_size=batch_size,
        eval_every=eval_every, device=device, seeds=seeds, sharpness_every=sharpness_every,
        class_weights=class_weights,
    )


def _controls_from_dict(data: dict, field_: str) -> dict[str, Any]:
    """A run's training controls, checked against their specs in core.lab.controls."""
    from core.lab.controls import TRAINING_CONTROLS

    specs = {spec.name: spec for spec in TRAINING_CONTROLS}
    controls: dict[str, Any] = {}
    for key in ("l1", "l2", "clip_norm", "clip_value"):
        if data.get(key) is not None:
            controls[key] = specs[key].validate(data[key], f"{field_}.{key}")
    rule = data.get("early_stopping")
    if rule is not None:
        where = f"{field_}.early_stopping"
        expect(rule, dict, where, 'an object like {"patience": 10}')
        check_keys(rule, {"patience", "min_delta"}, {"patience"}, where)
        patience = specs["early_stopping_patience"].validate(rule["patience"], f"{where}.patience")
        min_delta = finite_float(rule.get("min_delta", 0.0), f"{where}.min_delta", 1e6)
        if min_delta < 0:
            raise LabError(f"{where}.min_delta", f"must be >= 0, got {min_delta}")
        controls["early_stopping"] = {"patience": patience, "min_delta": min_delta}
    return controls


def _run_from_dict(data: Any, field_: str, steps: int, network: bool = False,
                   base_dir: str | None = None, consent: Consent | None = None,
                   rl_dqn: bool = False, function: bool = False) -> RunSpec:
    from core.optim.catalog import get_optimizer_info, validate_optimizer_params
    from core.optim.schedules import get_schedule_info, validate_schedule_params

    expect(data, dict, field_, "a JSON object")
    allowed = {"label", "optimizer", "params", "schedule", "enabled", "color", "branch"}
    if "adam_rel" in data and not rl_dqn:
        raise LabError(f"{field_}.adam_rel", 'only rl problems with the "dqn" agent have it '
                                             "(it acts at target-network updates)")
    allowed.add("adam_rel")
    if not network:
        for key in NETWORK_RUN_KEYS:
            # Norm clipping also acts on a 2-D function race (core/engine/function_race.py).
            if key in data and not (function and key == "clip_norm"):
                raise LabError(f"{field_}.{key}", "only network problems have this control")
    check_keys(data, allowed | set(NETWORK_RUN_KEYS), {"optimizer"}, field_)
    optimizer, code_sha256 = optimizer_from_file(
        data["optimizer"], f"{field_}.optimizer", base_dir, consent)
    get_optimizer_info(optimizer, field=f"{field_}.optimizer")
    label = expect(data.get("label", default_label(optimizer)), str, f"{field_}.label", "a string")
    if not label.strip() or len(label) > MAX_LABEL_CHARS:
        raise LabError(f"{field_}.label", f"must be 1 to {MAX_LABEL_CHARS} characters")
    params = expect(data.get("params", {}), dict, f"{field_}.params", "a JSON object")
    params = validate_optimizer_params(optimizer, params, field=f"{field_}.params")
    schedule = None
    if data.get("schedule") is not None:
        sched = expect(data["schedule"], dict, f"{field_}.schedule", "a JSON object")
        check_keys(sched, {"name", "params"}, {"name"}, f"{field_}.schedule")
        sname = expect(sched["name"], str, f"{field_}.schedule.name", "a schedule name")
        get_schedule_info(sname, field=f"{field_}.schedule.name")
        sparams = expect(sched.get("params", {}), dict, f"{field_}.schedule.params", "a JSON object")
        base_lr = params.get("lr", get_optimizer_info(optimizer).defaults().get("lr"))
        sparams = validate_schedule_params(
            sname, sparams, field=f"{field_}.schedule.params", total_steps=steps,
            base_lr=base_lr,
        )
        schedule = ScheduleSpec(sname, sparams)
    enabled = expect(data.get("enabled", True), bool, f"{field_}.enabled", "true or false")
    color = data.get("color")
    if color is not None:
        expect(color, str, f"{field_}.color", 'a colour like "#1f77b4"')
        if not _COLOR_RE.match(color):
            raise LabError(f"{field_}.color", f'must be a colour like "#1f77b4", got {show(color)}')
    controls: dict[str, Any] = {}
    if network:
        controls = _controls_from_dict(data, field_)
    elif function and data.get("clip_norm") is not None:
        controls = _controls_from_dict({"clip_norm": data["clip_norm"]}, field_)
    if data.get("branch") is not None:
        controls["branch"] = branch_from_dict(data["branch"], f"{field_}.branch", steps)
    if code_sha256:
        controls["code_sha256"] = code_sha256
    if data.get("adam_rel", False):
        controls["adam_rel"] = expect(data["adam_rel"], bool, f"{field_}.adam_rel", "true or false")
    return RunSpec(label, optimizer, params, schedule, enabled, color, **controls)


# --------------------------------------------------------------------------------------------
# A run's branch in the file (what replaying one means: core/lab/branches.py)


def branch_from_dict(data: Any, field: str, steps: int) -> BranchSpec:
    """Read a run's ``branch`` object: ``{"from": "<parent label>", "step": t}``, 0 ≤ t ≤ steps."""
    expect(data, dict, field, 'an object like {"from": "Adam", "step": 40}')
    check_keys(data, {"from", "step"}, {"from", "step"}, field)
    parent = expect(data["from"], str, f"{field}.from", "the label of another run")
    if not parent.strip():
        raise LabError(f"{field}.from", "must be the label of another run, got an empty string")
    step = int_in(data["step"], f"{field}.step", 0, steps)
    return BranchSpec(parent, step)


def branch_to_dict(branch: BranchSpec) -> dict:
    """A run's ``branch`` object as the lab file writes it."""
    return {"from": branch.parent, "step": branch.step}


def check_branches(lab: Lab) -> None:
    """Refuse branches that cannot be replayed: a missing, disabled or cyclic parent, a step
    past the race, or a network problem. Each LabError names ``runs[i].branch…``."""
    index = {run.label: i for i, run in enumerate(lab.runs)}
    for i, run in enumerate(lab.runs):
        if run.branch is None:
            continue
        where = f"runs[{i}].branch"
        if lab.problem.kind != "function":
            raise LabError(where, f"only 2-D function races can branch ({lab.problem.kind} "
                                  "races cannot yet)")
        parent = run.branch.parent
        if parent == run.label:
            raise LabError(f"{where}.from", f"a run cannot branch from itself ({parent!r})")
        if parent not in index:
            labels = ", ".join(repr(r.label) for r in lab.runs if r.label != run.label)
            raise LabError(
                f"{where}.from", f"no run labelled {parent!r}; the other runs are {labels or 'none'}"
            )
        if not 0 <= run.branch.step <= lab.steps:
            raise LabError(
                f"{where}.step", f"must be in [0, {lab.steps}] (the lab's steps), got {run.branch.step}"
            )
        # Walk up the ancestors: a cycle never reaches a root; a disabled one cannot be replayed.
        chain, j = [run.label], index[parent]
        while True:
            ancestor = lab.runs[j]
            if ancestor.label in chain:
                loop = " → ".join([*chain[chain.index(ancestor.label):], ancestor.label])
                raise LabError(f"{where}.from", f"branches form a cycle: {loop}")
            chain.append(ancestor.label)
            if run.enabled and not ancestor.enabled:
                raise LabError(
                    f"{where}.from",
                    f"{ancestor.label!r} is disabled, but this branch replays it up to step "
                    f"{run.branch.step}: enable it or disable the branch",
                )
            if ancestor.branch is None or ancestor.branch.parent not in index:
                break
            j = index[ancestor.branch.parent]


def check_runs_fit_problem(lab: Lab) -> None:
    """Refuse runs whose optimizer cannot work on this problem (e.g. Muon on 2-D points)."""
    from core.optim.catalog import get_optimizer_info

    if lab.problem.kind != "function":  # networks and agents have weight matrices
        return
    for i, run in enumerate(lab.runs):
        info = get_optimizer_info(run.optimizer)
        if info.min_param_ndim > 1:
            raise LabError(
                f"runs[{i}].optimizer",
                f"{info.title} only works on weight matrices (network problems), "
                "not on a 2-D function's point",
            )


def validate_lab(lab: Lab) -> Lab:
    """Re-check a `Lab` built in code (the GUI's edits) exactly as a file would be checked."""
    return lab_from_dict(lab_to_dict(lab), base_dir=lab.base_dir)


# --------------------------------------------------------------------------------------------
# Writing


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, mappings become dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def lab_to_dict(lab: Lab, base_dir: str | os.PathLike | None = None) -> dict:
    """The lab as its file holds it; user code paths are written relative to ``base_dir``
    (default: the folder the lab was read from)."""
    base = base_dir if base_dir is not None else lab.base_dir
    if isinstance(lab.problem, NetworkProblem):
        p = lab.problem
        problem: dict[str, Any] = {
            "kind": "network", "dataset": _plain(p.dataset), "model": _plain(p.model),
            "loss": p.loss, "batch_size": p.batch_size, "eval_every": p.eval_every,
            "device": p.device,
        }
        if p.seeds != 1:  # 1 is not written (older files round-trip); a bad value is checked
            problem["seeds"] = p.seeds
        if p.sharpness_every != 0:  # off is not written; a bad value still gets checked
            problem["sharpness_every"] = p.sharpness_every
        if p.class_weights is not None:  # off is not written (older files round-trip)
            problem["class_weights"] = (p.class_weights if isinstance(p.class_weights, str)
                                        else list(p.class_weights))
    elif isinstance(lab.problem, RLProblem):
        problem = rl_problem_to_dict(lab.problem)
    else:
        problem = {"kind": "function", "function": _plain(lab.problem.function)}
        if lab.problem.start is not None:
            problem["start"] = list(lab.problem.start)
    runs = []
    for run in lab.runs:
        entry: dict[str, Any] = {
            "label": run.label,
            "optimizer": optimizer_to_file(run.optimizer, run.code_sha256, base),
            "params": _plain(run.params),
        }
        if run.schedule is not None:
            entry["schedule"] = {"name": run.schedule.name, "params": _plain(run.schedule.params)}
        if not run.enabled:
            entry["enabled"] = False
        if run.color:
            entry["color"] = run.color
        for key in ("l1", "l2"):
            if getattr(run, key):
                entry[key] = getattr(run, key)
        for key in ("clip_norm", "clip_value"):
            if getattr(run, key) is not None:
                entry[key] = getattr(run, key)
        if run.early_stopping is not None:
            entry["early_stopping"] = _plain(run.early_stopping)
        if run.branch is not None:  # written only when used: older files round-trip unchanged
            entry["branch"] = branch_to_dict(run.branch)
        if run.adam_rel:  # rl labs only; off is not written
            entry["adam_rel"] = True
        runs.append(entry)
    return {
        "format": FORMAT,
        "name": lab.name,
        "seed": lab.seed,
        "steps": lab.steps,
        "problem": problem,
        "runs": runs,
    }


def lab_to_json(lab: Lab, base_dir: str | os.PathLike | None = None) -> str:
    return json.dumps(lab_to_dict(lab, base_dir), indent=2) + "\n"


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write a file so that it is either the old one or the whole new one, never half.

    Temp file in the same directory, fsync, then `os.replace` (atomic on POSIX and Windows).
    """
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_lab(lab: Lab, path: str | os.PathLike) -> None:
    write_atomic(path, lab_to_json(lab, Path(path).resolve().parent))


def load_lab(path: str | os.PathLike, consent: Consent | None = None) -> Lab:
    """Read and check a lab file. Every problem is a `LabError` whose field starts with the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LabError("", f"cannot read the file ({exc.strerror or exc})", str(path)) from None
    if size > MAX_FILE_BYTES:
        raise LabError("", f"{size} bytes; a lab file may be at most {MAX_FILE_BYTES}", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LabError("", "not UTF-8 text; a lab file is JSON", str(path)) from None
    except OSError as exc:
        raise LabError("", f"cannot read the file ({exc.strerror or exc})", str(path)) from None
    return lab_from_json(text, source=str(path), base_dir=path.parent, consent=consent)


def lab_from_json(text: str, source: str = "", base_dir: str | os.PathLike | None = None,
                  consent: Consent | None = None) -> Lab:
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise LabError(
            "", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source
        ) from None
    except RecursionError:
        raise LabError("", "nested too deeply to be a lab file", source) from None
    except ValueError as exc:
        raise LabError("", str(exc), source) from None
    try:
        return lab_from_dict(data, base_dir=base_dir, consent=consent)
    except LabError as exc:
        raise (exc.from_file(source) if source else exc) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a lab file (numbers must be finite)")


def default_lab() -> Lab:
    """The lab a new window opens with: four classics on Rosenbrock's banana valley."""
    return Lab(
        name="Banana race",
        seed=0,
        steps=1000,
        problem=FunctionProblem(function="rosenbrock", start=(-1.5, 2.0)),
        runs=(
            RunSpec("SGD", "sgd", {"lr": 0.0005}),
            RunSpec("Momentum", "sgd", {"lr": 0.0005, "momentum": 0.9}),
            RunSpec("RMSprop", "rmsprop", {"lr": 0.005}),
            RunSpec("Adam", "adam", {"lr": 0.05}),
        ),
    )


def default_network_lab() -> Lab:
    """A new network race: four optimizers train a 2-16-16-2 MLP on the two moons."""
    return Lab(
        name="Moons race",
        seed=0,
        steps=1000,
        problem=NetworkProblem(
            dataset={"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.2},
            batch_size=64,
            eval_every=20,
        ),
        runs=(
            RunSpec("SGD", "sgd", {"lr": 0.1}),
            RunSpec("Momentum", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("RMSprop", "rmsprop", {"lr": 0.003}),
            RunSpec("Adam", "adam", {"lr": 0.01}),
        ),
    )


def default_rl_lab() -> Lab:
    """A new rl race (File ▸ New rl race): REINFORCE on CartPole, 8 environments per run, the
    policy of core/problems/rl/spec.py's default model, trained by three optimizers. Adam at lr
    0.01 is the lesson moving_targets's setting, which solves CartPole within 500 episodes."""
    return Lab(
        name="CartPole race",
        seed=0,
        steps=1,  # not used by an rl lab: its budget is episodes
        problem=RLProblem(agent="reinforce", episodes=500, envs=8),
        runs=(
            RunSpec("SGD", "sgd", {"lr": 0.05}),
            RunSpec("RMSprop", "rmsprop", {"lr": 0.003}),
            RunSpec("Adam", "adam", {"lr": 0.01}),
        ),
    )
