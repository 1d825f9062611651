"""The protocol every framework backend implements.

Everything framework-specific lives behind this interface; ``attribution.py``
and the widgets only call these methods and only see numpy arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
import inspect
import threading
import types
import weakref
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from ..errors import SaliencyError
from ..structure import InputSpec
from ..weights import LayerInfo, RecurrentCell, WeightBlock


#: What ``vjp`` explains per sample: flat output indices (one per sample), one index for all, or
#: None (each sample's arg-max).
Targets = Union[None, int, np.ndarray]


@dataclass(frozen=True)
class LayerRef:
    """A layer of the model, resolved from a name, an index or the object (as ``sw.layers`` lists it).

    ``calls``: which of its calls in one forward pass are attributed to: ``"once"`` (it must run
    once), ``"first"`` (the first; later calls, e.g. a tied embedding's reverse call producing
    logits, run untouched), or ``"all"``: every call of every layer in ``objects`` in the order
    they run, their outputs joined along axis 1 (an encoder's and a decoder's token embeddings:
    one sequence of context tokens). Only :meth:`Backend.output_rows` takes ``"all"``.
    """

    name: str
    obj: Any = field(compare=False)
    calls: str = "once"
    #: The layers attributed to with ``calls="all"`` (``obj`` is the first).
    others: tuple = field(default=(), compare=False)

    @property
    def objects(self) -> tuple:
        return (self.obj, *self.others)

    def attributes_call(self, number: int) -> bool:
        """Whether the ``number``-th call (from 1) of this layer in one forward pass is attributed to
        (see :func:`attributes_call`)."""
        return attributes_call(self.name, self.calls, number)


def attributes_call(name: str, calls: str, number: int) -> bool:
    """Whether the ``number``-th call (from 1) in one forward pass of layer ``name`` is attributed to,
    as ``calls`` (:class:`LayerRef`) says: every call with ``"all"``, the first with ``"first"``; a
    second call with ``"once"`` is refused (attributing to a layer with shared weights would mix its calls)."""
    if number > 1 and calls == "once":
        raise SaliencyError(
            f"layer {name!r} runs more than once per forward pass (shared weights?); "
            "attribution to it would mix its calls: choose a layer that runs once"
        )
    return number == 1 or calls == "all"


@dataclass(frozen=True)
class Query:
    """What one attribution call explains, and where the attribution lands.

    ``head``: ``None``, an ``int``/``str`` output entry, a callable, or a :class:`LayerRef`
    (that layer's output is explained). ``layer``: a :class:`LayerRef` whose output
    the attribution lands on, or ``None`` for the attributed input entries.
    """

    spec: InputSpec
    head: Any
    logits: bool
    layer: Optional[LayerRef]

    @cached_property
    def key(self) -> tuple:
        """Hashable identity of the head, output mode and layer (callables by identity)."""
        head = self.head if isinstance(self.head, (type(None), int, str, LayerRef)) else ("callable", id(self.head))
        return (head, self.logits, self.layer, self.spec.kind, self.spec.keys, self.spec.attributed)


class Backend(ABC):
    """Computes forward passes and gradients of one model in its own framework.

    Every compute method takes a :class:`Query` and the flat input ``entries``
    (numpy, batch first; the backend rebuilds ``x``'s structure with
    ``query.spec.pack``). Gradients are taken with respect to the attributed
    entries, or with respect to ``query.layer``'s output; ``activation=``
    replaces that layer's output (integrated gradients and SmoothGrad at a
    layer). ``query.logits`` explains the scores before the softmax / sigmoid /
    log-softmax the explained output comes straight out of. All arrays are
    numpy on the CPU, except the points SmoothGrad and integrated gradients build
    from :meth:`staged` arrays; the backend moves them to and from the model's device.
    """

    #: "torch", "keras" or "jax" (a Keras model is "keras" whatever Keras runs on)
    framework: str = ""

    def __init__(self, model: Any) -> None:
        #: Per-sample output shape by (input signature, query key), filled by attribution.py.
        self.output_shapes: dict[tuple, tuple[int, ...]] = {}
        #: Copies per SmoothGrad / IG pass by (input signature, query key), measured (see ``passes.py``).
        self.pass_sizes: dict[tuple, Any] = {}
        #: Verdicts remembered by (input signature, query key), so every later call and entry point
        #: gets them: the refusal of a model that mixes samples, and the warning that the explained
        #: output is probabilities where logits were asked.
        self.refusals: dict[tuple, str] = {}
        self.activation_warnings: dict[tuple, str] = {}
        # A weak reference where possible: backends are cached per model, and the
        # cache must not keep a model alive that the user has dropped.
        # Bound methods are created on access and would die at once: hold those.
        self._model_ref: Callable[[], Any] = lambda: model
        if not isinstance(model, types.MethodType):
            try:
                self._model_ref = weakref.ref(model)
            except TypeError:
                pass

    @property
    def model(self) -> Any:
        model = self._model_ref()
        if model is None:
            raise ReferenceError("the model of this backend no longer exists")
        return model

    # ----------------------------------------------------------------- inputs
    def to_numpy(self, x: Any) -> np.ndarray:
        """The user's input (numpy, torch or tf tensor) as a numpy array, dtype kept."""
        return to_numpy(x)

    def input_names(self, count: int) -> Optional[list[str]]:
        """The model's names for the entries of a tuple/list ``x`` of ``count`` arrays, in order (for
        messages); a list shorter than ``count`` says the model takes fewer inputs. None where the
        model does not tell (the default)."""
        return None

    def query(self, spec: InputSpec, *, head: Any = None, logits: bool = True, layer: Any = None) -> Query:
        """A :class:`Query`, with ``layer`` (and a layer given as ``head``) resolved to the model's layer."""
        if layer is not None and not isinstance(layer, LayerRef):
            layer = self.find_layer(layer)
        return Query(spec, self._resolve_head(head), logits, layer)

    def _resolve_head(self, head: Any) -> Any:
        """Layer objects become :class:`LayerRef`; ints and strs are decided per framework."""
        if head is None or isinstance(head, (int, str, LayerRef)):
            return head
        if self.is_layer(head):
            return self.find_layer(head)
        if callable(head):
            return head
        raise SaliencyError(
            f"head must be None, an output index or name, a layer (name, index or object) or a callable; "
            f"got {type(head).__name__}"
        )

    @abstractmethod
    def find_layer(self, layer: Any) -> LayerRef:
        """The model's layer named by ``layer`` (a name or index as in ``layers()``, or the object)."""

    @abstractmethod
    def is_layer(self, obj: Any) -> bool:
        """Whether ``obj`` is a layer object of this framework."""

    def by_name(self, value: Any) -> Any:
        """``value`` as its name in ``layers()`` when it is a layer object, else unchanged: what
        names the same layer in a copy of the model (a deep copy, a pickled Keras model)."""
        return self.find_layer(value).name if self.is_layer(value) else value

    @abstractmethod
    def describe_expected_input(self) -> Optional[str]:
        """What input the model expects, e.g. ``"(batch, 3, 32, 32)"``, if it can be told."""

    def computes_unseen(self) -> bool:
        """Whether a computation may run in a worker thread while the user's thread goes on: one run
        :func:`beside_the_user` changes nothing of the model's that the user could see meanwhile (DESIGN
        §5: no flag flipped, no ``call`` swapped). False unless the backend knows better; the widgets
        then compute on the caller's thread."""
        return False

    @property
    @abstractmethod
    def is_training(self) -> bool:
        """Whether the model is in training mode (attributions are computed in inference mode anyway)."""

    @abstractmethod
    def skipped_activation(self, query: Query) -> Optional[str]:
        """``"softmax"``, ``"sigmoid"`` or ``"log_softmax"``: the activation the explained output
        comes straight out of (skipped with ``logits=True``), if one was found; else None.
        Known after the first call with this query."""

    def unskipped_activation(self, query: Query) -> Optional[str]:
        """An activation the explained output comes out of that could not be skipped (e.g. a
        ``torch.softmax`` called as a function), if the backend can tell."""
        return None

    def per_sample_output_shape(self, query: Query, entries: list[np.ndarray]) -> Optional[tuple[int, ...]]:
        """One sample's explained output shape for ``entries``, when the model's structure shows
        that each sample's output depends on that sample alone; None where only running the model
        can tell (attribution then probes it with a reordered batch). None unless overridden."""
        return None

    # ---------------------------------------------------------------- compute
    @abstractmethod
    def forward(self, query: Query, entries: list[np.ndarray], activation: Optional[np.ndarray] = None) -> np.ndarray:
        """The explained output for a batch, in inference mode, without recording gradients."""

    @abstractmethod
    def activation(self, query: Query, entries: list[np.ndarray]) -> np.ndarray:
        """The output of ``query.layer`` for a batch."""

    @abstractmethod
    def vjp(self, query: Query, entries: list[np.ndarray], targets: Targets,
            activation: Optional[np.ndarray] = None, *, layout: Any = None,
            copy_weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(outputs, gradients)``: the gradient of each sample's target output with respect to
        each attributed entry, or to the layer's output (a list of one). ``targets``: one flat
        output index per sample (an int64 array), one int every sample shares, or None for each
        sample's arg-max, taken from this same forward pass. ``layout``: one of :meth:`layouts`
        (the same numbers, computed at another speed). ``copy_weights``: the batch is that many
        copies of ``batch`` samples (SmoothGrad, integrated gradients); the gradients come back
        as their weighted sum over the copies, ``(batch, *shape)`` (:func:`sum_of_copies`)."""

    def staged(self, array: np.ndarray) -> Any:
        """``array`` where batched passes are computed. SmoothGrad and integrated gradients build
        their points from staged arrays (with ``*``, ``+=``, ``reshape``) and pass them to
        :meth:`vjp` in place of the attributed entries (or of ``activation``); a backend whose
        model sits on an accelerator stages there, so the points are never copied over. numpy here."""
        return array

    def standard_normal(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Any:
        """float32 standard normal noise of ``shape``, where :meth:`staged` puts arrays, seeded by
        ``rng`` (the same seed, the same noise), drawn copy after copy along the first axis so that
        splitting the copies into passes changes nothing. numpy draws it from ``rng`` itself."""
        return rng.standard_normal(shape, dtype=np.float32)

    def layouts(self, query: Query, entries: list[np.ndarray]) -> tuple:
        """Memory layouts :meth:`vjp` can run these entries in, its default first; SmoothGrad and
        integrated gradients measure them (see ``passes.py``). One default layout unless overridden."""
        return (None,)

    def layer_vjp(self, query: Query, entries: list[np.ndarray], targets: Targets
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(outputs, activation, gradient)``: :meth:`vjp` at ``query.layer`` together with that
        layer's output (Grad-CAM needs both). Backends that capture it in the same pass override this."""
        outputs, (gradient,) = self.vjp(query, entries, targets)
        return outputs, self.activation(query, entries), gradient

    @abstractmethod
    def jacobian_rows(self, query: Query, entries: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        """Per-sample Jacobian of the flat outputs ``rows``, one array per attributed entry
        (or for the layer's output): ``(batch, len(rows), *shape)``. One vectorized pass,
        not a loop over rows; the caller chunks ``rows`` under the memory budget."""

    @abstractmethod
    def output_rows(self, query: Query, entries: list[np.ndarray], positions: np.ndarray, tokens: np.ndarray, *,
                    minus: Optional[np.ndarray] = None, normalize: Optional[str] = None,
                    activation: Optional[Any] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(scores, layer output, gradients)`` of ``n = len(positions)`` scores per sample of a
        sequence output ``(batch, length, vocabulary)`` (a language model's logits), from one forward
        pass and one vectorised backward pass: score ``k`` is the output at ``positions[k]``,
        entry ``tokens[k]``, normalised over the vocabulary first with ``normalize``
        (``"log_softmax"`` or ``"softmax"``; at those positions only), minus entry ``minus[k]`` of
        the same position where given. ``scores`` ``(batch, n)``; the output of ``query.layer``
        (``activation`` where given; its calls joined along axis 1, see :class:`LayerRef`)
        ``(batch, *shape)``; the gradient of each score with respect to it ``(batch, n, *shape)``.
        The caller chunks the rows under the memory budget."""

    def generate(self, inputs: dict[str, np.ndarray], max_new_tokens: int, options: dict[str, Any]
                 ) -> Optional[np.ndarray]:
        """The model's own ``generate`` on ``inputs`` (token ids by the model's argument names),
        in inference mode, greedy unless ``options`` say otherwise (``seed``: seeds sampling without
        touching the global random state); None where the model has no ``generate``."""
        return None

    # ---------------------------------------------------------------- weights
    @abstractmethod
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        """Every layer with its per-sample output shape and parameter count."""

    @abstractmethod
    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        """The named weight blocks of one layer (a name, an index or the layer object)."""

    def layer_cell(self, layer: Any) -> Optional[RecurrentCell]:
        """What a recurrent layer computes (its update equation names its weight blocks); None for
        other layers (the default)."""
        return None

    def architecture(self) -> Optional[tuple]:
        """What makes two models the same network for speed: their class and their weights' names,
        shapes and dtypes (not values), and where they run; None when unknown. Models of one
        architecture share their measured pass sizes (``passes.py``)."""
        return None

    def named_weights(self) -> Optional[list[tuple[str, np.ndarray]]]:
        """Every weight of the model, trainable or not, as ``(name, array)`` in a stable order (what
        a run of ``attribute_dataset`` is fingerprinted by); None where they cannot be found."""
        return None


_BESIDE = threading.local()


@contextmanager
def beside_the_user() -> Iterator[None]:
    """Marks the computations of this thread, in this block, as running beside the user's thread (a
    widget's worker, started only where :meth:`Backend.computes_unseen`): a backend then changes no
    flag the user could read meanwhile (torch leaves ``requires_grad`` as it is)."""
    before = getattr(_BESIDE, "on", False)
    _BESIDE.on = True
    try:
        yield
    finally:
        _BESIDE.on = before


def running_beside_the_user() -> bool:
    """Whether this thread computes :func:`beside_the_user`."""
    return getattr(_BESIDE, "on", False)


def target_array(targets: Targets, batch: int, dtype: Any = np.int64) -> np.ndarray:
    """:meth:`Backend.vjp`'s ``targets`` as a compiled function takes them: one int per sample, -1 for
    the arg-max (one argument signature whatever was asked, so nothing is traced again)."""
    if targets is None or isinstance(targets, (int, np.integer)):
        return np.full(batch, -1 if targets is None else int(targets), dtype=dtype)
    return np.asarray(targets, dtype=dtype)


def positional_names(function: Callable, count: int) -> Optional[list[str]]:
    """The positional parameters of ``function`` (what names the entries of a tuple ``x``); None where
    ``*args`` takes ``count`` entries beyond them, or where it has no signature."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if count > len(positional) and any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return positional


def sum_of_copies(gradient: np.ndarray, copy_weights: np.ndarray) -> np.ndarray:
    """``Σ_k copy_weights[k] · gradient[k]``, the rows of ``gradient`` being ``len(copy_weights)``
    copies of one batch: ``(copies × batch, *shape)`` → ``(batch, *shape)``, float32."""
    copies = gradient.reshape(len(copy_weights), -1, *gradient.shape[1:])
    return np.tensordot(copy_weights.astype(np.float32), copies, axes=1)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view of ``x`` (numpy, torch tensor, tf tensor or nested lists), dtype kept.

    Duck-typed so that this module imports no framework. A tensor without values (sparse,
    nested, meta) and lists of different lengths get a :class:`SaliencyError` saying what to pass.
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        _require_dense(x)
        x = x.detach().cpu()
        # numpy has no bfloat16: floating tensors of any precision come out as float32
        return (x.float() if x.is_floating_point() else x).numpy()
    if hasattr(x, "numpy") and callable(x.numpy):  # tf.Tensor / tf.Variable
        return np.asarray(x.numpy())
    try:
        return np.asarray(x)
    except ValueError:
        raise SaliencyError(
            f"a {type(x).__name__} of sequences of different lengths is not an array; pass a rectangular array "
            "(pad the sequences to one length), or a tuple of arrays for a model with several inputs"
        ) from None


def _require_dense(tensor: Any) -> None:
    """Refuses a torch tensor that has no dense values to copy: a meta tensor, a sparse or nested one."""
    if getattr(tensor, "is_meta", False):
        raise SaliencyError("a meta tensor has a shape but no values; pass a tensor with data (on 'cpu' or 'cuda')")
    layout = str(getattr(tensor, "layout", "torch.strided"))
    if layout != "torch.strided":
        raise SaliencyError(f"a tensor of layout {layout} has no dense values; pass tensor.to_dense() (or the "
                            "padded tensor of a nested one)")
