"""Tiny Flax NNX models and jax functions for the JAX backend's tests (channels-last images)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
    """6 → 16 → 4, with dropout (switched off by ``eval()``) and a config dict: an unhashable static
    attribute, which makes its graph definition unhashable too."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(6, 16, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.out = nnx.Linear(16, 4, rngs=rngs)
        self.config = {"activation": "tanh"}

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.drop(getattr(jnp, self.config["activation"])(self.hidden(x))))


class CNN(nnx.Module):
    """(8, 8, 3) images → Conv(SAME) → BatchNorm → ReLU → mean over space → Linear → 3 classes.
    ``features`` and ``classify`` split it at the convolution, for hand-written references."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(3, 5, (3, 3), padding="SAME", rngs=rngs)
        self.norm = nnx.BatchNorm(5, rngs=rngs)
        self.dense = nnx.Linear(5, 3, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        return self.conv(x)

    def classify(self, a: jax.Array) -> jax.Array:
        return self.dense(jax.nn.relu(self.norm(a)).mean(axis=(1, 2)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.classify(self.features(x))


class TwoHeads(nnx.Module):
    """One trunk, two outputs: a tuple ``(class scores, regression)``, or a dict with ``as_dict``."""

    def __init__(self, rngs: nnx.Rngs, as_dict: bool = False) -> None:
        self.trunk = nnx.Linear(5, 8, rngs=rngs)
        self.classes = nnx.Linear(8, 3, rngs=rngs)
        self.value = nnx.Linear(8, 2, rngs=rngs)
        self.as_dict = as_dict

    def __call__(self, x: jax.Array) -> object:
        h = jax.nn.gelu(self.trunk(x))
        a, b = self.classes(h), self.value(h)
        return {"logits": a, "value": b} if self.as_dict else (a, b)


class Tokens(nnx.Module):
    """Token ids (batch, 7) → Embed(20, 4) → flatten → Linear → 3; ``from_embedding`` is the rest."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Embed(20, 4, rngs=rngs)
        self.dense = nnx.Linear(7 * 4, 3, rngs=rngs)

    def from_embedding(self, e: jax.Array) -> jax.Array:
        return self.dense(jnp.tanh(e).reshape(e.shape[0], -1))

    def __call__(self, ids: jax.Array) -> jax.Array:
        return self.from_embedding(self.embed(ids))


class Shared(nnx.Module):
    """Calls one Linear twice per forward pass."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.twice = nnx.Linear(4, 4, rngs=rngs)
        self.out = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.twice(jnp.tanh(self.twice(x))))


class FailsHalfway(nnx.Module):
    """Runs its first layer (in training mode: dropout, batch statistics), then raises."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.first = nnx.Linear(3, 4, rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        self.drop(self.norm(self.first(x)))
        raise RuntimeError("fails half way")


class EveryLayer(nnx.Module):
    """One of each layer type with weight blocks; runs on (batch, 4, 4, 2) images."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(2, 3, (3, 3), padding="SAME", feature_group_count=1, rngs=rngs)
        self.batch_norm = nnx.BatchNorm(3, rngs=rngs)
        self.layer_norm = nnx.LayerNorm(3, rngs=rngs)
        self.rms_norm = nnx.RMSNorm(3, rngs=rngs)
        self.embed = nnx.Embed(10, 3, rngs=rngs)
        self.lstm = nnx.LSTMCell(3, 5, rngs=rngs)
        self.fast_lstm = nnx.OptimizedLSTMCell(3, 5, rngs=rngs)
        self.gru = nnx.GRUCell(3, 5, rngs=rngs)
        self.simple = nnx.SimpleCell(3, 5, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(5, 5, rngs=rngs), nnx.Linear(5, 2, use_bias=False, rngs=rngs)])
        self.scale = nnx.Param(jnp.ones(2))

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.rms_norm(self.layer_norm(self.batch_norm(self.conv(x)))).mean(axis=(1, 2))
        h = h + self.embed(jnp.zeros(h.shape[0], jnp.int32))
        zeros = jnp.zeros((h.shape[0], 5))
        (_, a), _ = self.lstm((zeros, zeros), h)
        (_, b), _ = self.fast_lstm((zeros, zeros), h)
        c, _ = self.gru(zeros, h)
        d, _ = self.simple(zeros, h)
        for block in self.blocks:
            a = block(a + b + c + d)
        return a * self.scale


def build(cls: type, *args: object, seed: int = 0, **kwargs: object) -> nnx.Module:
    """``cls(*args, rngs=nnx.Rngs(seed), **kwargs)`` with its variables drawn here by numpy: kernels
    normal / √fan-in, biases and means normal(0, 0.2), scales and variances uniform(0.5, 1.5) — batch
    norms look trained, so inference mode visibly differs from training mode. Built abstractly
    (``nnx.eval_shape``): Flax's initializers would compile one XLA program per shape, seconds per model."""
    abstract = nnx.eval_shape(lambda: cls(*args, rngs=nnx.Rngs(seed), **kwargs))
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(seed)
    for path, var in nnx.to_flat_state(state):
        shape, dtype = var.get_value().shape, var.get_value().dtype
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            values = jax.random.key(seed)
        elif isinstance(var, nnx.RngCount):
            values = np.zeros(shape, dtype)
        elif path[-1] in ("var", "scale"):
            values = rng.uniform(0.5, 1.5, shape).astype(dtype)
        elif len(shape) >= 2:
            values = (rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))).astype(dtype)
        else:
            values = rng.normal(0, 0.2, shape).astype(dtype)
        var.set_value(jnp.asarray(values))
    return nnx.merge(graphdef, state)


def mlp(seed: int = 0) -> MLP:
    model = build(MLP, seed=seed)
    model.eval()
    return model


def cnn(seed: int = 0) -> CNN:
    model = build(CNN, seed=seed)
    model.eval()
    return model


W = np.random.default_rng(7).normal(size=(6, 3)).astype(np.float32)


def plain_function(x: jax.Array) -> jax.Array:
    """A function on jax arrays (no module): reached with ``framework="jax"``."""
    return jnp.sin(x) @ W + 0.1 * (x ** 2).sum(axis=1, keepdims=True)


jitted_function = jax.jit(plain_function)


class Recurrent(nnx.Module):
    """(batch, 5, 3) sequences → nnx.RNN(LSTMCell) → last step → Linear → 2."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.rnn = nnx.RNN(nnx.LSTMCell(3, 4, rngs=rngs))
        self.out = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.rnn(x)[:, -1])


class Vmapped(nnx.Module):
    """Runs ``inner`` under ``jax.vmap``, one sample at a time."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.inner = nnx.Linear(6, 3, rngs=rngs)
        self.out = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jax.vmap(self.inner)(x))


class Causal(nnx.Module):
    """A tiny language model: ids (batch, 6) → logits (batch, 6, 11). Its embedding runs twice, on the
    first three tokens and on the rest (a prompt and a continuation); ``from_embedding`` is the rest."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Embed(11, 4, rngs=rngs)
        self.mix = nnx.Linear(4, 4, rngs=rngs)
        self.vocab = nnx.Linear(4, 11, rngs=rngs)

    def from_embedding(self, e: jax.Array) -> jax.Array:
        h = jnp.cumsum(jnp.tanh(self.mix(e)), axis=1) / jnp.arange(1, e.shape[1] + 1)[:, None]
        return self.vocab(h)

    def __call__(self, ids: jax.Array) -> jax.Array:
        e = jnp.concatenate([self.embed(ids[:, :3]), self.embed(ids[:, 3:])], axis=1)
        return self.from_embedding(e)


class Pair(nnx.Module):
    """Two inputs, called ``model(a, b)`` (a tuple ``x``) or ``model(a=…, b=…)`` (a dict ``x``)."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.dense = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return self.dense(a) * jnp.tanh(b).sum(axis=1, keepdims=True)


class Spare(nnx.Module):
    """Holds a Linear it never calls."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(6, 4, rngs=rngs)
        self.spare = nnx.Linear(4, 4, rngs=rngs)
        self.out = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jnp.tanh(self.hidden(x)))
