"""The rows of the conformance matrix (``test_conformance.py``): one tiny model and batch per
framework × input kind, with hand-written references (not a test module).

Model classes are defined inside their builders, so that cloudpickle ships them by value to
the Ray workers of the ``dataset_ray`` cells (which need not be able to import this module).

A :class:`Case` holds what every entry point is called with (``model``, ``x``, ``kw``: the
``head=`` / ``layer=`` of the row) and the references the cells compare against, written
out with ``torch.autograd.grad`` / the gradient of the framework Keras runs on (``models.keras_grad``)
and the model's own forward pass,
never through ``saliency_widgets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from _widget_models import tiny_bert

#: Every model has three outputs in its explained head: ``TARGET`` is explained, ``OTHER``
#: is the output a widget is retargeted to.
N_OUT, TARGET, OTHER = 3, 1, 2
BATCH = 3


@dataclass
class Case:
    """One row of the matrix: a model, its batch and its references."""

    framework: str
    kind: str
    model: Any
    x: Any
    #: ``head=`` / ``layer=`` given to every entry point.
    kw: dict[str, Any]
    #: ``target -> (gradient, attributed value)``, each in the structure ``sw.saliency`` returns
    #: (``x``'s, ``None`` for fixed entries; one array with ``layer=``).
    gradient: Optional[Callable[[int], tuple[Any, Any]]] = None
    #: ``x -> (batch, N_OUT)`` scores of the explained head (the model's own forward pass).
    scores: Optional[Callable[[Any], np.ndarray]] = None
    #: ``(batch, N_OUT)`` scores at integrated gradients' baseline (zeros, or ``ig_kw``'s).
    baseline_scores: Optional[Callable[[], np.ndarray]] = None
    #: ``(target, steps) -> values``: captum's integrated gradients (torch), else None.
    captum_ig: Optional[Callable[[int, int], Any]] = None
    #: Extra options of the integrated-gradients cells (a baseline for token ids).
    ig_kw: dict[str, Any] = field(default_factory=dict)
    #: ``fixed=`` of the widget cells (a widget shows one attributed entry), also given to the
    #: ``sw.saliency`` / ``sw.jacobian`` they are compared with.
    widget_fixed: Any = None
    #: The key of the entry a widget shows (structured ``x``), else None.
    shown: Any = None
    #: ``tokens=`` of the widget cells (a tokenizer), else None.
    tokens: Any = None
    #: Parameter count of the model, by hand.
    n_params: int = 0
    #: A documented refusal: the regex every entry point's ``SaliencyError`` matches.
    refusal: Optional[str] = None

    @property
    def widget_kw(self) -> dict[str, Any]:
        """``head=`` / ``layer=`` / ``fixed=`` of the widget cells and of their references."""
        return {**self.kw, "fixed": self.widget_fixed}

    def dataset(self) -> Any:
        """``x`` as ``sw.attribute_dataset`` reads it: an array or a dict of arrays as is; a tuple
        as a list of ``((a, b), y)`` batches (a bare tuple would read as ``(x, y)``)."""
        if not isinstance(self.x, tuple):
            return self.x
        labels = np.zeros(BATCH, dtype=np.int64)
        return [(tuple(v[s:s + 2] for v in self.x), labels[s:s + 2]) for s in range(0, BATCH, 2)]


def mirror(x: Any, fn: Callable[[str, np.ndarray], Any]) -> Any:
    """``x``'s structure with ``fn(key, leaf)`` in place of each array (key: name or position)."""
    if isinstance(x, dict):
        return {k: fn(k, v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(fn(i, v) for i, v in enumerate(x))
    return fn(None, x)


def weights_bytes(model: Any) -> list[bytes]:
    """Every weight of a torch, Keras or Flax NNX model (its whole state: RNG counts too), as bytes
    (to see that nothing changed)."""
    if any(cls.__module__.startswith("flax") for cls in type(model).__mro__):
        import jax
        from flax import nnx

        return [np.asarray(v).tobytes() for v in jax.tree_util.tree_leaves(nnx.state(model))]
    if hasattr(model, "state_dict") and not hasattr(model, "get_weights"):
        return [v.detach().cpu().numpy().tobytes() for v in model.state_dict().values()]
    return [w.tobytes() for w in model.get_weights()]


def leaves(x: Any) -> list[Any]:
    """The arrays of ``x`` in order (a dict's values, a tuple's items, or ``[x]``)."""
    if isinstance(x, dict):
        return list(x.values())
    return list(x) if isinstance(x, (tuple, list)) else [x]


def is_float(a: Any) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.floating)


def floats(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


# ------------------------------------------------------------------ torch
def _torch_call(model: Any, inputs: Any) -> Any:
    """The model called as the library documents: ``model(*x)``, ``model(**x)`` or ``model(x)``."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _torch_references(model: Any, x: Any, pick: Callable[[Any], Any], layer: Any = None) -> dict[str, Any]:
    """Hand-written gradient and scores of ``pick(model(...))`` w.r.t. the float entries of ``x``
    (or ``layer``'s output, captured by a forward hook)."""
    def gradient(target: int) -> tuple[Any, Any]:
        inputs = mirror(x, lambda _k, v: torch.tensor(v, requires_grad=is_float(v)))
        captured = []
        hook = layer.register_forward_hook(lambda _m, _a, out: captured.append(out)) if layer is not None else None
        try:
            score = pick(_torch_call(model, inputs))[:, target].sum()
        finally:
            if hook is not None:
                hook.remove()
        if layer is not None:
            (g,) = torch.autograd.grad(score, captured[0])
            return g.numpy(), captured[0].detach().numpy()
        wrt = [t for t in leaves(inputs) if t.requires_grad]
        grads = iter(torch.autograd.grad(score, wrt))
        return (mirror(inputs, lambda _k, t: next(grads).numpy() if t.requires_grad else None),
                mirror(x, lambda _k, v: v if is_float(v) else None))

    def scores(batch: Any) -> np.ndarray:
        with torch.no_grad():
            return pick(_torch_call(model, mirror(batch, lambda _k, v: torch.tensor(v)))).numpy()

    return {"gradient": gradient, "scores": scores,
            "n_params": sum(p.numel() for p in model.parameters())}


def _torch_zero_baseline(case_x: Any, scores: Callable[[Any], np.ndarray]) -> Callable[[], np.ndarray]:
    return lambda: scores(mirror(case_x, lambda _k, v: np.zeros_like(v) if is_float(v) else v))


def _captum_ig(forward: Callable[..., Any], x: Any) -> Callable[[int, int], Any]:
    """captum's IntegratedGradients (Gauss–Legendre, as the library) of ``forward(*entries)``."""
    from captum.attr import IntegratedGradients

    def ig(target: int, steps: int) -> Any:
        entries = tuple(torch.tensor(v) for v in leaves(x))
        values = IntegratedGradients(forward).attribute(entries, target=target, n_steps=steps,
                                                        method="gausslegendre")
        arrays = iter(v.detach().numpy() for v in values)
        return mirror(x, lambda _k, _v: next(arrays))

    return ig


def torch_array(rng: np.random.Generator) -> Case:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, N_OUT)).eval()
    x = floats(rng, BATCH, 4)
    refs = _torch_references(model, x, lambda out: out)
    return Case("torch", "array", model, x, {}, **refs, baseline_scores=_torch_zero_baseline(x, refs["scores"]),
                captum_ig=lambda t, s: _captum_ig(model, (x,))(t, s)[0])


def _two_floats(keywords: bool) -> Any:
    """``forward(a, b)``, or ``forward(**inputs)`` reading ``a`` and ``b``: two float inputs."""

    class Positional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.a, self.b = nn.Linear(4, 5), nn.Linear(2, 5)
            self.out = nn.Linear(5, N_OUT)

        def forward(self, a, b):
            return self.out(torch.tanh(self.a(a)) * self.b(b))

    class Keywords(Positional):
        def forward(self, **inputs):
            return super().forward(inputs["a"], inputs["b"])

    return (Keywords if keywords else Positional)().eval()


def torch_structured(rng: np.random.Generator, as_dict: bool) -> Case:
    model = _two_floats(keywords=as_dict)
    a, b = floats(rng, BATCH, 4), floats(rng, BATCH, 2)
    x = {"a": a, "b": b} if as_dict else (a, b)
    refs = _torch_references(model, x, lambda out: out)
    forward = (lambda a_, b_: model(a=a_, b=b_)) if as_dict else model
    return Case("torch", "dict" if as_dict else "tuple", model, x, {}, **refs,
                baseline_scores=_torch_zero_baseline(x, refs["scores"]), captum_ig=_captum_ig(forward, x),
                widget_fixed=["a"] if as_dict else [0], shown="b" if as_dict else 1)


def torch_head(rng: np.random.Generator) -> Case:
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(2)
            self.hidden = nn.Linear(4, 5)
            self.first, self.second = nn.Linear(5, 2), nn.Linear(5, N_OUT)

        def forward(self, x):
            h = torch.tanh(self.hidden(x))
            return {"first": self.first(h), "second": self.second(h)}

    model = TwoHeads().eval()
    x = floats(rng, BATCH, 4)
    refs = _torch_references(model, x, lambda out: out["second"])
    return Case("torch", "head", model, x, {"head": "second"}, **refs,
                baseline_scores=_torch_zero_baseline(x, refs["scores"]),
                captum_ig=lambda t, s: _captum_ig(lambda v: model(v)["second"], (x,))(t, s)[0])


def torch_tokens(vocab_dir: Any) -> Case:
    """A 1-layer BERT (``BertForSequenceClassification``) on ids + masks, attributed at its word
    embeddings; integrated gradients from the [PAD] ids' embeddings (as captum's baseline)."""
    from captum.attr import LayerIntegratedGradients

    model, tokenizer, x = tiny_bert(vocab_dir, ("the film was great", "a long dull plot again", "not bad at all"))
    words = model.bert.embeddings.word_embeddings
    refs = _torch_references(model, x, lambda out: out.logits, layer=words)
    pad = {**x, "input_ids": np.zeros_like(x["input_ids"])}

    def logits(ids, token_types, mask):
        return model(input_ids=ids, token_type_ids=token_types, attention_mask=mask).logits

    def captum_ig(target: int, steps: int) -> np.ndarray:
        as_t = {k: torch.tensor(v) for k, v in x.items()}
        values = LayerIntegratedGradients(logits, words).attribute(
            as_t["input_ids"], baselines=torch.zeros_like(as_t["input_ids"]), target=target, n_steps=steps,
            additional_forward_args=(as_t["token_type_ids"], as_t["attention_mask"]), method="gausslegendre")
        return values.detach().numpy()

    return Case("torch", "tokens", model, x, {"layer": words}, **refs, baseline_scores=lambda: refs["scores"](pad),
                captum_ig=captum_ig, ig_kw={"baseline": {"input_ids": pad["input_ids"]}},
                tokens=tokenizer)


def torch_ids_without_layer(vocab_dir: Any) -> Case:
    """Token ids with no ``layer=``: refused, naming ``layer=`` (DESIGN §3.5)."""
    case = torch_tokens(vocab_dir)
    return Case("torch", "ids_without_layer", case.model, case.x, {}, refusal="layer=")


def torch_layer_twice(rng: np.random.Generator) -> Case:
    """A layer that runs twice per forward pass, given as ``layer=``: refused (DESIGN §3.5)."""

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(3)
            self.block = nn.Linear(N_OUT, N_OUT)

        def forward(self, x):
            return self.block(torch.tanh(self.block(x)))

    model = Twice().eval()
    return Case("torch", "layer_twice", model, floats(rng, BATCH, N_OUT), {"layer": model.block},
                refusal="more than once")


# ------------------------------------------------------------------ keras
def _keras_references(model: Any, x: Any, pick: Callable[[Any], Any]) -> dict[str, Any]:
    """Hand-written gradient (a ``tf.GradientTape``, ``torch.autograd.grad`` or ``jax.grad``: the
    framework Keras runs on, see ``models.keras_grad``) and scores of ``pick(model(x))`` w.r.t. ``x``'s entries."""
    import keras
    from models import keras_grad

    def gradient(target: int) -> tuple[Any, Any]:
        def score(tensors: list[Any]) -> Any:
            rebuilt = iter(tensors)
            inputs = mirror(x, lambda _k, _v: next(rebuilt))
            feed = list(inputs) if isinstance(inputs, tuple) else inputs
            return keras.ops.sum(pick(model(feed, training=False))[:, target])

        grads = iter(keras_grad(score, leaves(x)))
        return mirror(x, lambda _k, _v: next(grads)), x

    def scores(batch: Any) -> np.ndarray:
        feed = list(batch) if isinstance(batch, tuple) else batch
        return np.asarray(keras.ops.convert_to_numpy(pick(model(feed, training=False))))

    return {"gradient": gradient, "scores": scores, "n_params": model.count_params(),
            "baseline_scores": lambda: scores(mirror(x, lambda _k, v: np.zeros_like(v)))}


def keras_array(rng: np.random.Generator) -> Case:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(N_OUT)])
    x = floats(rng, BATCH, 4)
    return Case("keras", "array", model, x, {}, **_keras_references(model, x, lambda out: out))


