"""Maps that are zero up to float rounding, and why (DESIGN §7: never stretch rounding noise to
full colour).

Framework-free: it looks at one sample's map as the engine computed it. A displayed cell is a sum —
a text chip sums the attribution over the embedding axis, an image pixel over its channels — or a
single value. Float32 rounding leaves a sum whose exact value is 0 at about ``n · 2⁻²⁴`` of the
magnitude of its terms, ``Σ_k |t_k|`` (measured on BERT word embeddings, whose signed gradient sums
to 0 because they feed a LayerNorm: 1e-8 to 4e-8 of it at 16 to 768 dimensions), while a sum that
means something sits at 1e-4 of it and above (input × gradient and integrated gradients on the same
models: 0.04 to 0.7). The rule:

- a cell is **rounding noise** when ``|Σ_k t_k| <= SUM_RTOL · Σ_k |t_k|`` (``SUM_RTOL = 1e-5``;
  a cell that is not a sum is noise only when it is exactly 0);
- a map is **zero up to rounding** when every shown cell is rounding noise (and every value is
  finite: NaN and Inf are reported elsewhere).

:func:`zero_reason` returns the sentence the widgets show instead of a colour-stretched map
(``js/src/zero.ts`` holds the same rule and sentences for the maps the browser derives itself).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

#: A display cell summed from terms ``t_k`` is rounding noise when ``|Σ t_k| <= SUM_RTOL · Σ |t_k|``.
SUM_RTOL = 1e-5

_CAM_NAMES = {"gradcam": "Grad-CAM", "gradcam_plus_plus": "Grad-CAM++"}
_SIGNED = {"gradient": "the signed gradient", "smoothgrad": "SmoothGrad's signed gradient"}
_PLURAL = {"embedding": "embeddings", "channel": "channels"}


def zero_reason(values: np.ndarray, *, method: str, summed_axis: Optional[int] = None, axis_name: str = "embedding",
                relu: bool = True, shown: Optional[np.ndarray] = None) -> Optional[str]:
    """Why one sample's map ``values`` is zero up to float rounding, or None when it is not.

    ``summed_axis``: the axis of ``values`` summed for display (the embedding axis of a text view,
    the channels of an image; None when each value is drawn as it is), named ``axis_name``
    (``"embedding"`` or ``"channel"``). ``method``: the attribution method (the reason names
    Grad-CAM's ReLU, ``relu`` as the method was called, or the signed gradient). ``shown``: which
    display cells are on screen (boolean, the display shape; padding tokens are not), None = all.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return None
    if summed_axis is None:
        total, mass = v, np.abs(v)
    else:
        total, mass = v.sum(axis=summed_axis), np.abs(v).sum(axis=summed_axis)
    if shown is not None:
        keep = np.asarray(shown, dtype=bool).reshape(total.shape)
        total, mass = total[keep], mass[keep]
        if total.size == 0:
            return None
    if not np.any(mass):
        if method in _CAM_NAMES and relu:
            return (f"{_CAM_NAMES[method]}'s ReLU clipped every pixel: no location raises this score; "
                    "try relu=False or another layer")
        return "the map is exactly 0 everywhere: nothing here moves this score (e.g. every ReLU on its path is off)"
    if summed_axis is None:
        return None
    return summed_zero_reason(total, mass, method=method, axis_name=axis_name)


def summed_zero_reason(total: np.ndarray, mass: np.ndarray, *, method: str, axis_name: str = "embedding"
                       ) -> Optional[str]:
    """Why a map of sums ``total`` (each over the ``axis_name`` axis of terms whose absolute values
    sum to ``mass``) is zero up to float rounding, or None when some cell is not rounding noise."""
    total, mass = np.asarray(total, dtype=np.float64), np.asarray(mass, dtype=np.float64)
    if not np.any(mass) or not np.all(np.abs(total) <= SUM_RTOL * mass):
        return None
    plural = _PLURAL.get(axis_name, axis_name + "s")
    if method in _SIGNED:
        return (f"{_SIGNED[method]} summed over the {axis_name} axis is 0 up to rounding: "
                f"the {plural} feed a normalisation layer; use input × gradient")
    instead = "integrated gradients" if method == "input_x_gradient" else "input × gradient"
    return f"the map summed over the {axis_name} axis is 0 up to rounding: its terms cancel; use {instead}"


def zero_sentence(note: str) -> str:
    """What a widget shows in place of the colour bar for ``note`` (a :func:`zero_reason`):
    ``"Zero map. The signed gradient … ."`` (``zeroSentence`` in ``js/src/zero.ts``)."""
    return f"Zero map. {note[:1].upper()}{note[1:]}."
