"""The structure of a Flax NNX module: its submodules by path, the ones listed as layers, their
variables, and their train / eval flags. Reads the module; never writes it."""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np
from flax import nnx

from ...errors import SaliencyError

Path = tuple
#: Recurrent cells: their submodules are their gates.
CELLS = (nnx.LSTMCell, nnx.OptimizedLSTMCell, nnx.GRUCell, nnx.SimpleCell)
#: Modules listed as one layer with every variable below them, never descended into: recurrent
#: cells, and the ``nnx.RNN`` that runs one over a sequence (as Keras lists an LSTM, not its cell).
WHOLE = (*CELLS, nnx.RNN)
#: The name a listed root module gets (as torch's backend calls it).
ROOT = "model"


class Listed(NamedTuple):
    """One layer as ``layers()`` lists it."""

    name: str
    path: Path
    module: nnx.Module


def path_name(path: Path) -> str:
    """``("blocks", 0, "linear")`` → ``"blocks/0/linear"``; the root is ``"model"``."""
    return "/".join(map(str, path)) if path else ROOT


def submodules(model: nnx.Module) -> dict[Path, nnx.Module]:
    """Every module under ``model`` (itself at ``()``) by path, in definition order; a module
    reachable twice is kept at its first path."""
    found = dict(nnx.iter_modules(model))
    return {path: found[path] for path in sorted(found, key=lambda p: _order(found, p))}


def _order(found: dict[Path, nnx.Module], path: Path) -> tuple:
    """Sort key of ``path``: each step's position among its parent's attributes (definition order)."""
    key = []
    for i, step in enumerate(path):
        parent = found.get(path[:i])
        names = list(vars(parent)) if parent is not None else []
        position = names.index(str(step)) if str(step) in names else len(names)
        key.append((position, str(step)))
    return tuple(key)


def listed_modules(model: nnx.Module) -> list[Listed]:
    """The modules ``layers()`` lists, in definition order (a module rebuilt by ``nnx.merge`` or
    ``nnx.clone`` holds its attributes sorted by name): recurrent layers (whole, see :data:`WHOLE`),
    modules that hold variables of their own, and modules without submodules (dropout,
    activations). The root is listed (as ``"model"``) only when it is such a module itself."""
    modules = submodules(model)
    out = []
    for path, module in modules.items():
        if any(isinstance(modules.get(path[:i]), WHOLE) for i in range(len(path))):
            continue
        children = [p for p in modules if len(p) == len(path) + 1 and p[:len(path)] == path]
        if isinstance(module, WHOLE) or not children or variables(module, own=True):
            out.append(Listed(path_name(path), path, module))
    return out


def variables(module: nnx.Module, *, own: bool = False) -> dict[Path, Any]:
    """The module's variables (``nnx.Variable``, random-number state left out) by path below it;
    ``own``: only those not inside a submodule."""
    flat = nnx.to_flat_state(nnx.state(module, nnx.Not(nnx.RngState)))
    out = {tuple(path): var for path, var in flat}
    if own:
        out = {p: v for p, v in out.items() if not _inside_submodule(module, p)}
    return out


def layer_variables(module: nnx.Module) -> dict[Path, Any]:
    """The variables a layer's weight blocks show: every one below a :data:`WHOLE` layer, else its own."""
    return variables(module, own=not isinstance(module, WHOLE))


def type_name(module: nnx.Module) -> str:
    """The class name; an ``nnx.RNN`` names its cell, e.g. ``"RNN(LSTMCell)"``."""
    cell = getattr(module, "cell", None) if isinstance(module, nnx.RNN) else None
    return f"RNN({type(cell).__name__})" if cell is not None else type(module).__name__


def _inside_submodule(module: nnx.Module, path: Path) -> bool:
    """Whether the variable at ``path`` below ``module`` belongs to a submodule of it."""
    return any(isinstance(navigate(module, path[:i]), nnx.Module) for i in range(1, len(path)))


def value(variable: Any) -> np.ndarray:
    """A variable's value as a numpy array (a copy: it never shares memory with the model)."""
    return np.array(variable.get_value())


def size(module: nnx.Module) -> int:
    """How many numbers the layer's variables hold (:func:`layer_variables`)."""
    return int(sum(np.size(v.get_value()) for v in layer_variables(module).values()))


def path_of(model: nnx.Module, obj: Any) -> Path:
    """The path of the submodule ``obj`` (by identity) in ``model``."""
    for path, module in submodules(model).items():
        if module is obj:
            return path
    raise SaliencyError(f"the {type(obj).__name__} given is not a submodule of this model (any more)")


def in_training(model: nnx.Module) -> bool:
    """Whether a submodule is in training mode where that changes its output: batch norm with
    ``use_running_average=False``, dropout (any module with ``deterministic=False`` and a non-zero
    ``rate`` / ``dropout_rate``). Read on every call, so it walks the attributes itself, unordered
    (``nnx.iter_modules`` costs a third of a millisecond on a three-layer MLP)."""
    return any(_trains(module) for module in _walk(model, set()))


def _walk(node: Any, seen: set[int]) -> Iterator[nnx.Module]:
    """Every module reachable from ``node`` through attributes, lists, tuples and dicts, once each."""
    if isinstance(node, nnx.Module):
        if id(node) in seen:
            return
        seen.add(id(node))
        yield node
        children = vars(node).values()
    elif isinstance(node, (list, tuple)):
        children = node
    elif isinstance(node, dict):
        children = node.values()
    else:
        return
    for child in children:
        yield from _walk(child, seen)


def _trains(module: nnx.Module) -> bool:
    rate = getattr(module, "rate", getattr(module, "dropout_rate", 1.0))
    return getattr(module, "use_running_average", None) is False or (
        getattr(module, "deterministic", None) is False and bool(rate))


def navigate(model: nnx.Module, path: Path) -> Any:
    """The node at ``path`` below ``model`` (attribute names and list indices), or None."""
    node: Any = model
    for step in path:
        try:
            node = node[step] if isinstance(step, int) else getattr(node, step)
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
    return node
