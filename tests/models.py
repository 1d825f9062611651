"""Small models built in tests (no downloads): the same architectures in torch and Keras."""

from __future__ import annotations

import numpy as np


def torch_mlp(n_in: int = 6, hidden: int = 16, n_out: int = 4, softmax: bool = False, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = [nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_out)]
    if softmax:
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers).eval()


def torch_cnn(channels: int = 3, size: int = 12, n_out: int = 5, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.Softplus(), nn.Flatten(),
        nn.Linear(6 * (size // 2) ** 2, n_out),
    ).eval()


def torch_lstm(n_features: int = 3, hidden: int = 5, n_out: int = 2, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class LSTMThenDense(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
            self.head = nn.Linear(hidden, n_out)

        def forward(self, x):
            seq, _ = self.lstm(x)
            return self.head(seq[:, -1])

    return LSTMThenDense().eval()


def keras_mlp(n_in: int = 6, hidden: int = 16, n_out: int = 4, softmax: bool = False, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((n_in,)),
        keras.layers.Dense(hidden, activation="tanh"),
        keras.layers.Dense(n_out, activation="softmax" if softmax else None),
    ])


def keras_mlp_like(torch_model, softmax: bool = False):
    """A Keras MLP holding exactly the weights of ``torch_mlp`` (kernels transposed)."""
    first, last = torch_model[0], torch_model[2]
    model = keras_mlp(first.in_features, first.out_features, last.out_features, softmax=softmax)
    for dense, linear in zip((model.layers[0], model.layers[1]), (first, last)):
        dense.set_weights([linear.weight.detach().numpy().T, linear.bias.detach().numpy()])
    return model


def keras_cnn(size: int = 12, channels: int = 3, n_out: int = 5, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((size, size, channels)),
        keras.layers.Conv2D(4, 3, padding="same", activation="tanh"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, padding="same", activation="softplus"),
        keras.layers.Flatten(),
        keras.layers.Dense(n_out),
    ])


def keras_lstm(steps: int = 7, n_features: int = 3, hidden: int = 5, n_out: int = 2, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((steps, n_features)),
        keras.layers.LSTM(hidden),
        keras.layers.Dense(n_out),
    ])


def keras_backend() -> str:
    """The backend Keras runs on: "tensorflow", "torch" or "jax"."""
    import keras

    return keras.backend.backend()


def keras_grad(f, inputs) -> list[np.ndarray]:
    """The gradient of ``f(tensors)`` (a scalar written with ``keras.ops``) with respect to each of
    ``inputs`` (numpy arrays or backend tensors), written out by hand with the framework Keras runs
    on: a ``tf.GradientTape``, ``torch.autograd.grad`` on fresh tensors that require grad, or
    ``jax.grad``. An input ``f`` does not use gets zeros."""
    import keras

    arrays = [np.asarray(keras.ops.convert_to_numpy(v)) for v in inputs]
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in arrays]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            y = f(tensors)
        grads = [None if g is None else g.numpy() for g in tape.gradient(y, tensors)]
    elif name == "torch":
        import torch

        tensors = [keras.ops.convert_to_tensor(a).detach().requires_grad_(True) for a in arrays]
        grads = [None if g is None else g.detach().cpu().numpy()
                 for g in torch.autograd.grad(f(tensors), tensors, allow_unused=True)]
    elif name == "jax":
        import jax
        import jax.numpy as jnp

        grads = [np.asarray(g) for g in jax.grad(lambda ts: f(list(ts)))([jnp.asarray(a) for a in arrays])]
    else:
        raise NotImplementedError(f"no hand-written gradient for Keras on {name!r}")
    return [np.zeros_like(a) if g is None else g for g, a in zip(grads, arrays)]


def keras_numpy(tensor) -> np.ndarray:
    """A Keras output (a tf / torch tensor or a jax array) as numpy."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def tape_gradient(model, x: np.ndarray, target) -> np.ndarray:
    """d model(x)[i, target[i]] / d x for a Keras model, written out by hand with the framework
    Keras runs on (:func:`keras_grad`)."""
    import keras

    ops = keras.ops
    index = np.asarray(target, dtype="int32").reshape(-1, 1)

    def selected(ts):
        out = ops.reshape(model(ts[0], training=False), (len(x), -1))
        return ops.sum(ops.take_along_axis(out, ops.convert_to_tensor(index), axis=1))

    return keras_grad(selected, [x])[0]


def torch_noise(seed, copies: int, shape: tuple) -> np.ndarray:
    """SmoothGrad's noise for a torch model, written out: ``copies`` standard normal arrays of
    ``shape``, each drawn by a torch generator seeded with the next integer of the numpy stream
    ``seed`` (an int: ``default_rng(seed)``; or a numpy Generator)."""
    import torch

    stream = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    generator = torch.Generator()
    return np.stack([torch.empty(shape).normal_(generator=generator.manual_seed(int(s))).numpy()
                     for s in stream.integers(2 ** 63, size=copies)])


def central_differences(f, x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """d f(x) / d x by central differences, for a scalar function of a float64 array."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat = grad.reshape(-1)
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = eps
        step = step.reshape(x.shape)
        flat[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad
