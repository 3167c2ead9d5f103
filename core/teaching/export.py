"""Exports: a lab as a standalone PyTorch script, and a race's metrics as CSV or JSON.

`export_script` writes a plain Python program (torch and numpy only, nothing of Descent Lab) that
trains the lab's runs exactly as `core.engine.function_race` / `core.engine.network_race` do and writes the same
``metrics.csv`` columns as ``main.py run``, so students can read, run and change it. The tests run
an exported script in a subprocess and compare its numbers with the engine's to 1e-6.

What the script writes out as code:

* the objective of a function lab — a registry function by its own source text (so the formula
  a student reads is the very code that ran), a typed expression by code generated from the
  parser's AST (never by evaluating the text);
* the optimizers (``torch.optim`` classes with the lab's hyperparameters), the schedules
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
are then means over seeds), L-BFGS or Muon on a network, and any layer the generator does not
know.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import LabError
from core.lab.format import Lab, RunSpec, write_atomic

SCRIPT_FORMAT = "descent-lab-script/1"
# Deeper expressions are written as one temporary per operation: Python's parser refuses about
# 200 nested parentheses, and a long formula would hit that as one nested expression.
MAX_NESTED_DEPTH = 30


# --------------------------------------------------------------------------------------------
# Literals and names


def _literal(value) -> str:
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
        items = ", ".join(_literal(v) for v in value)
        return f"({items},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({items})" if isinstance(value, tuple) else f"[{items}]")
    raise LabError("params", f"cannot write {value!r} into a script")


def _kwargs(values: dict) -> str:
    return ", ".join(f"{key}={_literal(value)}" for key, value in values.items())


# --------------------------------------------------------------------------------------------
# The objective of a function lab


def _objective_code(function_spec) -> list[str]:
    """Lines defining ``objective(x, y)`` for a registry name or a typed expression."""
    from core.problems.expression import Expression
    from core.problems.functions import get_function

    objective = get_function(function_spec)
    if isinstance(objective.fn, Expression):
        return _expression_code(objective.fn)
    fn = objective.fn
    lines: list[str] = []
    # Module constants the function uses (e.g. Ackley's epsilon), copied by value.
    for name in fn.__code__.co_names:
        value = fn.__globals__.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"{name} = {_literal(value)}")
    if lines:
        lines.append("")
        lines.append("")
    source = inspect.getsource(fn).rstrip()
    lines.extend(source.splitlines())
    lines += ["", "", f"objective = {fn.__name__}  # {objective.formula}"]
    return lines


def _torch_function_name(name: str) -> str:
    import torch

    from core.problems.expression import ALLOWED_FUNCTIONS

    implementation = ALLOWED_FUNCTIONS[name][1]
    if name == "softplus":
        return "torch.nn.functional.softplus"
    qualified = getattr(implementation, "__name__", "")
    if getattr(torch, qualified, None) is not implementation:
        raise LabError("problem.function.expression", f"cannot write the function {name}() into a script")
    return f"torch.{qualified}"


_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**"}


def _expression_code(expression) -> list[str]:
    """``objective(x, y)`` from the parsed AST: the same torch operations, in the same order."""
    from core.problems.expression import Binary, Call, Negate, Number, Variable

    # Post-order walk without recursion (a formula may nest deeply): each node's code text.
    code: dict[int, str] = {}
    temporaries: list[str] = []
    flat = _depth(expression.root) > MAX_NESTED_DEPTH
    stack = [(expression.root, False)]
    while stack:
        node, ready = stack.pop()
        if not ready:
            stack.append((node, True))
            children = ((node.operand,) if isinstance(node, Negate)
                        else (node.left, node.right) if isinstance(node, Binary)
                        else node.arguments if isinstance(node, Call) else ())
            stack.extend((child, False) for child in reversed(children))
            continue
        if isinstance(node, Number):
            text = f"const({_literal(float(node.value))})"
        elif isinstance(node, Variable):
            text = node.name
        elif isinstance(node, Negate):
            text = f"(-{code[id(node.operand)]})"
        elif isinstance(node, Binary):
            left, right = code[id(node.left)], code[id(node.right)]
            text = f"({left} {_OPERATORS[node.operator]} {right})"
        elif isinstance(node, Call):
            args = ", ".join(code[id(a)] for a in node.arguments)
            text = f"{_torch_function_name(node.function)}({args})"
        else:  # the parser builds no other node
            raise LabError("problem.function.expression", f"unknown expression node {node!r}")
        if flat and not isinstance(node, (Number, Variable)):
            name = f"t{len(temporaries)}"
            temporaries.append(f"    {name} = {text}")
            text = name
        code[id(node)] = text
    result = code[id(expression.root)]
    lines = [
        "def const(value):",
        "    # Every number is a float64 tensor, as in Descent Lab's expression evaluator.",
        "    return torch.tensor(value, dtype=torch.float64)",
        "",
        "",
        "def objective(x, y):",
        f"    # f(x, y) = {expression.text.strip()}",
        *temporaries,
        f"    result = {result}",
    ]
    # A formula that ignores x or y still depends on both (one gradient entry per coordinate).
    if "x" not in expression.variables:
        lines.append("    result = result + 0.0 * x")
    if "y" not in expression.variables:
        lines.append("    result = result + 0.0 * y")
    lines.append("    return result")
    return lines


def _depth(root) -> int:
    from core.problems.expression import Binary, Call, Negate

    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, Negate):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, Binary):
            stack += [(node.left, depth + 1), (node.right, depth + 1)]
        elif isinstance(node, Call):
            stack += [(a, depth + 1) for a in node.arguments]
    return deepest


# --------------------------------------------------------------------------------------------
# Optimizers and schedules


@dataclass(frozen=True)
class _RunCode:
    label: str
    optimizer: str  # "torch.optim.SGD(params, lr=0.1)"
    scheduler: str  # "None" or "lr_scheduler.StepLR(optimizer, ...)"
    plateau: bool
    schedule_steps: int | None  # one-cycle: stop stepping after this many
    needs_closure: bool


def _run_code(run: RunSpec, index: int, steps: int, network: bool) -> _RunCode:
    import torch

    from core.optim.optimizers import get_optimizer_info, validate_optimizer_params
    from core.optim.schedules import Schedule

    info = get_optimizer_info(run.optimizer, f"runs[{index}].optimizer")
    if network and (info.needs_closure or info.min_param_ndim > 1):
        raise LabError(
            f"runs[{index}].optimizer",
            f"the script export does not support {info.title} on a network yet; "
            "choose another optimizer or export the metrics instead",
        )
    cleaned = validate_optimizer_params(run.optimizer, run.params, f"runs[{index}].params")
    kwargs = info.torch_kwargs(cleaned)
    optimizer = f"torch.optim.{info.cls.__name__}(params{', ' if kwargs else ''}{_kwargs(kwargs)})"
    scheduler, plateau, cap = "None", False, None
    if run.schedule is not None and run.schedule.name != "constant":
        # The values the engine would use, derived defaults filled in, from the real Schedule.
        dummy = torch.zeros(2, requires_grad=True)
        schedule = Schedule(info.cls([dummy], **kwargs), run.schedule.name, run.schedule.params,
                            steps, f"runs[{index}].schedule.params")
        scheduler, plateau, cap = _scheduler_code(schedule.name, schedule.params, steps)
    return _RunCode(run.label, optimizer, scheduler, plateau, cap, info.needs_closure)


def _scheduler_code(name: str, p: dict, steps: int) -> tuple[str, bool, int | None]:
    """Constructor source for schedule ``name`` with resolved params ``p`` (see core.optim.schedules)."""

    def pick(*keys: str) -> str:
        return _kwargs({k: (list(p[k]) if isinstance(p[k], tuple) else p[k]) for k in keys})

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
        cosine = f"lr_scheduler.CosineAnnealingLR(optimizer, T_max={steps - p['warmup_steps']}, eta_min={_literal(p['eta_min'])})"
        if p["warmup_steps"] == 0:
            return cosine, False, None
        warmup = (f"lr_scheduler.LinearLR(optimizer, start_factor={_literal(p['start_factor'])}, "
                  f"end_factor=1.0, total_iters={p['warmup_steps']})")
        return (f"lr_scheduler.SequentialLR(optimizer, [{warmup}, {cosine}], "
                f"milestones=[{p['warmup_steps']}])"), False, None
    raise LabError("schedule.name", f"the script export does not know the schedule {name!r}")


def _runs_block(runs: list[_RunCode], params_doc: str) -> list[str]:
    lines = []
    for i, run in enumerate(runs):
        lines += [
            f"def make_run_{i}(params):",
            f'    """{run.label}: the optimizer over {params_doc} and its lr schedule."""',
            f"    optimizer = {run.optimizer}",
            f"    scheduler = {run.scheduler}",
            "    return optimizer, scheduler",
            "",
            "",
        ]
    lines.append("# (label, builder, plateau schedule?, schedule steps before it stops or None,"
                 " needs a closure?)")
    lines.append("RUNS = [")
    for i, run in enumerate(runs):
        lines.append(f"    ({run.label!r}, make_run_{i}, {run.plateau}, {run.schedule_steps!r}, "
                     f"{run.needs_closure}),")
    lines.append("]")
    return lines


_SCHEDULE_STEP = '''
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

_WRITE_CSV = '''
def write_metrics(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
'''


def _header(lab: Lab, extra: str = "") -> list[str]:
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


# --------------------------------------------------------------------------------------------
# Function labs


def _function_script(lab: Lab) -> str:
    from core.engine.function_race import EXPLODE_FACTOR, MAX_COORDINATE
    from core.problems.functions import get_function

    objective = get_function(lab.problem.function)
    start = lab.problem.start if lab.problem.start is not None else objective.start
    runs = [_run_code(run, i, lab.steps, network=False) for i, run in enumerate(lab.enabled_runs())]
    lines = _header(lab)
    lines += [
        "import argparse",
        "import csv",
        "import math",
        "",
        "import torch",
        "from torch import Tensor",
        "from torch.optim import lr_scheduler",
        "",
        f"STEPS = {lab.steps}",
        f"SEED = {lab.seed}",
        f"START = ({_literal(float(start[0]))}, {_literal(float(start[1]))})",
        "# A run stops (diverges) when its numbers leave these bounds, as in Descent Lab.",
        f"EXPLODE_FACTOR = {_literal(EXPLODE_FACTOR)}",
        f"MAX_COORDINATE = {_literal(MAX_COORDINATE)}",
        "",
        "",
        *_objective_code(lab.problem.function),
        "",
        "",
        *_runs_block(runs, "the point (x, y)"),
        _SCHEDULE_STEP,
        _WRITE_CSV,
        _FUNCTION_MAIN,
    ]
    return "\n".join(lines)


_FUNCTION_MAIN = '''
def diverged(point, loss, grad_norm, start_loss):
    return (not all(math.isfinite(v) for v in point)
            or max(abs(v) for v in point) > MAX_COORDINATE
            or not math.isfinite(loss)
            or abs(loss) > EXPLODE_FACTOR * (start_loss + 1.0)
            or not math.isfinite(grad_norm))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="metrics.csv", help="where to write the metrics")
    args = parser.parse_args()

    runs = []
    for label, make, plateau, schedule_steps, needs_closure in RUNS:
        point = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        optimizer, scheduler = make([point])
        runs.append({"label": label, "point": point, "optimizer": optimizer,
                     "scheduler": scheduler, "plateau": plateau, "alive": True,
                     "schedule_left": schedule_steps if schedule_steps is not None else math.inf,
                     "needs_closure": needs_closure, "start_loss": None})

    rows = []
    for step in range(STEPS + 1):
        for run in runs:
            if not run["alive"]:
                continue
            point, optimizer = run["point"], run["optimizer"]
            # Loss and gradient at the current point (the state of this step).
            optimizer.zero_grad()
            loss = objective(point[0], point[1])
            loss.backward()
            value = loss.item()
            grad_norm = torch.linalg.vector_norm(point.grad).item()
            if run["start_loss"] is None:
                run["start_loss"] = abs(value) if math.isfinite(value) else 0.0
            if diverged(point.tolist(), value, grad_norm, run["start_loss"]):
                run["alive"] = False
                print(f"{run['label']} diverged at step {step}")
                continue
            lr = optimizer.param_groups[0]["lr"]
            rows.append([run["label"], step, value, float(lr), grad_norm])
            if step == STEPS:
                continue
            if run["needs_closure"]:
                def closure(point=point):
                    point.grad = None
                    value = objective(point[0], point[1])
                    value.backward()
                    return value

                optimizer.step(closure)
            else:
                optimizer.step()
            step_schedule(run, value)

    write_metrics(args.out, ["run", "step", "loss", "lr", "grad_norm"], rows)
    for run in runs:
        last = [row for row in rows if row[0] == run["label"]][-1]
        print(f"{run['label']}: loss {last[2]:.6g} at step {last[1]}, "
              f"point ({run['point'][0].item():.6g}, {run['point'][1].item():.6g})")


if __name__ == "__main__":
    main()
'''


# --------------------------------------------------------------------------------------------
# Network labs


def _module_code(module, index: int) -> str:
    from torch import nn

    if isinstance(module, nn.Linear):
        return f"nn.Linear({module.in_features}, {module.out_features})"
    if isinstance(module, nn.Conv2d):
        return (f"nn.Conv2d({module.in_channels}, {module.out_channels}, "
                f"kernel_size={module.kernel_size[0]}, stride={module.stride[0]}, "
                f"padding={module.padding[0]})")
    if isinstance(module, nn.MaxPool2d):
        return f"nn.MaxPool2d({module.kernel_size})"
    if isinstance(module, nn.Flatten):
        return "nn.Flatten()"
    if isinstance(module, nn.Dropout):
        return f"Dropout({_literal(float(module.p))})"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"nn.{type(module).__name__}({module.num_features})"
    from core.problems.models import ACTIVATIONS

    if type(module) in ACTIVATIONS.values():
        return f"nn.{type(module).__name__}()"
    raise LabError(f"problem.model.layers[{index}]",
                   f"the script export does not support {type(module).__name__} layers yet")


def _network_setup(lab: Lab):
    """The checked data set and the initial model (seed 0 of the race)."""
    from core.engine.race_setup import initial_model
    from core.problems.datasets import make_dataset

    problem = lab.problem
    if problem.seeds > 1:
        raise LabError(
            "problem.seeds",
            f"the script export trains one seed; this lab averages {problem.seeds} seeds. "
            "Set seeds to 1 to export it",
        )
    data = make_dataset(problem.dataset, lab.seed, base_dir=lab.base_path)
    return data, initial_model(lab, data)  # seed 0's weights, as the race starts from


def network_arrays(lab: Lab) -> dict[str, np.ndarray]:
    """What a network script loads: the data splits and the initial weights (``init/<key>``)."""
    data, model = _network_setup(lab)
    arrays = {"x_train": data.x_train, "y_train": data.y_train,
              "x_val": data.x_val, "y_val": data.y_val}
    for key, value in model.state_dict().items():
        arrays[f"init/{key}"] = value.detach().cpu().numpy()
    return arrays


_LOSS_CODE = {
    "cross_entropy": "F.cross_entropy",
    "mse": "F.mse_loss",
    "mae": "F.l1_loss",
    "huber": "F.huber_loss",
}


def _network_script(lab: Lab, data_name: str) -> str:
    from core.engine.function_race import EXPLODE_FACTOR

    data, model = _network_setup(lab)
    problem = lab.problem
    runs = [_run_code(run, i, lab.steps, network=True) for i, run in enumerate(lab.enabled_runs())]
    layers = ",\n        ".join(_module_code(m, i) for i, m in enumerate(model))
    controls = [
        {"l1": run.l1, "l2": run.l2, "clip_norm": run.clip_norm, "clip_value": run.clip_value,
         "early_stopping": dict(run.early_stopping) if run.early_stopping else None}
        for run in lab.enabled_runs()
    ]
    classification = data.task == "classification"
    extra = (
        f"Data set: {data.name} ({data.task}, {len(data.x_train)} training and {len(data.x_val)}"
        f" validation samples)\nand the initial weights are loaded from {data_name}, which Descent"
        " Lab wrote\nbeside this script. Every run starts from the same weights and sees the same"
        " mini-batches."
    )
    lines = _header(lab, extra)
    lines += [
        "import argparse",
        "import csv",
        "import math",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "import torch",
        "import torch.nn.functional as F",
        "from torch import nn",
        "from torch.optim import lr_scheduler",
        "",
        f"DATA_FILE = Path(__file__).with_name({data_name!r})",
        f"STEPS = {lab.steps}",
        f"SEED = {lab.seed}",
        f"BATCH_SIZE = {problem.batch_size!r}  # None: the whole training set every step",
        f"EVAL_EVERY = {problem.eval_every}",
        f"TASK = {data.task!r}",
        f"N_CLASSES = {data.n_classes}",
        f"EXPLODE_FACTOR = {_literal(EXPLODE_FACTOR)}",
        f"criterion = {_LOSS_CODE[problem.loss]}",
        "",
        "# Training controls per run: L1/L2 penalties on the weight matrices, gradient clipping,",
        "# early stopping on the validation loss.",
        f"CONTROLS = {json.dumps(controls)}".replace("null", "None"),
        "",
        "",
        "def make_model():",
        "    return nn.Sequential(",
        f"        {layers},",
        "    )",
        "",
        "",
        *_runs_block(runs, "the network's parameters"),
        _SCHEDULE_STEP,
        _WRITE_CSV,
        _NETWORK_MAIN.replace("{VAL_QUALITY}", "val_accuracy" if classification else "val_r2"),
    ]
    return "\n".join(lines)


_NETWORK_MAIN = '''
class Dropout(nn.Dropout):
    """Inverted dropout whose masks come from this run's own torch.Generator (set in main()),
    never from torch's global generator: keep ~ Bernoulli(1 - p), y = x * keep / (1 - p)."""

    def __init__(self, p):
        super().__init__(p)
        self.generator = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        q = 1.0 - self.p
        keep = torch.empty_like(x).bernoulli_(q, generator=self.generator)
        return x * keep.div_(q)


