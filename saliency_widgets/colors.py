"""Colormaps and THE normalization rule for attribution maps.

Written once here and mirrored exactly in ``js/src/colors.ts`` (vitest checks the
same numbers), so the screen and exported figures use the same colours.

The rule, for attribution values ``v`` displayed with ``sign`` and ``outlier_perc``:

1. **Sign transform** ``t = sign_transform(v, sign)``: ``"all"`` keeps ``v``;
   ``"positive"`` keeps ``max(v, 0)``; ``"negative"`` keeps the magnitude of the
   negative part, ``max(-v, 0)``; ``"absolute_value"`` takes ``|v|``. NaN counts as 0.
2. **Scale** ``m = scale_max(v, sign, outlier_perc)``: the ``100 - outlier_perc``
   percentile of ``|t|`` (numpy's default linear interpolation, in float64), so
   the top ``outlier_perc`` % of magnitudes saturate. ``m`` falls back to
   ``max |t|`` when the percentile is 0, and to 1 when everything is 0.
3. **Range**: ``[-m, m]`` for ``"all"`` (symmetric, 0 in the middle of a
   diverging map), ``[0, m]`` of ``t`` otherwise.
4. **Index** into a 256-entry lookup table:
   ``u = (t + m) / (2m)`` for ``"all"``, ``u = t / m`` otherwise;
   ``index = clip(floor(255 u + 0.5), 0, 255)``.

Colormaps (matplotlib): ``RdBu_r`` for signed values (red positive, blue
negative), ``Reds`` / ``Blues`` / ``viridis`` for positive / negative /
absolute magnitudes. Over an image, a pixel's alpha grows with its distance
from the "nothing" end of the map (:func:`overlay_alpha`).

A map that is ≥ 0 by construction (Grad-CAM after its ReLU) is never drawn on the
diverging scale, where it would use only the upper half: shown ``"all"``, it is
drawn as ``"positive"`` — 0 → max over the whole sequential ``Reds`` map
(:func:`shown_sign`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SIGNS = ("all", "positive", "negative", "absolute_value")

#: The matplotlib colormap used for each ``sign``.
CMAPS = {"all": "RdBu_r", "positive": "Reds", "negative": "Blues", "absolute_value": "viridis"}


def check_sign(sign: str) -> str:
    """``sign`` itself, or a ValueError listing the valid choices."""
    if sign not in SIGNS:
        from .errors import SaliencyError

        raise SaliencyError(f"sign must be one of {', '.join(map(repr, SIGNS))}; got {sign!r}")
    return sign


@lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """A matplotlib colormap as a read-only (256, 4) uint8 RGBA lookup table."""
    from matplotlib import colormaps

    table = np.round(colormaps[name](np.linspace(0.0, 1.0, 256)) * 255).astype(np.uint8)
    table.setflags(write=False)
    return table


def shown_sign(sign: str, nonnegative: bool) -> str:
    """The sign a map is drawn with (``shownSign`` in ``js/src/colors.ts``): ``sign``, except that a
    map that is ≥ 0 by construction (``nonnegative``: decided by its method, never guessed from its
    values) shown ``"all"`` is drawn one-sided as ``"positive"``: red still raises the score, as on the
    signed scale, but 0 → max spans the whole colour map."""
    return "positive" if nonnegative and check_sign(sign) == "all" else sign


def sign_lut(sign: str) -> np.ndarray:
    """The lookup table used for ``sign``."""
    return lut(CMAPS[check_sign(sign)])


def sign_transform(values: np.ndarray, sign: str) -> np.ndarray:
    """Step 1 of the rule, in float64: the values the colour scale shows."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    check_sign(sign)
    if sign == "positive":
        return np.maximum(v, 0.0)
    if sign == "negative":
        return np.maximum(-v, 0.0)
    if sign == "absolute_value":
        return np.abs(v)
    return v


def scale_max(values: np.ndarray, sign: str = "all", outlier_perc: float = 2.0) -> float:
    """Step 2 of the rule: the magnitude ``m`` at which colours saturate."""
    mags = np.abs(sign_transform(values, sign)).ravel()
    mags = mags[np.isfinite(mags)]
    if mags.size == 0:
        return 1.0
    m = float(np.percentile(mags, 100.0 - float(outlier_perc)))
    if not m > 0:
        m = float(mags.max())
    return m if m > 0 else 1.0


def value_range(m: float, sign: str) -> tuple[float, float]:
    """Step 3: the range of transformed values the map spans."""
    return (-m, m) if check_sign(sign) == "all" else (0.0, m)


def to_index(values: np.ndarray, sign: str, m: float) -> np.ndarray:
    """Step 4: LUT indices (uint8) for ``values`` at scale ``m``."""
    t = sign_transform(values, sign)
    u = (t + m) / (2 * m) if sign == "all" else t / m
    return np.clip(np.floor(u * 255 + 0.5), 0, 255).astype(np.uint8)


def overlay_alpha(index: np.ndarray, sign: str) -> np.ndarray:
    """Alpha (uint8) of LUT ``index`` when drawn over an image: 0 where the value is 0."""
    i = np.asarray(index, dtype=np.int32)
    strength = np.abs(2 * i - 255) if check_sign(sign) == "all" else 2 * i
    return np.minimum(strength, 255).astype(np.uint8)


def colorize(
    values: np.ndarray, sign: str = "all", outlier_perc: float = 2.0, m: float | None = None
) -> np.ndarray:
    """RGBA uint8 image of ``values`` (shape ``values.shape + (4,)``) under the rule."""
    if m is None:
        m = scale_max(values, sign, outlier_perc)
    return sign_lut(sign)[to_index(values, sign, m)]


#: The overlay backdrop spans these greys: black input pixels become ``BACKDROP_BLACK`` and white
#: ones ``BACKDROP_WHITE`` (``js/src/colors.ts`` alike). A darkened backdrop keeps the pale middle
#: of the diverging map visible over white strokes, and the dark ends over black background.
BACKDROP_BLACK = 32
BACKDROP_WHITE = 144


def greyscale(pixels: np.ndarray) -> np.ndarray:
    """The grey backdrop of image overlays (``greyscale`` in ``js/src/colors.ts``): the
    luminance (Rec. 601) of an (..., 3|4) uint8 picture, mapped into
    [``BACKDROP_BLACK``, ``BACKDROP_WHITE``] and rounded half up."""
    p = np.asarray(pixels, dtype=np.float64)
    lum = 0.299 * p[..., 0] + 0.587 * p[..., 1] + 0.114 * p[..., 2]
    gain = (BACKDROP_WHITE - BACKDROP_BLACK) / 255
    return np.floor(BACKDROP_BLACK + gain * lum + 0.5).astype(np.uint8)


def overlay(rgba: np.ndarray, grey: np.ndarray, opacity: float) -> np.ndarray:
    """Opaque RGB (uint8) of heatmap pixels ``rgba`` (alpha from :func:`overlay_alpha`)
    drawn with ``opacity`` over the ``grey`` backdrop, as the browser composites them."""
    a = rgba[..., 3:4].astype(np.float64) / 255.0 * float(opacity)
    g = np.asarray(grey, dtype=np.float64)[..., None]
    return np.floor(rgba[..., :3] * a + g * (1.0 - a) + 0.5).astype(np.uint8)
