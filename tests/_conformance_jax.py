"""The JAX rows of the conformance matrix (``test_conformance.py``): Flax NNX models, with
references written out by hand with ``jax.grad`` on ``nnx.split`` / ``nnx.merge`` and the
model's own forward pass, never through ``saliency_widgets`` (not a test module).

Model classes are defined inside their builders, so that cloudpickle ships them by value to
the Ray workers of the ``dataset_ray`` cells.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from _conformance_models import BATCH, N_OUT, Case, floats, leaves, mirror


def _call(model: Any, x: Any) -> Any:
    """``model(x)``, ``model(*x)`` or ``model(**x)``, as the library calls it."""
    if isinstance(x, dict):
        return model(**x)
    return model(*x) if isinstance(x, tuple) else model(x)


def _references(model: Any, x: Any, pick: Callable[[Any], Any]) -> dict[str, Any]:
    """Hand-written ``jax.grad`` of ``pick(model(x))[:, target]`` summed over the batch, w.r.t. every
    entry of ``x``, through a copy merged from the model's state; scores from the model itself."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graphdef, state = nnx.split(model)

    def gradient(target: int) -> tuple[Any, Any]:
        def score(entries: list[Any]) -> Any:
            rebuilt = iter(entries)
            return pick(_call(nnx.merge(graphdef, state), mirror(x, lambda _k, _v: next(rebuilt))))[:, target].sum()

        grads = iter(np.asarray(g) for g in jax.grad(score)([jnp.asarray(v) for v in leaves(x)]))
        return mirror(x, lambda _k, _v: next(grads)), x

    def scores(batch: Any) -> np.ndarray:
        return np.asarray(pick(_call(model, mirror(batch, lambda _k, v: jnp.asarray(v)))))

    n_params = sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))
    return {"gradient": gradient, "scores": scores, "n_params": n_params,
            "baseline_scores": lambda: scores(mirror(x, lambda _k, v: np.zeros_like(v)))}


def jax_array(rng: np.random.Generator) -> Case:
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.hidden, self.out = nnx.Linear(4, 5, rngs=rngs), nnx.Linear(5, N_OUT, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return self.out(nnx.tanh(self.hidden(x)))

    model, x = MLP(nnx.Rngs(0)), floats(rng, BATCH, 4)
    return Case("jax", "array", model, x, {}, **_references(model, x, lambda out: out))


def jax_structured(rng: np.random.Generator, as_dict: bool) -> Case:
    """Two float inputs, ``model(a, b)``: given a dict by name or a tuple in order."""
    from flax import nnx

    class TwoInputs(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.left, self.right = nnx.Linear(4, 5, rngs=rngs), nnx.Linear(2, 5, rngs=rngs)
            self.out = nnx.Linear(5, N_OUT, rngs=rngs)

        def __call__(self, a: Any, b: Any) -> Any:
            return self.out(nnx.tanh(self.left(a)) * self.right(b))

    model = TwoInputs(nnx.Rngs(1))
    xa, xb = floats(rng, BATCH, 4), floats(rng, BATCH, 2)
    x = {"a": xa, "b": xb} if as_dict else (xa, xb)
    return Case("jax", "dict" if as_dict else "tuple", model, x, {}, **_references(model, x, lambda o: o),
                widget_fixed=["a"] if as_dict else [0], shown="b" if as_dict else 1)


def jax_head(rng: np.random.Generator) -> Case:
    from flax import nnx

    class TwoHeads(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.hidden = nnx.Linear(4, 5, rngs=rngs)
            self.first, self.second = nnx.Linear(5, 2, rngs=rngs), nnx.Linear(5, N_OUT, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.tanh(self.hidden(x))
            return self.first(h), self.second(h)

    model, x = TwoHeads(nnx.Rngs(2)), floats(rng, BATCH, 4)
    return Case("jax", "head", model, x, {"head": 1}, **_references(model, x, lambda out: out[1]))


def _token_model() -> Any:
    from flax import nnx

    class Tagger(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.embed, self.out = nnx.Embed(12, 4, rngs=rngs), nnx.Linear(4, N_OUT, rngs=rngs)

        def __call__(self, ids: Any) -> Any:
            return self.head(self.embed(ids))

        def head(self, embedded: Any) -> Any:
            return self.out(embedded.mean(axis=1))

    return Tagger(nnx.Rngs(3))


def jax_tokens(rng: np.random.Generator) -> Case:
    """Token ids attributed at the ``nnx.Embed`` object; references from its output, by ``jax.grad``."""
    import jax
    import jax.numpy as jnp

    model = _token_model()
    x = rng.integers(1, 12, size=(BATCH, 5)).astype(np.int32)

    def gradient(target: int) -> tuple[np.ndarray, np.ndarray]:
        act = model.embed(jnp.asarray(x))
        grad = jax.grad(lambda a: model.head(a)[:, target].sum())(act)
        return np.asarray(grad), np.asarray(act)

    def baseline_scores() -> np.ndarray:  # the zero embedding of every token
        return np.asarray(model.head(jnp.zeros((BATCH, 5, 4), jnp.float32)))

    n_params = 12 * 4 + 4 * N_OUT + N_OUT
    return Case("jax", "tokens", model, x, {"layer": model.embed}, gradient=gradient,
                scores=lambda batch: np.asarray(model(jnp.asarray(batch))), baseline_scores=baseline_scores,
                n_params=n_params)


def jax_ids_without_layer(rng: np.random.Generator) -> Case:
    case = jax_tokens(rng)
    return Case("jax", "ids_without_layer", case.model, case.x, {}, refusal="layer=")


def jax_layer_twice(rng: np.random.Generator) -> Case:
    from flax import nnx

    class Twice(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.block = nnx.Linear(N_OUT, N_OUT, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return self.block(nnx.tanh(self.block(x)))

    model = Twice(nnx.Rngs(4))
    return Case("jax", "layer_twice", model, floats(rng, BATCH, N_OUT), {"layer": model.block},
                refusal="more than once")


#: ``(framework, kind) -> builder(rng, vocab_dir)``: the JAX rows of the matrix.
BUILDERS: dict[tuple[str, str], Callable[[np.random.Generator, Any], Case]] = {
    ("jax", "array"): lambda rng, _d: jax_array(rng),
    ("jax", "tuple"): lambda rng, _d: jax_structured(rng, as_dict=False),
    ("jax", "dict"): lambda rng, _d: jax_structured(rng, as_dict=True),
    ("jax", "tokens"): lambda rng, _d: jax_tokens(rng),
    ("jax", "head"): lambda rng, _d: jax_head(rng),
    ("jax", "ids_without_layer"): lambda rng, _d: jax_ids_without_layer(rng),
    ("jax", "layer_twice"): lambda rng, _d: jax_layer_twice(rng),
}