class BatchOrder:
    """The mini-batch order all runs share: a fresh seeded permutation every epoch."""

    def __init__(self, n, batch_size, seed):
        self.n = n
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.per_epoch = math.ceil(n / self.batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.perm = -1, None

    def batch(self, step):
        if self.batch_size >= self.n:
            return None
        epoch, within = divmod(step, self.per_epoch)
        while self.epoch < epoch:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.epoch += 1
        return self.perm[within * self.batch_size:(within + 1) * self.batch_size]


def weight_matrices(model):
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@torch.no_grad()
def validation(model, x, y):
    """Validation loss and accuracy (classification) or R² (regression)."""
    model.eval()
    pred = model(x)
    loss = float(criterion(pred, y))
    if TASK == "classification":
        quality = int((pred.argmax(dim=1) == y).sum()) / max(len(y), 1)
    else:
        mse = float(((pred - y) ** 2).mean())
        total = float(((y - y.mean()) ** 2).mean())
        quality = 1.0 - mse / total if total > 0 else 0.0
    return loss, quality


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="metrics.csv", help="where to write the metrics")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = np.load(DATA_FILE)
    x_train, y_train = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_val, y_val = torch.from_numpy(data["x_val"]), torch.from_numpy(data["y_val"])
    initial = {key[len("init/"):]: torch.from_numpy(data[key]) for key in data.files
               if key.startswith("init/")}

    runs = []
    for i, (label, make, plateau, schedule_steps, _closure) in enumerate(RUNS):
        model = make_model()
        model.load_state_dict(initial)  # every run starts from the same weights
        optimizer, scheduler = make(model.parameters())
        # Each run has its own random stream for dropout masks.
        stream = torch.Generator().manual_seed(SEED * 1009 + i + 1)
        for module in model.modules():
            if isinstance(module, Dropout):
                module.generator = stream
        runs.append({"label": label, "model": model, "optimizer": optimizer,
                     "scheduler": scheduler, "plateau": plateau, "alive": True,
                     "schedule_left": schedule_steps if schedule_steps is not None else math.inf,
                     "controls": CONTROLS[i], "start_loss": 0.0,
                     "best_val": math.inf, "evals_since_best": 0})
    order = BatchOrder(len(x_train), BATCH_SIZE, SEED + 1)

    rows = []
    for step in range(STEPS + 1):
        idx = order.batch(step)
        xb = x_train if idx is None else x_train[idx]
        yb = y_train if idx is None else y_train[idx]
        any_diverged = False
        results = {}
        for run in runs:
            if not run["alive"]:
                continue
            model, optimizer, controls = run["model"], run["optimizer"], run["controls"]
            model.train()
            data_loss = criterion(model(xb), yb)
            total = data_loss
            if controls["l1"]:
                total = total + controls["l1"] * sum(w.abs().sum() for w in weight_matrices(model))
            if controls["l2"]:
                total = total + controls["l2"] * sum((w * w).sum() for w in weight_matrices(model))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            params = [p for p in model.parameters() if p.grad is not None]
            grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
            if controls["clip_norm"] is not None:
                torch.nn.utils.clip_grads_with_norm_(params, controls["clip_norm"],
                                                     torch.tensor(grad_norm))
            if controls["clip_value"] is not None:
                torch.nn.utils.clip_grad_value_(params, controls["clip_value"])
            loss = data_loss.item()
            if step == 0:
                run["start_loss"] = abs(loss) if math.isfinite(loss) else 0.0
            if (not math.isfinite(loss) or abs(loss) > EXPLODE_FACTOR * (run["start_loss"] + 1.0)
                    or not math.isfinite(grad_norm)):
                run["alive"] = False
                any_diverged = True
                print(f"{run['label']} diverged at step {step}")
                continue
            results[run["label"]] = (loss, grad_norm)

        evaluate = step % EVAL_EVERY == 0 or step == STEPS or any_diverged
        for run in runs:
            if run["label"] not in results:
                continue
            loss, grad_norm = results[run["label"]]
            lr = run["optimizer"].param_groups[0]["lr"]
            row = [run["label"], step, step * order.batch_size / order.n, loss, float(lr), grad_norm]
            stop_now = False
            if evaluate and len(x_val):
                val_loss, quality = validation(run["model"], x_val, y_val)
                row += [val_loss, quality]
                rule = run["controls"]["early_stopping"]
                min_delta = rule.get("min_delta", 0.0) if rule else 0.0
                if val_loss < run["best_val"] - min_delta:
                    run["best_val"], run["evals_since_best"] = val_loss, 0
                else:
                    run["evals_since_best"] += 1
                if rule and run["evals_since_best"] > rule["patience"]:
                    stop_now = True
                    print(f"{run['label']} stopped early at step {step}")
            else:
                row += ["", ""]
            rows.append(row)
            if stop_now:
                run["alive"] = False
            elif step < STEPS:
                run["optimizer"].step()
                step_schedule(run, loss)

    header = ["run", "step", "epoch", "loss", "lr", "grad_norm", "val_loss", "{VAL_QUALITY}"]
    write_metrics(args.out, header, rows)
    for run in runs:
        last = [row for row in rows if row[0] == run["label"]][-1]
        print(f"{run['label']}: loss {last[3]:.6g} at step {last[1]}")


