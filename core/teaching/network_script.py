"""The standalone script of a network lab: its model, data, training loop and script template.

The script builds the ``nn.Sequential``, the shared mini-batch order (a seeded ``randperm`` per
epoch), the per-run dropout random streams, L1/L2 penalties, gradient clipping, evaluation every
``eval_every`` steps and early stopping. It loads the data set's arrays and the initial weights
from an ``.npz`` beside it (`network_arrays`): both come from Descent Lab's generators and
initialisers. The runs, schedules and CSV writer come from `core.teaching.script_common`;
`core.teaching.script_export.export_script` is the entry point.
"""

from __future__ import annotations

import json

import numpy as np

from core.errors import LabError
from core.lab.format import Lab
from core.teaching.script_common import (
    SCHEDULE_STEP,
    WRITE_CSV,
    literal,
    run_code,
    runs_block,
    script_header,
    setup_block,
    setup_imports,
)

# Recurrent layers in a script: torch's modules giving only every step's hidden states, and the
# read-out of the last step (the lab's core/problems/models.py SeqRNN/SeqLSTM/SeqGRU, LastStep).
_SEQUENCE_CLASSES = '''
class RNNSteps(nn.RNN):
    """nn.RNN (batch first) giving only the hidden states of every step, (B, T, H)."""

    def forward(self, x):
        return super().forward(x)[0]


class LSTMSteps(nn.LSTM):
    """nn.LSTM (batch first) giving only the hidden states h_t of every step, (B, T, H)."""

    def forward(self, x):
        return super().forward(x)[0]


class GRUSteps(nn.GRU):
    """nn.GRU (batch first) giving only the hidden states of every step, (B, T, H)."""

    def forward(self, x):
        return super().forward(x)[0]


class LastStep(nn.Module):
    """The read-out of a sequence's last time step: (B, T, H) -> (B, H)."""

    def forward(self, x):
        return x[:, -1]
'''


def _module_code(module, index: int) -> str:
    from torch import nn

    from core.problems.models import LastStep, SeqGRU, SeqLSTM, SeqRNN

    if isinstance(module, (SeqRNN, SeqLSTM, SeqGRU)):
        name = {SeqRNN: "RNNSteps", SeqLSTM: "LSTMSteps", SeqGRU: "GRUSteps"}[type(module)]
        extra = (f", nonlinearity={module.nonlinearity!r}"
                 if isinstance(module, SeqRNN) and module.nonlinearity != "tanh" else "")
        return f"{name}({module.input_size}, {module.hidden_size}, batch_first=True{extra})"
    if isinstance(module, LastStep):
        return "LastStep()"
    if isinstance(module, nn.Linear):
        bias = "" if module.bias is not None else ", bias=False"
        return f"nn.Linear({module.in_features}, {module.out_features}{bias})"
    if isinstance(module, nn.Conv2d):
        return (f"nn.Conv2d({module.in_channels}, {module.out_channels}, "
                f"kernel_size={module.kernel_size[0]}, stride={module.stride[0]}, "
                f"padding={module.padding[0]})")
    if isinstance(module, nn.MaxPool2d):
        return f"nn.MaxPool2d({module.kernel_size})"
    if isinstance(module, nn.Flatten):
        return "nn.Flatten()"
    if isinstance(module, nn.Dropout):
        return f"Dropout({literal(float(module.p))})"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"nn.{type(module).__name__}({module.num_features})"
    from core.problems.model_spec import ACTIVATIONS

    if type(module) in ACTIVATIONS.values():
        return f"nn.{type(module).__name__}()"
    raise LabError(f"problem.model.layers[{index}]",
                   f"the script export does not support {type(module).__name__} layers yet")


def _network_setup(lab: Lab):
    """The checked data set and the initial model (seed 0 of the race)."""
    from core.engine.race_setup import initial_model
    from core.problems.datasets.build import make_dataset

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


def _criterion_code(problem, data) -> str:
    """The loss as code: with class weights, torch's weighted cross entropy (the race's
    `core.problems.metrics.WeightedCrossEntropy`), the weights float32 as the race's."""
    from core.problems.metrics import class_weight_values

    weights = class_weight_values(problem.class_weights, data.y_train, data.n_classes)
    if weights is None:
        return _LOSS_CODE[problem.loss]
    values = ", ".join(repr(float(w)) for w in weights)
    return f"nn.CrossEntropyLoss(weight=torch.tensor([{values}], dtype=torch.float32))"


