"""What an input sample looks like on screen: its ``kind`` and display layout.

Rules (documented in the widget docstrings):

- ``kind`` inferred from the per-sample shape: 1-D → ``"vector"``;
  2-D → ``"sequence"``, drawn time × features with the **longer axis as time**:
  ``(time, features)`` as RNNs and Keras ``Conv1D`` take it, and ``(channels, length)``
  as torch ``Conv1d`` takes it or ``(mel, frames)`` as Whisper does (on a tie, the first
  axis is time); 3-D → ``"image"``,
  channels-first ``(C, H, W)`` for PyTorch models and channels-last
  ``(H, W, C)`` for Keras models. Pass ``kind=`` to override (e.g.
  ``kind="image"`` for a 2-D grey image).
- Channel reduction for images: an attribution map shows the **sum over
  channels** of the signed values (as captum's ``visualize_image_attr`` does);
  the sign transform is applied after the sum.
- A vector of any other rank is flattened (C order).
- ``"text"``: samples ``(tokens, embedding)`` — an embedding layer's output — drawn
  as one chip per token, coloured by the attribution **summed over the embedding
  axis** (the channel axis of this layout); inferred when ``layer=`` is an
  embedding layer.
- Background images are uint8 RGB (grey repeated), from the input sample itself
  unless an ``image=`` is given: an RGB picture whose values lie in [0, 1] or
  [0, 255] keeps its own colours (scaled by 255 or 1, :func:`picture_range`);
  anything else (a grey image, a normalised tensor) is min-max scaled. The
  browser draws them in grey (luminance) under the heatmap so its colours stay
  readable, and in colour beside it (``layout="side_by_side"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .errors import SaliencyError

KINDS = ("vector", "image", "sequence", "text")


@dataclass(frozen=True)
class Layout:
    """How one sample of shape ``sample_shape`` is drawn."""

    kind: str
    sample_shape: tuple[int, ...]
    #: Axis of ``sample_shape`` holding image channels (summed for display), or None.
    channel_axis: Optional[int]
    #: Axis of ``sample_shape`` that is time for a sequence (drawn as the first display axis).
    time_axis: int = 0

    @property
    def display_shape(self) -> tuple[int, ...]:
        """``(N,)`` for a vector, ``(T, F)`` for a sequence, ``(H, W)`` for an image, ``(T,)`` for text."""
        if self.kind == "vector":
            return (int(np.prod(self.sample_shape, dtype=np.int64)),)
        if self.kind == "sequence" and self.time_axis == 1:
            return self.sample_shape[::-1]
        if self.channel_axis is None:
            return self.sample_shape
        return tuple(s for i, s in enumerate(self.sample_shape) if i != self.channel_axis)

    def reduce(self, values: np.ndarray) -> np.ndarray:
        """Attribution(s) for display: the trailing ``sample_shape`` axes become
        ``display_shape`` (leading axes, e.g. Jacobian rows, are kept)."""
        v = np.asarray(values, dtype=np.float32)
        lead = v.shape[: v.ndim - len(self.sample_shape)]
        if self.channel_axis is not None:
            v = v.sum(axis=len(lead) + self.channel_axis, dtype=np.float32)
        return self.time_first(v).reshape(lead + self.display_shape)

    def time_first(self, values: np.ndarray) -> np.ndarray:
        """Values with ``sample_shape`` as trailing axes, a sequence's time axis first (as displayed)."""
        return np.swapaxes(values, -1, -2) if self.kind == "sequence" and self.time_axis == 1 else values


def infer_layout(sample_shape: tuple[int, ...], framework: str, kind: Optional[str] = None) -> Layout:
    """The display layout of samples of ``sample_shape`` for a ``framework`` model."""
    shape = tuple(int(s) for s in sample_shape)
    if kind is None:
        kind = {1: "vector", 2: "sequence", 3: "image"}.get(len(shape))
        if kind is None:
            raise SaliencyError(
                f"cannot tell how to draw samples of shape {shape}; pass kind='vector', 'image', 'sequence' or 'text'"
            )
    if kind not in KINDS:
        raise SaliencyError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    if kind == "vector":
        return Layout("vector", shape, None)
    if kind == "text":
        if len(shape) != 2:
            raise SaliencyError(f"kind='text' needs samples shaped (tokens, embedding), e.g. an embedding layer's "
                                f"output (layer=); got {shape}")
        return Layout("text", shape, 1)
    if kind == "sequence":
        if len(shape) != 2:
            raise SaliencyError(f"kind='sequence' needs samples shaped (time, features) or (features, time); "
                                f"got {shape}")
        return Layout("sequence", shape, None, time_axis=int(shape[1] > shape[0]))
    if len(shape) == 2:
        return Layout("image", shape, None)
    if len(shape) != 3:
        raise SaliencyError(f"kind='image' needs samples shaped (H, W) or with a channel axis; got {shape}")
    return Layout("image", shape, 0 if framework == "torch" else 2)


