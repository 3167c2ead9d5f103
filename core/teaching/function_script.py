"""The standalone script of a function lab: its objective written out as code, and its race loop.

The objective is a registry function by its own source text (so the formula a student reads is
the very code that ran) or a typed expression by code generated from the parser's AST (never by
evaluating the text). The runs, schedules and CSV writer come from `core.teaching.script_common`;
`core.teaching.script_export.export_script` is the entry point.
"""

from __future__ import annotations

import inspect

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

# Deeper expressions are written as one temporary per operation: Python's parser refuses about
# 200 nested parentheses, and a long formula would hit that as one nested expression.
MAX_NESTED_DEPTH = 30


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
            lines.append(f"{name} = {literal(value)}")
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
            text = f"const({literal(float(node.value))})"
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
# Function labs


def function_script(lab: Lab) -> str:
    from core.engine.function_race import EXPLODE_FACTOR, MAX_COORDINATE
    from core.problems.functions import get_function

    objective = get_function(lab.problem.function)
    start = lab.problem.start if lab.problem.start is not None else objective.start
    runs = [run_code(run, i, lab.steps, network=False) for i, run in enumerate(lab.enabled_runs())]
    lines = script_header(lab)
    lines += [
        "import argparse",
        "import csv",
        "import math",
        "",
        "import torch",
        "from torch import Tensor",
        "from torch.optim import lr_scheduler",
        *setup_imports(runs, []),
        "",
        f"STEPS = {lab.steps}",
        f"SEED = {lab.seed}",
        f"START = ({literal(float(start[0]))}, {literal(float(start[1]))})",
        "# A run stops (diverges) when its numbers leave these bounds, as in Descent Lab.",
        f"EXPLODE_FACTOR = {literal(EXPLODE_FACTOR)}",
        f"MAX_COORDINATE = {literal(MAX_COORDINATE)}",
        "# Each run's gradient-norm clipping (None: none), applied before its update.",
        f"CLIP_NORMS = {[run.clip_norm for run in lab.enabled_runs()]!r}",
        "",
        "",
        *_objective_code(lab.problem.function),
        "",
        "",
        *setup_block(runs),
        *runs_block(runs, "the point (x, y)"),
        SCHEDULE_STEP,
        WRITE_CSV,
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
    for i, (label, make, plateau, schedule_steps, needs_closure, create_graph,
            train_eval) in enumerate(RUNS):
        point = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        [optimizer], scheduler = make([point])
        runs.append({"label": label, "point": point, "optimizer": optimizer,
                     "scheduler": scheduler, "plateau": plateau, "alive": True,
                     "schedule_left": schedule_steps if schedule_steps is not None else math.inf,
                     "needs_closure": needs_closure, "create_graph": create_graph,
                     "train_eval": train_eval, "start_loss": None, "clip": CLIP_NORMS[i],
                     "stream": RandomStream(i) if create_graph else None})

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
            if run["clip"] is not None:
                torch.nn.utils.clip_grad_norm_([point], run["clip"])
            if run["needs_closure"] or run["create_graph"] or run["train_eval"]:
                def closure(point=point, create_graph=run["create_graph"], clip=run["clip"]):
                    with torch.enable_grad():
                        point.grad = None
                        value = objective(point[0], point[1])
                        value.backward(create_graph=create_graph)
                        if clip is not None:
                            torch.nn.utils.clip_grad_norm_([point], clip)
                    return value

                if run["train_eval"]:
                    optimizer.train()  # Schedule-Free: the gradient is taken at y
                closure()  # the gradient the step uses (L-BFGS recomputes it first)
                step_once = closure if run["needs_closure"] else None
                if run["stream"] is not None:
                    with run["stream"]:  # its Hessian estimate's own random numbers
                        optimizer.step(step_once)
                else:
                    optimizer.step(step_once)
                if run["train_eval"]:
                    optimizer.eval()  # ... and the point it answers with is x
                point.grad = None
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