def network_script(lab: Lab, data_name: str) -> str:
    from core.engine.function_race import EXPLODE_FACTOR

    data, model = _network_setup(lab)
    problem = lab.problem
    runs = [run_code(run, i, lab.steps, network=True) for i, run in enumerate(lab.enabled_runs())]
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
    lines = script_header(lab, extra)
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
        *setup_imports(runs, ["from pathlib import Path"]),
        "",
        f"DATA_FILE = Path(__file__).with_name({data_name!r})",
        f"STEPS = {lab.steps}",
        f"SEED = {lab.seed}",
        f"BATCH_SIZE = {problem.batch_size!r}  # None: the whole training set every step",
        f"EVAL_EVERY = {problem.eval_every}",
        f"TASK = {data.task!r}",
        f"N_CLASSES = {data.n_classes}",
        f"EXPLODE_FACTOR = {literal(EXPLODE_FACTOR)}",
        f"criterion = {_criterion_code(problem, data)}",
        "",
        "# Training controls per run: L1/L2 penalties on the weight matrices, gradient clipping,",
        "# early stopping on the validation loss.",
        f"CONTROLS = {json.dumps(controls)}".replace("null", "None"),
        "",
        "",
        *([_SEQUENCE_CLASSES.strip("\n"), "", ""] if "Steps(" in layers else []),
        "def make_model():",
        "    return nn.Sequential(",
        f"        {layers},",
        "    )",
        "",
        "",
        *setup_block(runs),
        *runs_block(runs, "the network's parameters"),
        SCHEDULE_STEP,
        WRITE_CSV,
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


def train_step(run, xb, yb):
    """Forward in train mode, data loss + L1/L2 penalty, zero the grads, backward, the gradient
    norm, then clipping: Descent Lab's training step, up to the update."""
    model, controls = run["model"], run["controls"]
    model.train()
    data_loss = criterion(model(xb), yb)
    total = data_loss
    if controls["l1"]:
        total = total + controls["l1"] * sum(w.abs().sum() for w in weight_matrices(model))
    if controls["l2"]:
        total = total + controls["l2"] * sum((w * w).sum() for w in weight_matrices(model))
    for optimizer in run["optimizers"]:
        optimizer.zero_grad(set_to_none=True)
    total.backward(create_graph=run["create_graph"])
    params = [p for p in model.parameters() if p.grad is not None]
    grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    if controls["clip_norm"] is not None:
        torch.nn.utils.clip_grads_with_norm_(params, controls["clip_norm"],
                                             torch.tensor(grad_norm))
    if controls["clip_value"] is not None:
        torch.nn.utils.clip_grad_value_(params, controls["clip_value"])
    return data_loss, grad_norm, total


def update(run, xb, yb):
    """The run's optimizers step; one that needs a closure gets one that re-evaluates this
    batch (after the others: its re-evaluations overwrite their gradients)."""
    first, *others = run["optimizers"]
    if not run["needs_closure"]:
        first.step()
        for optimizer in others:
            optimizer.step()
        return
    for optimizer in others:
        optimizer.step()

    def closure():
        with torch.enable_grad():
            return train_step(run, xb, yb)[2]

    first.step(closure)


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
    for i, (label, make, plateau, schedule_steps, needs_closure, create_graph,
            train_eval) in enumerate(RUNS):
        model = make_model()
        model.load_state_dict(initial)  # every run starts from the same weights
        optimizers, scheduler = make(model.parameters())
        optimizer = optimizers[0]
        # Each run has its own random stream for dropout masks.
        stream = torch.Generator().manual_seed(SEED * 1009 + i + 1)
        for module in model.modules():
            if isinstance(module, Dropout):
                module.generator = stream
        runs.append({"label": label, "model": model, "optimizer": optimizer,
                     "optimizers": optimizers, "needs_closure": needs_closure,
                     "scheduler": scheduler, "plateau": plateau, "alive": True,
                     "schedule_left": schedule_steps if schedule_steps is not None else math.inf,
                     "controls": CONTROLS[i], "start_loss": 0.0,
                     "best_val": math.inf, "evals_since_best": 0,
                     "create_graph": create_graph, "train_eval": train_eval,
                     "stream": RandomStream(i) if create_graph else None})
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
            if run["train_eval"]:
                run["optimizer"].train()  # Schedule-Free trains at y ...
            data_loss, grad_norm, _total = train_step(run, xb, yb)
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
            if run["train_eval"] and step > 0:
                run["optimizer"].eval()  # ... and is evaluated at x (from its first update on)
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
                if run["train_eval"]:
                    run["optimizer"].train()
                if run["stream"] is not None:
                    with run["stream"]:  # its Hessian estimate's own random numbers
                        update(run, xb, yb)
                else:
                    update(run, xb, yb)
                if run["train_eval"]:
                    run["optimizer"].eval()
                step_schedule(run, loss)

    header = ["run", "step", "epoch", "loss", "lr", "grad_norm", "val_loss", "{VAL_QUALITY}"]
    write_metrics(args.out, header, rows)
    for run in runs:
        last = [row for row in rows if row[0] == run["label"]][-1]
        print(f"{run['label']}: loss {last[3]:.6g} at step {last[1]}")


if __name__ == "__main__":
    main()
'''