def layer_kind(layer: Any) -> Optional[str]:
    """``"text"`` for an embedding layer object (torch / Keras ``Embedding``, Flax ``nnx.Embed``: its output is
    drawn one chip per token), else None."""
    name = type(layer).__name__.lower()
    return "text" if "embedding" in name or name == "embed" else None


def background_image(sample: np.ndarray, layout: Layout, image: Any = None) -> np.ndarray:
    """The (H, W, 3) uint8 picture an image attribution is drawn over.

    ``image`` (optional) may be (H, W), (H, W, C) or, for channels-first layouts,
    (C, H, W); otherwise the input ``sample`` itself is used. Its values are drawn
    from :func:`picture_range`: as given for a colour picture in [0, 1] or [0, 255], else stretched.
    """
    pic = _rgb(sample, layout, image)
    lo, hi = picture_range(pic)
    scaled = np.clip((pic - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(pic)
    return np.round(scaled * 255).astype(np.uint8)


#: The ranges a stored colour picture's values lie in (its colours are then drawn as they are).
PICTURE_RANGES = ((0.0, 1.0), (0.0, 255.0))


def picture_range(pic: np.ndarray) -> tuple[float, float]:
    """The values drawn as black and white: ``(0, 1)`` or ``(0, 255)`` for a colour (not grey) (H, W, 3)
    picture that lies in that range (a photo as stored keeps its colours), else its min and max (stretched)."""
    lo, hi = float(np.min(pic)), float(np.max(pic))
    if not _is_grey(pic):
        for start, end in PICTURE_RANGES:
            if start <= lo and hi <= end:
                return start, end
    return lo, hi


def picture_caption(sample: np.ndarray, layout: Layout, image: Any = None) -> str:
    """How :func:`background_image` draws the picture, for the input panel: e.g. ``"colours as given (0 … 1)"``,
    ``"colours stretched from -2.12 … 2.64"`` or ``"grey, stretched from 0 … 16"``."""
    pic = _rgb(sample, layout, image)
    lo, hi = picture_range(pic)
    if _is_grey(pic):
        return f"grey, stretched from {lo:.3g} … {hi:.3g}"
    if (lo, hi) in PICTURE_RANGES:
        return f"colours as given ({lo:g} … {hi:g})"
    return f"colours stretched from {lo:.3g} … {hi:.3g}"


def _is_grey(pic: np.ndarray) -> bool:
    """Whether an (H, W, 3) picture has no colour (its channels equal)."""
    return bool(np.all(pic == pic[..., :1]))


def _rgb(sample: np.ndarray, layout: Layout, image: Any) -> np.ndarray:
    """The picture as (H, W, 3) float64 (grey repeated, NaN as 0), from ``image`` or the input ``sample``."""
    h, w = layout.display_shape
    if image is None:
        pic = np.asarray(sample, dtype=np.float64)
        if layout.channel_axis is not None:
            pic = np.moveaxis(pic, layout.channel_axis, -1)
    else:
        pic = np.asarray(image, dtype=np.float64)
        if pic.ndim == 3 and pic.shape[:2] != (h, w) and pic.shape[1:] == (h, w):
            pic = np.moveaxis(pic, 0, -1)
    if pic.ndim == 2:
        pic = pic[..., None]
    if pic.ndim != 3 or pic.shape[:2] != (h, w):
        raise SaliencyError(f"image= must be {h}×{w} (grey, RGB or RGBA) to match the input; got shape {np.shape(image)}")
    if pic.shape[-1] in (3, 4):
        return np.nan_to_num(pic[..., :3])
    return np.nan_to_num(np.repeat(pic.mean(axis=-1, keepdims=True), 3, axis=-1))
