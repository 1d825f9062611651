"""Grad-CAM and Grad-CAM++ from a layer's activation and its gradient (pure numpy).

The engine captures ``A`` (a layer's output) and ``g = ∂score/∂A``; this module
turns them into class activation maps, upsampled to the input's spatial size
the way torch ``F.interpolate(mode="bilinear", align_corners=False)``, captum's
``LayerAttribution.interpolate`` and ``tf.image.resize`` do.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .errors import SaliencyError
from .weights import LayerInfo

#: The methods computed here; they map from a spatial layer.
CAM_METHODS = ("gradcam", "gradcam_plus_plus")


def nonnegative(method: str, options: Mapping[str, Any]) -> bool:
    """Whether ``method``, called with ``options``, gives maps that are ≥ 0 by construction: Grad-CAM
    and Grad-CAM++ with their ReLU (``relu=True``, the default; bilinear upsampling keeps them ≥ 0)."""
    return method in CAM_METHODS and bool(options.get("relu", True))


def gradcam(activation: np.ndarray, gradient: np.ndarray, *, channel_axis: int,
            size: Optional[Sequence[int]] = None, relu: bool = True) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.): ``ReLU(Σ_k w_k A_k)`` with ``w_k`` the spatial mean of ``g_k``.

    ``activation`` and ``gradient`` are ``(batch, *layer_shape)``; ``channel_axis``
    is the axis of one sample's layer output that holds the channels (e.g. 0
    for torch, -1 for Keras). Returns ``(batch, *spatial)``, or ``(batch, *size)``
    when ``size`` is given.
    """
    a, g = _channels_first(activation, gradient, channel_axis)
    weights = g.mean(axis=tuple(range(2, g.ndim)), keepdims=True)
    return _finish((weights * a).sum(axis=1), size, relu)


def gradcam_plus_plus(activation: np.ndarray, gradient: np.ndarray, *, channel_axis: int,
                      size: Optional[Sequence[int]] = None, relu: bool = True) -> np.ndarray:
    """Grad-CAM++ (Chattopadhay et al. 2018, Eq. 19) with the gradient of the raw score, as
    pytorch-grad-cam and tf-keras-vis compute it: for channel k at position (i, j),
    ``α_kij = g²_kij / (2·g²_kij + (Σ_ab A_kab)·g³_kij)`` — the spatial sum runs over the
    activation alone and multiplies the cube of the gradient at (i, j) — 0 where the
    denominator is 0; ``w_k = Σ_ij α_kij·ReLU(g_kij)``, map ``ReLU(Σ_k w_k A_k)``.
    Arguments as :func:`gradcam`."""
    a, g = _channels_first(activation, gradient, channel_axis)
    spatial = tuple(range(2, g.ndim))
    g2 = g * g
    denominator = 2 * g2 + a.sum(axis=spatial, keepdims=True) * (g2 * g)
    safe = np.where(denominator != 0, denominator, 1.0)
    alpha = np.where(denominator != 0, g2 / safe, 0.0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=spatial, keepdims=True)
    return _finish((weights * a).sum(axis=1), size, relu)


def resize_linear(maps: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """(Bi)linear resize of ``(batch, *spatial)`` maps to ``(batch, *size)``,
    ``align_corners=False`` (half-pixel centres), one axis after the other."""
    out = np.asarray(maps, dtype=np.float64)
    if len(size) != out.ndim - 1:
        raise SaliencyError(f"cannot resize maps of shape {out.shape[1:]} to {tuple(size)}: the ranks differ")
    for axis, n_out in enumerate(size, start=1):
        matrix = _linear_weights(out.shape[axis], int(n_out))
        out = np.moveaxis(np.tensordot(out, matrix, axes=([axis], [1])), -1, axis)
    return out


def default_layer(layers: Sequence[LayerInfo], channel_axis: int, spatial_axes: Optional[int] = None) -> LayerInfo:
    """The last layer whose per-sample output has a spatial axis longer than 1
    (``channel_axis``: where the channels sit in a layer's output, 0 or -1); with
    ``spatial_axes`` (an image input's 2), the last such layer with that many spatial
    axes comes first: a ViT's patch embedding rather than its token sequence."""
    known = [info for info in layers if info.output_shape is not None]
    if not known:
        raise SaliencyError("the layers' output shapes are unknown; call with an input batch so they can be traced")
    candidates = []
    for info in reversed(known):
        shape = tuple(info.output_shape)
        if len(shape) < 2:
            continue
        spatial = [n for i, n in enumerate(shape) if i != channel_axis % len(shape)]
        if any(n is None or n > 1 for n in spatial):
            candidates.append((len(spatial), info))
    if candidates:
        matching = [info for n, info in candidates if n == spatial_axes]
        return matching[0] if matching else candidates[0][1]
    raise SaliencyError(
        "Grad-CAM needs a layer with a spatial output (a convolution or what follows it), and this "
        "model has none; use method='gradient' or 'occlusion' instead"
    )


# ------------------------------------------------------------------- helpers
def _channels_first(activation: np.ndarray, gradient: np.ndarray, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    a, g = np.asarray(activation, dtype=np.float64), np.asarray(gradient, dtype=np.float64)
    if a.shape != g.shape:
        raise SaliencyError(f"activation {a.shape} and gradient {g.shape} must have the same shape")
    if a.ndim < 3:
        raise SaliencyError(
            f"Grad-CAM needs a layer output with channels and at least one spatial axis; this layer's "
            f"output has shape {a.shape[1:]} per sample: pass layer= a convolutional layer"
        )
    axis = channel_axis % (a.ndim - 1) + 1
    return np.moveaxis(a, axis, 1), np.moveaxis(g, axis, 1)


def _finish(cam: np.ndarray, size: Optional[Sequence[int]], relu: bool) -> np.ndarray:
    if relu:
        cam = np.maximum(cam, 0)
    if size is not None:
        cam = resize_linear(cam, size)
    return cam.astype(np.float32)


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` interpolation matrix with half-pixel centres, sources clamped at 0."""
    source = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lower = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    upper = np.minimum(lower + 1, n_in - 1)
    frac = source - lower
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, lower), 1 - frac)
    np.add.at(matrix, (rows, upper), frac)
    return matrix
