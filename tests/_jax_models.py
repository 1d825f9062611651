"""Tiny Flax NNX models and jax functions for the JAX backend's tests (channels-last images)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
    """6 → 16 → 4, with dropout (switched off by ``eval()``)."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(6, 16, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.out = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.drop(jnp.tanh(self.hidden(x))))


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


def with_statistics(model: nnx.Module, seed: int = 3) -> nnx.Module:
    """``model`` with its batch norms' running statistics, scales and offsets set away from their
    initial values (as after training), so that inference mode visibly differs from training mode."""
    rng = np.random.default_rng(seed)
    for _, module in nnx.iter_modules(model):
        if isinstance(module, nnx.BatchNorm):
            n = module.mean.shape
            module.mean[...] = rng.normal(0, 0.5, n).astype(np.float32)
            module.var[...] = rng.uniform(0.5, 2.0, n).astype(np.float32)
            module.scale[...] = rng.uniform(0.5, 1.5, n).astype(np.float32)
            module.bias[...] = rng.normal(0, 0.2, n).astype(np.float32)
    return model


def mlp(seed: int = 0) -> MLP:
    model = MLP(nnx.Rngs(seed))
    model.eval()
    return model


def cnn(seed: int = 0) -> CNN:
    model = with_statistics(CNN(nnx.Rngs(seed)))
    model.eval()
    return model


W = np.random.default_rng(7).normal(size=(6, 3)).astype(np.float32)


def plain_function(x: jax.Array) -> jax.Array:
    """A function on jax arrays (no module): reached with ``framework="jax"``."""
    return jnp.sin(x) @ W + 0.1 * (x ** 2).sum(axis=1, keepdims=True)


jitted_function = jax.jit(plain_function)
