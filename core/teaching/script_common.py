"""What every exported script shares: the literals, the optimizer and schedule code of each run.

`core.teaching.script_export` writes a lab as a standalone PyTorch program; the function script
(`core.teaching.function_script`) and the network script (`core.teaching.network_script`) both
start with `script_header`, build their runs with `run_code` / `runs_block`, and paste the
`SCHEDULE_STEP` and `WRITE_CSV` helpers into the script. Values are written with `literal`, whose
floats round-trip exactly, so a script trains with the very numbers the lab holds.

Any optimizer: torch's by ``torch.optim.<Class>``, a zoo optimizer by importing its package
(``import pytorch_optimizer``), the user's own class by loading its file by path with importlib
(`setup_block`; the file's SHA-256 in a comment says which content the lab ran). Each run also
says which adapters its loop applies (a closure, a ``create_graph`` backward, Schedule-Free's
train()/eval()), as core/engine/training_step.py's `RunUpdate` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import LabError
from core.lab.format import Lab, RunSpec

SCRIPT_FORMAT = "descent-lab-script/1"


# --------------------------------------------------------------------------------------------
# Literals and names


def literal(value) -> str:
    """Python source for a hyperparameter value (floats round-trip exactly through repr)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({items})" if isinstance(value, tuple) else f"[{items}]")
    raise LabError("params", f"cannot write {value!r} into a script")


def kwargs_code(values: dict) -> str:
    return ", ".join(f"{key}={literal(value)}" for key, value in values.items())


# --------------------------------------------------------------------------------------------
# Optimizers and schedules


@dataclass(frozen=True)
class RunCode:
    label: str
    optimizer: str  # "torch.optim.SGD(params, lr=0.1)"
    scheduler: str  # "None" or "lr_scheduler.StepLR(optimizer, ...)"
    plateau: bool
    schedule_steps: int | None  # one-cycle: stop stepping after this many
    needs_closure: bool
    create_graph: bool = False  # backward(create_graph=True) before its step
    train_eval: bool = False  # Schedule-Free: train() to step, eval() to be evaluated
    setup: tuple[str, ...] = ()  # the lines that import or load its class (`setup_block`)
    # A matrix optimizer on a network: the tensors of this many dimensions go to it (wrapped
    # in a ``use_muon`` group when its class asks for one), the rest to ``rest`` (AdamW).
    matrix_ndim: int = 0
    muon_group: bool = False
    rest: str = ""


def run_code(run: RunSpec, index: int, steps: int, network: bool) -> RunCode:
    import torch

    from core.optim.catalog import build_optimizer, get_optimizer_info, validate_optimizer_params
    from core.optim.schedules import Schedule

    info = get_optimizer_info(run.optimizer, f"runs[{index}].optimizer")
    cleaned = validate_optimizer_params(run.optimizer, run.params, f"runs[{index}].params")
    kwargs = info.torch_kwargs(cleaned)
    class_code, setup = _class_code(run.optimizer, info)
    if setup:  # a zoo or user class: how the catalog builds it (core/optim/introspect.py)
        kwargs = {**_changed_defaults(info, cleaned), **kwargs}
    arguments = kwargs_code({k: v for k, v in kwargs.items() if k != "base_optimizer"})
    if "base_optimizer" in kwargs:  # a wrapper (SAM): the torch.optim class it wraps
        from core.optim.optimizers import OPTIMIZERS

        base = f"base_optimizer=torch.optim.{OPTIMIZERS[kwargs['base_optimizer']].cls.__name__}"
        arguments = ", ".join(a for a in (base, arguments) if a)
    optimizer = f"{class_code}(params{', ' if arguments else ''}{arguments})"
    scheduler, plateau, cap = "None", False, None
    if run.schedule is not None and run.schedule.name != "constant":
        # The values the engine would use, derived defaults filled in, from the real Schedule.
        dummy = torch.zeros((2,) * max(1, info.min_param_ndim), requires_grad=True)
        schedule = Schedule(build_optimizer(run.optimizer, run.params, [dummy]),
                            run.schedule.name, run.schedule.params, steps,
                            f"runs[{index}].schedule.params")
        scheduler, plateau, cap = _scheduler_code(schedule.name, schedule.params, steps)
    matrix_ndim, muon_group, rest = 0, False, ""
    if network and info.min_param_ndim > 1:
        # core/engine/training_step.py `optimizers_for`: the matrices to it, AdamW the rest.
        matrix_ndim = info.min_param_ndim
        square = torch.zeros((2,) * matrix_ndim, requires_grad=True)
        built = build_optimizer(run.optimizer, run.params, [square])
        muon_group = built.param_groups[0].get("use_muon") is True
        rest = f"torch.optim.AdamW(rest, lr={literal(run.params.get('lr', 1e-3))})"
    return RunCode(run.label, optimizer, scheduler, plateau, cap, info.needs_closure,
                   info.create_graph, info.train_eval, setup, matrix_ndim, muon_group, rest)


def _class_code(name: str, info) -> tuple[str, tuple[str, ...]]:
    """The expression naming the optimizer's class in the script, and the lines before it."""
    import importlib

    from core.optim.user_code import is_code_ref, parse_code_ref

    cls = info.cls
    if cls.__module__.startswith("torch.optim"):
        return f"torch.optim.{cls.__name__}", ()
    if is_code_ref(name):
        ref = parse_code_ref(name)
        if ref.kind == "file":
            from core.optim.user_code import code_hash

            return cls.__name__, (
                f"# Your optimizer {ref.class_name}, from its file (SHA-256 {code_hash(ref)}).",
                f"{cls.__name__} = load_class({ref.target!r}, {ref.class_name!r})",
            )
        return f"{ref.target}.{ref.class_name}", (f"import {ref.target}",)
    package = name.partition(":")[0]  # a zoo package (core/optim/zoo.py)
    if getattr(importlib.import_module(package), cls.__name__, None) is cls:
        return f"{package}.{cls.__name__}", (f"import {package}",)
    return f"{cls.__module__}.{cls.__name__}", (f"import {cls.__module__}",)


def _changed_defaults(info, cleaned: dict) -> dict:
    """Defaults a user's HYPERPARAMS changed from the constructor's: the catalog passes them
    even when a run leaves the value unset, so the script must too."""
    import inspect

    try:
        signature = inspect.signature(info.cls.__init__).parameters
    except (TypeError, ValueError):
        return {}
    changed = {}
    for hp in info.hyperparams:
        if hp.name in cleaned or hp.name not in signature or hp.default is None:
            continue
        value = hp.to_torch(hp.default)
        if signature[hp.name].default != value:
            changed[hp.name] = value
    return changed


LOAD_CLASS = '''
def load_class(path, name):
    """A class from a Python file, loaded by path (as Descent Lab loaded it)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)
'''


def _check_loaded_names(runs: list[RunCode]) -> None:
    """Two user classes of one name from different files would be one variable in the script."""
    loaded: dict[str, str] = {}
    for run in runs:
        for line in run.setup:
            if " = load_class(" in line:
                name = line.split(" = ", 1)[0]
                if loaded.setdefault(name, line) != line:
                    raise LabError("runs", f"two optimizer classes named {name} come from "
                                           "different files; rename one to export the script")


def setup_imports(runs: list[RunCode], have: list[str]) -> list[str]:
    """The import lines the runs' classes need (zoo packages, importlib for a user's file) that
    the script's ``have`` lines do not already hold."""
    lines: list[str] = []
    for run in runs:
        if any("load_class(" in line for line in run.setup):
            lines += ["import importlib.util", "from pathlib import Path"]
        lines += [line for line in run.setup if line.startswith("import ")]
    unique = []
    for line in lines:
        if line not in unique and line not in have:
            unique.append(line)
    return unique


def setup_block(runs: list[RunCode]) -> list[str]:
    """The loading of user files (imports: `setup_imports`) and the random streams the runs
    need, once each."""
    _check_loaded_names(runs)
    lines: list[str] = []
    for run in runs:
        lines += [line for line in run.setup
                  if not line.startswith("import ") and line not in lines]
    if any("load_class(" in line for line in lines):
        lines = [LOAD_CLASS, "", *lines]
    if any(run.create_graph for run in runs):
        lines += [RANDOM_STREAM]
    return [*lines, "", ""] if lines else []


# As core/engine/training_step.py's RandomStream: a create_graph optimizer's Hessian estimate
# draws its random vectors from its run's own stream.
RANDOM_STREAM = '''
class RandomStream:
    """Run i's own stream of torch's global random numbers, swapped in around its step."""

    def __init__(self, i):
        seed = SEED * 1009 + i + 1 + 2**32
        self.state = torch.Generator().manual_seed(seed).get_state()
        self.outer = None

    def __enter__(self):
        self.outer = torch.get_rng_state()
        torch.set_rng_state(self.state)

    def __exit__(self, *exc):
        self.state = torch.get_rng_state()
        torch.set_rng_state(self.outer)
'''


def _scheduler_code(name: str, p: dict, steps: int) -> tuple[str, bool, int | None]:
    """Constructor source for schedule ``name`` with resolved params ``p`` (see core.optim.schedules)."""

    def pick(*keys: str) -> str:
        return kwargs_code({k: (list(p[k]) if isinstance(p[k], tuple) else p[k]) for k in keys})

    simple = {
        "step": ("StepLR", ("step_size", "gamma")),
        "multistep": ("MultiStepLR", ("milestones", "gamma")),
        "exponential": ("ExponentialLR", ("gamma",)),
        "cosine": ("CosineAnnealingLR", ("T_max", "eta_min")),
        "cosine_warm_restarts": ("CosineAnnealingWarmRestarts", ("T_0", "T_mult", "eta_min")),
        "linear": ("LinearLR", ("start_factor", "end_factor", "total_iters")),
        "cyclic": ("CyclicLR", ("base_lr", "max_lr", "step_size_up", "step_size_down", "mode",
                                "gamma", "cycle_momentum", "base_momentum", "max_momentum")),
        "polynomial": ("PolynomialLR", ("total_iters", "power")),
    }
    if name in simple:
        cls, keys = simple[name]
        return f"lr_scheduler.{cls}(optimizer, {pick(*keys)})", False, None
    if name == "onecycle":
        # One more position than updates (core.optim.schedules): the cycle ends exactly at the last
        # update, and the scheduler is not stepped past its end.
        keys = ("max_lr", "pct_start", "anneal_strategy", "div_factor", "final_div_factor",
                "three_phase", "cycle_momentum", "base_momentum", "max_momentum")
        code = (f"lr_scheduler.OneCycleLR(optimizer, total_steps={p['total_steps'] + 1}, "
                f"{pick(*keys)})")
        return code, False, int(p["total_steps"])
    if name == "plateau":
        keys = ("factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr")
        return f"lr_scheduler.ReduceLROnPlateau(optimizer, mode='min', {pick(*keys)})", True, None
    if name == "warmup_cosine":
        cosine = f"lr_scheduler.CosineAnnealingLR(optimizer, T_max={steps - p['warmup_steps']}, eta_min={literal(p['eta_min'])})"
        if p["warmup_steps"] == 0:
            return cosine, False, None
        warmup = (f"lr_scheduler.LinearLR(optimizer, start_factor={literal(p['start_factor'])}, "
                  f"end_factor=1.0, total_iters={p['warmup_steps']})")
        return (f"lr_scheduler.SequentialLR(optimizer, [{warmup}, {cosine}], "
                f"milestones=[{p['warmup_steps']}])"), False, None
    raise LabError("schedule.name", f"the script export does not know the schedule {name!r}")


def runs_block(runs: list[RunCode], params_doc: str) -> list[str]:
    lines = []
    for i, run in enumerate(runs):
        lines += [f"def make_run_{i}(params):"]
        if run.matrix_ndim:
            n = run.matrix_ndim
            matrices = f"[p for p in params if p.ndim == {n}]"
            lines += [
                f'    """{run.label}: the optimizer over the {n}-D weights of {params_doc}, AdamW',
                '    over the rest (as its authors advise), and its lr schedule."""',
                "    params = list(params)",
                f"    rest = [p for p in params if p.ndim != {n}]",
                (f'    params = [{{"params": {matrices}, "use_muon": True}}]' if run.muon_group
                 else f"    params = {matrices}"),
                f"    optimizer = {run.optimizer}",
                f"    scheduler = {run.scheduler}",
                f"    return ([optimizer, {run.rest}] if rest else [optimizer]), scheduler",
                "",
                "",
            ]
            continue
        lines += [
            f'    """{run.label}: the optimizer over {params_doc} and its lr schedule."""',
            f"    optimizer = {run.optimizer}",
            f"    scheduler = {run.scheduler}",
            "    return [optimizer], scheduler",
            "",
            "",
        ]
    lines.append("# (label, builder, plateau schedule?, schedule steps before it stops or None,"
                 " needs a closure?,")
    lines.append("#  backward with create_graph?, train()/eval() modes (Schedule-Free)?)")
    lines.append("RUNS = [")
    for i, run in enumerate(runs):
        lines.append(f"    ({run.label!r}, make_run_{i}, {run.plateau}, {run.schedule_steps!r}, "
                     f"{run.needs_closure}, {run.create_graph}, {run.train_eval}),")
    lines.append("]")
    return lines


SCHEDULE_STEP = '''
def step_schedule(run, loss):
    """One schedule step after every optimizer step (plateau watches the training loss)."""
    if run["scheduler"] is None or run["schedule_left"] <= 0:
        return
    run["schedule_left"] -= 1
    if run["plateau"]:
        run["scheduler"].step(loss)
    else:
        run["scheduler"].step()
    # torch's recursive formulas can land a schedule meant to end at 0 on about -1e-18.
    for group in run["optimizer"].param_groups:
        if group["lr"] < 0:
            group["lr"] = 0.0
'''

WRITE_CSV = '''
def write_metrics(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
'''


def script_header(lab: Lab, extra: str = "") -> list[str]:
    return [
        '"""' + f"{lab.name} — exported from Descent Lab ({SCRIPT_FORMAT}).",
        "",
        "A standalone PyTorch program: it trains every run of the lab the way Descent Lab does and",
        "writes metrics.csv with the columns of `main.py run` (run, step, loss, lr, grad_norm, ...).",
        "Step 0 is the starting point; step t is the state after t updates.",
        *([""] + extra.splitlines() if extra else []),
        "",
        "    python this_script.py [--out metrics.csv]",
        '"""',
        "",
    ]

