"""PyTorch backend: ``nn.Module`` or any callable on torch tensors."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch import nn

from ..errors import NonDifferentiableError, SaliencyError
from ..weights import LayerInfo, WeightBlock
from .base import Backend

_FINAL_ACTIVATIONS: dict[type, str] = {
    nn.Softmax: "softmax",
    nn.Sigmoid: "sigmoid",
    nn.LogSoftmax: "log_softmax",
}

# Layers whose output differs between train and eval mode.
_MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase)

_CONV_SPATIAL_AXES = {1: "length", 2: "height, width", 3: "depth, height, width"}


class TorchBackend(Backend):
    """Runs a torch model in eval mode and differentiates it with ``torch.autograd.grad``.

    Nothing is left on the model: train/eval flags and ``requires_grad`` are
    restored (also after an exception) and no ``.grad`` is ever written.
    """

    framework = "torch"

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self._module = model if isinstance(model, nn.Module) else None
        self._activation_module = self._find_trailing_activation()
        # Jacobian strategy per (input shape, logits): the name of the faster method.
        self._strategy: dict[tuple, str] = {}
        self._channels_last = self._module is not None and any(
            isinstance(m, nn.Conv2d) for m in self._module.modules())

    # ----------------------------------------------------------------- inputs
    def describe_expected_input(self) -> Optional[str]:
        if self._module is None:
            return None
        for layer in self._module.modules():
            if isinstance(layer, nn.Linear):
                return f"(batch, ..., {layer.in_features}) for its first Linear layer"
            if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                spatial = _CONV_SPATIAL_AXES[len(layer.kernel_size)]
                return f"(batch, {layer.in_channels}, {spatial}) for its first {type(layer).__name__} layer"
            if isinstance(layer, nn.RNNBase):
                if layer.batch_first:
                    return f"(batch, time, {layer.input_size}) for its first {type(layer).__name__} layer"
                return (f"(time, batch, {layer.input_size}) for its first {type(layer).__name__} layer "
                        "(batch_first=False; saliency_widgets needs the batch axis first)")
            if isinstance(layer, nn.Embedding):
                return "integer token ids (an Embedding layer comes first)"
        return None

    @property
    def is_training(self) -> bool:
        """True when the model is in training mode *and* that changes its output (dropout, batch norm)."""
        module = self._module
        return bool(module is not None and module.training
                    and any(isinstance(m, _MODE_DEPENDENT) for m in module.modules()))

    @property
    def final_activation(self) -> Optional[str]:
        if self._activation_module is None:
            return None
        return _FINAL_ACTIVATIONS[type(self._activation_module)]

    def _find_trailing_activation(self) -> Optional[nn.Module]:
        """The softmax/sigmoid an ``nn.Sequential`` ends with (searched into nested Sequentials)."""
        last = self._module
        while isinstance(last, nn.Sequential) and len(last) > 0:
            last = last[-1]
        if last is not self._module and type(last) in _FINAL_ACTIVATIONS:
            return last
        if isinstance(self._module, tuple(_FINAL_ACTIVATIONS)):
            return self._module
        return None

    # ---------------------------------------------------------------- compute
    @property
    def _device_and_dtype(self) -> tuple[torch.device, torch.dtype]:
        if self._module is not None:
            for p in self._module.parameters():
                return p.device, p.dtype if p.dtype.is_floating_point else torch.float32
        return torch.device("cpu"), torch.float32

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        """A copy of ``x`` on the model's device; channels-last for 2-D convolutions,
        whose CPU kernels run faster on that layout (the values are the same)."""
        device, dtype = self._device_and_dtype
        tensor = torch.tensor(x, dtype=dtype, device=device)
        if self._channels_last and tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """Eval mode, no parameter gradients, grad recording on; everything restored after.

        Only the flags this flips are recorded and flipped back, also after an exception.
        """
        module = self._module
        training = [m for m in module.modules() if m.training] if module is not None else []
        trainable = [p for p in module.parameters() if p.requires_grad] if module is not None else []
        try:
            if training:
                module.eval()
            for p in trainable:
                p.requires_grad_(False)
            with torch.inference_mode(False), torch.enable_grad():
                yield
        finally:
            for m in training:
                m.training = True
            for p in trainable:
                p.requires_grad_(True)

    def _call(self, xt: torch.Tensor, logits: bool) -> torch.Tensor:
        """The model's output, or the input of its trailing softmax/sigmoid when ``logits``."""
        handle = None
        if logits and self._activation_module is not None:
            handle = self._activation_module.register_forward_hook(lambda mod, args, out: args[0])
        try:
            out = self.model(xt)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:
            raise self._shape_error(tuple(xt.shape), err) from None
        finally:
            if handle is not None:
                handle.remove()
        if not isinstance(out, torch.Tensor):
            raise SaliencyError(
                f"the model returned {type(out).__name__}, not a tensor; wrap it so that it "
                "returns the one output tensor to explain"
            )
        return out

    def _shape_error(self, shape: tuple, err: Exception) -> SaliencyError:
        expected = self.describe_expected_input()
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = f"; the model expects {expected}" if expected else ""
        return SaliencyError(
            f"the model could not run on an input of shape {shape}{hint}. "
            f"(torch said: {first_line})"
        )

    def forward(self, x: np.ndarray, *, logits: bool) -> np.ndarray:
        with self._inference(), torch.no_grad():
            return _numpy(self._call(self._tensor(x), logits))

    def _differentiable_output(self, x: np.ndarray, logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
        xt = self._tensor(x).requires_grad_(True)
        out = self._call(xt, logits)
        if not out.requires_grad:
            raise NonDifferentiableError(
                "the model's output does not depend differentiably on its input "
                "(an argmax, a detach(), integer casts or torch.no_grad inside the model?)"
            )
        return xt, out

    def vjp(self, x: np.ndarray, cotangent: np.ndarray, *, logits: bool) -> tuple[np.ndarray, np.ndarray]:
        with self._inference():
            xt, out = self._differentiable_output(x, logits)
            cot = torch.tensor(cotangent, dtype=out.dtype, device=out.device).reshape(out.shape)
            (grad,) = torch.autograd.grad(out, xt, grad_outputs=cot, allow_unused=True)
            if grad is None:
                raise NonDifferentiableError("the model's output does not depend on its input")
            return _numpy(out.detach()), _numpy(grad)

    def jacobian_rows(self, x: np.ndarray, rows: np.ndarray, *, logits: bool) -> np.ndarray:
        key = (x.shape, logits)
        if key not in self._strategy:
            strategy, result = self._measure_strategies(x, rows, logits)
            self._strategy[key] = strategy
            return result
        return getattr(self, self._strategy[key])(x, rows, logits)

    def _measure_strategies(self, x: np.ndarray, rows: np.ndarray, logits: bool) -> tuple[str, np.ndarray]:
        """Times both Jacobian strategies on this input (best of two runs each) and keeps the faster.

        vmap over the backward pass shares one forward pass and wins for MLPs; for
        convolutions and pooling on CPU torch's batching rules are slower than one
        forward/backward of the input tiled ``len(rows)`` times.
        """
        best: dict[str, float] = {}
        result = None
        for _ in range(2):
            for name in ("_jacobian_vmap", "_jacobian_tile"):
                start = time.perf_counter()
                try:
                    value = getattr(self, name)(x, rows, logits)
                except RuntimeError:  # an op vmap cannot batch at all
                    best[name] = math.inf
                    continue
                best[name] = min(best.get(name, math.inf), time.perf_counter() - start)
                result = value
        return min(best, key=best.__getitem__), result

    def _jacobian_vmap(self, x: np.ndarray, rows: np.ndarray, logits: bool) -> np.ndarray:
        with self._inference():
            xt, out = self._differentiable_output(x, logits)
            flat = out.reshape(out.shape[0], -1)
            cot = _one_hot_rows(rows, flat.shape, flat)
            (grad,) = torch.autograd.grad(flat, xt, grad_outputs=cot, is_grads_batched=True)
            return _numpy(grad.transpose(0, 1))

    def _jacobian_tile(self, x: np.ndarray, rows: np.ndarray, logits: bool) -> np.ndarray:
        n_rows, batch = len(rows), x.shape[0]
        tiled = np.broadcast_to(x, (n_rows, *x.shape)).reshape(n_rows * batch, *x.shape[1:])
        with self._inference():
            xt, out = self._differentiable_output(tiled, logits)
            flat = out.reshape(n_rows, batch, -1)
            cot = _one_hot_rows(rows, (batch, flat.shape[-1]), flat)
            (grad,) = torch.autograd.grad(flat, xt, grad_outputs=cot)
            return _numpy(grad.reshape(n_rows, batch, *x.shape[1:]).transpose(0, 1))

    # ---------------------------------------------------------------- weights
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        from .torch_weights import torch_layers

        return torch_layers(self._require_module(), example)

    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        from .torch_weights import torch_layer_weights

        return torch_layer_weights(self._require_module(), layer, split_gates)

    def _require_module(self) -> nn.Module:
        if self._module is None:
            raise SaliencyError("layers and weights need a torch.nn.Module, not a plain callable")
        return self._module


def _one_hot_rows(rows: np.ndarray, flat_shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """``(len(rows), *flat_shape)`` cotangents: row k selects output ``rows[k]`` of every sample."""
    cot = torch.zeros((len(rows), *flat_shape), dtype=like.dtype, device=like.device)
    index = torch.as_tensor(rows, device=like.device)
    cot[torch.arange(len(rows), device=like.device), :, index] = 1
    return cot


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()