def keras_structured(rng: np.random.Generator, as_dict: bool) -> Case:
    """Two named float inputs: a dict-input model given a dict, a list-input model given a tuple."""
    import keras

    keras.utils.set_random_seed(1)
    a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    h = keras.layers.Multiply()([keras.layers.Dense(5, activation="tanh")(a), keras.layers.Dense(5)(b)])
    out = keras.layers.Dense(N_OUT)(h)
    model = keras.Model({"a": a, "b": b} if as_dict else [a, b], out)
    xa, xb = floats(rng, BATCH, 4), floats(rng, BATCH, 2)
    x = {"a": xa, "b": xb} if as_dict else (xa, xb)
    return Case("keras", "dict" if as_dict else "tuple", model, x, {}, **_keras_references(model, x, lambda o: o),
                widget_fixed=["a"] if as_dict else [0], shown="b" if as_dict else 1)


def keras_head(rng: np.random.Generator) -> Case:
    import keras

    keras.utils.set_random_seed(2)
    inp = keras.Input((4,))
    h = keras.layers.Dense(5, activation="tanh")(inp)
    first = keras.layers.Dense(2, name="first")(h)
    second = keras.layers.Dense(N_OUT, name="second")(h)
    model = keras.Model(inp, [first, second])
    x = floats(rng, BATCH, 4)
    return Case("keras", "head", model, x, {"head": "second"}, **_keras_references(model, x, lambda out: out[1]))


def _keras_token_model(length: int, vocab: int) -> tuple[Any, Any, Any, Any]:
    """``(model, embedding, pooling, dense)``: Input(int) → Embedding → GlobalAveragePooling1D → Dense."""
    import keras

    keras.utils.set_random_seed(3)
    ids = keras.Input((length,), dtype="int32")
    embedding = keras.layers.Embedding(vocab, 4, name="embedding")
    pooling, dense = keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(N_OUT)
    return keras.Model(ids, dense(pooling(embedding(ids)))), embedding, pooling, dense


def keras_tokens(rng: np.random.Generator) -> Case:
    """Token ids attributed at the Embedding layer object; references from its output, by hand."""
    import keras
    from models import keras_grad

    model, embedding, pooling, dense = _keras_token_model(length=5, vocab=12)
    x = rng.integers(1, 12, size=(BATCH, 5)).astype(np.int32)

    def gradient(target: int) -> tuple[np.ndarray, np.ndarray]:
        act = keras.ops.convert_to_numpy(embedding(x))
        (grad,) = keras_grad(lambda ts: keras.ops.sum(dense(pooling(ts[0]))[:, target]), [act])
        return grad, act

    def baseline_scores() -> np.ndarray:  # the zero embedding of every token
        return keras.ops.convert_to_numpy(dense(pooling(np.zeros((BATCH, 5, 4), np.float32))))

    return Case("keras", "tokens", model, x, {"layer": embedding}, gradient=gradient,
                scores=lambda batch: keras.ops.convert_to_numpy(model(batch, training=False)),
                baseline_scores=baseline_scores, n_params=model.count_params())


def keras_ids_without_layer(rng: np.random.Generator) -> Case:
    case = keras_tokens(rng)
    return Case("keras", "ids_without_layer", case.model, case.x, {}, refusal="layer=")


def keras_layer_twice(rng: np.random.Generator) -> Case:
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((N_OUT,))
    block = keras.layers.Dense(N_OUT, name="block")
    model = keras.Model(inp, block(keras.layers.Activation("tanh")(block(inp))))
    return Case("keras", "layer_twice", model, floats(rng, BATCH, N_OUT), {"layer": block}, refusal="more than once")


#: ``(framework, kind) -> builder(rng, vocab_dir)``: the rows of the matrix.
BUILDERS: dict[tuple[str, str], Callable[[np.random.Generator, Any], Case]] = {
    ("torch", "array"): lambda rng, _d: torch_array(rng),
    ("torch", "tuple"): lambda rng, _d: torch_structured(rng, as_dict=False),
    ("torch", "dict"): lambda rng, _d: torch_structured(rng, as_dict=True),
    ("torch", "tokens"): lambda _r, d: torch_tokens(d),
    ("torch", "head"): lambda rng, _d: torch_head(rng),
    ("torch", "ids_without_layer"): lambda _r, d: torch_ids_without_layer(d),
    ("torch", "layer_twice"): lambda rng, _d: torch_layer_twice(rng),
    ("keras", "array"): lambda rng, _d: keras_array(rng),
    ("keras", "tuple"): lambda rng, _d: keras_structured(rng, as_dict=False),
    ("keras", "dict"): lambda rng, _d: keras_structured(rng, as_dict=True),
    ("keras", "tokens"): lambda rng, _d: keras_tokens(rng),
    ("keras", "head"): lambda rng, _d: keras_head(rng),
    ("keras", "ids_without_layer"): lambda rng, _d: keras_ids_without_layer(rng),
    ("keras", "layer_twice"): lambda rng, _d: keras_layer_twice(rng),
}
