"""Every optimizer by name: torch.optim, the zoo and the user's own code, checked and built.

The one door through which races, sweeps, the LR range test, scripts and the GUI reach an
optimizer. A name is one of three kinds (core/lab/code.py says how a lab file spells them):

* ``"adam"`` — the hand-described torch.optim registry (core/optim/optimizers.py);
* ``"pytorch_optimizer:Lion"`` — a shipped zoo package, described on first use by introspection
  (core/optim/zoo.py, core/optim/introspect.py);
* ``"/abs/opts/lion.py:Lion"`` or ``"mypkg.mod:Class"`` — the user's code, known only once it has
  been loaded with consent (core/optim/user_code.py); before that, `CodeNotTrusted`.

Whatever the kind, `validate_optimizer_params` checks a run's ``params`` against the described
hyperparameters (and the optimizer's own cross-check), and `build_optimizer` constructs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from core.errors import LabError
from core.optim.hyperparams import validate_params
from core.optim.optimizers import OPTIMIZERS, OptimizerInfo


def get_optimizer_info(name: str, field: str = "optimizer") -> OptimizerInfo:
    """The description of optimizer ``name``, whichever kind of name it is.

    A torch.optim name (``"adam"``) is in `OPTIMIZERS`; a zoo name (``"pytorch_optimizer:Lion"``)
    is described on first use (core/optim/zoo.py); user code (``"/abs/opts/lion.py:Lion"``) only
    once it has been loaded with the user's consent (core/optim/user_code.py), else
    `CodeNotTrusted`. An unknown name raises `LabError` listing the choices.
    """
    info = OPTIMIZERS.get(name) if isinstance(name, str) else None
    if info is not None:
        return info
    if isinstance(name, str) and ":" in name:
        from core.optim import user_code

        if not user_code.is_code_ref(name):
            from core.optim.zoo import zoo_info

            return zoo_info(name, field=field)
        info = user_code.loaded_info(name)
        if info is None:
            raise user_code.CodeNotTrusted(
                field, f"{name} is Python code; it runs only with your consent "
                       "(the window asks; on the command line pass --trust-code)")
        return info
    raise LabError(field, f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}"
                          ', a zoo optimizer such as "pytorch_optimizer:Lion", or your own '
                          '{"class": "file.py:Class"}')


def validate_optimizer_params(name: str, params: Mapping, field: str = "params") -> dict:
    """Check ``params`` for optimizer ``name``; return the cleaned dict (no defaults filled in)."""
    info = get_optimizer_info(name)
    cleaned = validate_params(info.hyperparams, params, field)
    check = info.check
    if check is not None:
        check({**info.defaults(), **cleaned}, field)
    return cleaned


def _check_shapes(info: OptimizerInfo, tensors: list[Tensor], field: str) -> None:
    if not info.min_param_ndim:
        return
    for tensor in tensors:
        # Muon orthogonalises matrices: torch refuses anything that is not exactly 2-D.
        if tensor.ndim != info.min_param_ndim:
            raise LabError(
                field,
                f"{info.title} only works on {info.min_param_ndim}-D weight matrices, "
                f"got a parameter of shape {tuple(tensor.shape)}",
            )


def build_optimizer(
    name: str, params: Mapping, tensors: Iterable[Tensor], field: str = "params"
) -> torch.optim.Optimizer:
    """Validate ``params``, then build the torch optimizer over ``tensors``.

    The hyperparameters reach the torch constructor unchanged (pairs as tuples), except the
    ``"none"`` choice, which becomes ``None``; missing ones take torch's own defaults.
    """
    info = get_optimizer_info(name)
    cleaned = validate_optimizer_params(name, params, field)
    tensors = list(tensors)
    _check_shapes(info, tensors, "optimizer")
    kwargs = info.torch_kwargs(cleaned)
    if info.build is not None:
        return info.build(tensors, kwargs)
    return info.cls(tensors, **kwargs)
