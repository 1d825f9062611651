"""Copies of a torch model with layers re-initialized, for the model randomization test.

The user's model is never touched: every copy is a ``copy.deepcopy``, and the
initializers draw from a forked RNG, so torch's global random state is kept.
"""

from __future__ import annotations

import copy
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ...errors import SaliencyError
from .weights import listed_modules


def randomized_copies(model: nn.Module, *, cascade: bool, seed: int | None) -> Iterator[tuple[str, nn.Module]]:
    """Yields ``(layer name, copy)`` for each layer with parameters, from the output backwards.

    ``cascade``: each copy also keeps the layers re-initialized before it (one
    copy, randomized further at every step); otherwise only that one layer is
    re-initialized in a fresh copy. A layer gets its own ``reset_parameters()``;
    parameters of other modules are drawn from a normal with their own mean and std.
    """
    if not isinstance(model, nn.Module):
        raise SaliencyError("the randomization test re-initializes layers, so it needs a torch.nn.Module, "
                            "not a plain callable")
    names = [name for name, module in listed_modules(model) if next(module.parameters(recurse=False), None) is not None]
    seeds = np.random.default_rng(seed).integers(2**62, size=len(names))
    current = copy.deepcopy(model)
    for name, layer_seed in zip(reversed(names), seeds):
        if not cascade:
            current = copy.deepcopy(model)
        module = current if name == "model" else current.get_submodule(name)
        _reinitialize(module, int(layer_seed))
        yield name, current


def _reinitialize(module: nn.Module, seed: int) -> None:
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters") and next(module.children(), None) is None:
            module.reset_parameters()
            return
        for param in module.parameters(recurse=False):
            param.normal_(float(param.mean()), float(param.std()) if param.numel() > 1 else 1.0)