if __name__ == "__main__":
    main()
'''


# --------------------------------------------------------------------------------------------
# Public API


def default_data_name(script_path: str | os.PathLike) -> str:
    """The data file a network script loads: ``<script stem>.npz`` beside it."""
    return Path(script_path).with_suffix(".npz").name


def export_script(lab: Lab, data_name: str = "lab_data.npz") -> str:
    """The lab as a standalone PyTorch script (source text). Raises `LabError` when unsupported.

    A network script loads its data and initial weights from ``data_name`` beside it: write that
    file with `network_arrays` (or use `write_script`, which writes both).
    """
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
        return _network_script(lab, data_name)
    return _function_script(lab)


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


def history_rows(history) -> tuple[list[str], list[list]]:
    """``main.py run``'s metrics.csv header and rows from a GUI history (step-major order).

    Works for `core.engine.history.RaceHistory` and `NetworkHistory`. Long races thin their series
    (history.py), so a very long race exports the kept points, as plotted.
    """
    from core.engine.history import NetworkHistory

    if isinstance(history, NetworkHistory):
        return _network_rows(history)
    rows = []
    for label, series in zip(history.labels, history.runs):
        columns = [series.column(name) for name in ("step", "loss", "lr", "grad_norm")]
        for step, loss, lr, grad in zip(*columns):
            rows.append([label, int(step), float(loss), float(lr), float(grad)])
    order = {label: i for i, label in enumerate(history.labels)}
    rows.sort(key=lambda row: (row[1], order[row[0]]))
    return ["run", "step", "loss", "lr", "grad_norm"], rows


def _network_rows(history) -> tuple[list[str], list[list]]:
    quality = "val_r2" if "val_r2" in history.eval_fields else "val_accuracy"
    header = ["run", "step", "epoch", "loss", "lr", "grad_norm", "val_loss", quality]
    rows = []
    for i, (label, series) in enumerate(zip(history.labels, history.steps)):
        evals: dict[int, tuple[float, float]] = {}
        if history.evals is not None and "val_loss" in history.eval_fields:
            ev = history.evals[i]
            for step, loss, q in zip(ev.column("step"), ev.column("val_loss"),
                                     ev.column(quality) if quality in history.eval_fields
                                     else ev.column("val_loss")):
                evals[int(step)] = (float(loss), float(q))
        for step, epoch, loss, lr, grad in zip(
            *(series.column(n) for n in ("step", "epoch", "loss", "lr", "grad_norm"))
        ):
            extra = list(evals.get(int(step), ("", "")))
            rows.append([label, int(step), float(epoch), float(loss), float(lr), float(grad),
                         *extra])
    order = {label: i for i, label in enumerate(history.labels)}
    rows.sort(key=lambda row: (row[1], order[row[0]]))
    return header, rows


def write_metrics_csv(history, path: str | os.PathLike) -> Path:
    """A history's metrics as CSV (the columns of ``main.py run``), written atomically."""
    from core.engine.runner import AtomicCsv

    header, rows = history_rows(history)
    target = Path(path)
    out = AtomicCsv(target, header)
    try:
        out.writer.writerows(rows)
    except BaseException:
        out.discard()
        raise
    out.commit()
    return target


def write_metrics_json(history, path: str | os.PathLike, lab: Lab | None = None) -> Path:
    """A history's metrics as JSON: ``{"lab", "columns", "runs": {label: {column: [...]}}}``."""
    header, rows = history_rows(history)
    runs: dict[str, dict[str, list]] = {label: {c: [] for c in header[1:]}
                                        for label in history.labels}
    for row in rows:
        columns = runs[row[0]]
        for name, value in zip(header[1:], row[1:]):
            # JSON has no empty cell: a step without validation metrics gets null.
            columns[name].append(None if value == "" else value)
    payload = {"lab": lab.name if lab is not None else None, "columns": header, "runs": runs}
    target = Path(path)
    write_atomic(target, json.dumps(payload, indent=1, allow_nan=False) + "\n")
    return target


def read_metrics_csv(path: str | os.PathLike) -> dict[tuple[str, int], dict[str, str]]:
    """metrics.csv rows keyed by (run, step): for comparing two runs of the same lab."""
    with open(path, newline="", encoding="utf-8") as file:
        return {(row["run"], int(row["step"])): row for row in csv.DictReader(file)}


def rows_differ(a: dict, b: dict, tolerance: float = 1e-6) -> list[str]:
    """Where two `read_metrics_csv` tables disagree beyond ``tolerance`` (relative to 1 + |x|)."""
    problems = []
    if a.keys() != b.keys():
        missing = sorted(set(a) ^ set(b))[:5]
        return [f"different rows, e.g. {missing}"]
    for key, row in a.items():
        other = b[key]
        for column, value in row.items():
            if column == "run":
                continue
            mine, theirs = value, other.get(column, "")
            if mine == "" or theirs == "":
                if mine != theirs:
                    problems.append(f"{key} {column}: {mine!r} vs {theirs!r}")
                continue
            x, y = float(mine), float(theirs)
            if abs(x - y) > tolerance * (1.0 + abs(x)):
                problems.append(f"{key} {column}: {x!r} vs {y!r}")
    return problems
