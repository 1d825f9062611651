"""The SaliencyMap's checks strip, kernel side: each check as a small JSON-able item.

Every item is ``{"status": "ok" | "warn" | "computing", "text": ..., ...numbers}``;
the widget keeps them in its ``_checks`` trait (see docs/widget-protocol.md).
Numbers come from :mod:`saliency_widgets.checks`, or from the same formulas
applied to what the widget already holds (the prefetched Jacobian), so the
cheap checks cost no extra backward pass.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import checks
from ..export import format_value

#: IG completeness: warn when ``|Σ attribution − Δf|`` exceeds this share of ``|Δf|``.
COMPLETENESS_LIMIT = 0.05
#: Random logit: warn when the target's map correlates above this with other outputs' maps.
RANDOM_LOGIT_LIMIT = 0.9
#: Randomization: warn when the map of the fully randomized model still correlates above this.
RANDOMIZATION_LIMIT = 0.5
#: How many other outputs the random-logit check compares with, and the seed that picks them.
RANDOM_LOGIT_N = 5
RANDOM_LOGIT_SEED = 0
#: Steps of the deletion / insertion curves.
DELETION_STEPS = 20
#: Seed of the randomization test's re-initialization.
RANDOMIZATION_SEED = 0
#: Checks the browser runs on request (a button), in the kernel.
ON_DEMAND = ("deletion_insertion", "randomization")


def status(warn: bool) -> str:
    return "warn" if warn else "ok"


def completeness_item(values: np.ndarray, error: float, steps: int) -> dict[str, Any]:
    """IG completeness of one map: ``|error| / |Δf|`` with ``Δf = Σ values − error``
    (as :func:`saliency_widgets.checks.completeness`)."""
    total = float(np.sum(values, dtype=np.float64))
    delta = total - float(error)
    relative = abs(float(error)) / abs(delta) if delta != 0 else (0.0 if error == 0 else float("inf"))
    return relative_completeness_item(relative, f"raise steps (now {steps}) in method_kwargs")


def relative_completeness_item(relative: float, advice: str) -> dict[str, Any]:
    """IG completeness from its relative error ``|error| / |Δf|``; a warning adds ``advice``."""
    warn = relative > COMPLETENESS_LIMIT
    text = f"error {format_value(100 * relative)}% of |f(x) − f(baseline)|"
    if warn:
        text += f" — {advice}"
    return {"status": status(warn), "value": relative, "text": text}


def random_logit_item(maps: np.ndarray, target: int, contrast: Optional[int] = None) -> dict[str, Any]:
    """Random logit from one sample's per-output maps ``(n_outputs, ...)`` (Jacobian rows,
    or rows × input; each minus the ``contrast``'s with one): the outputs, neither the target nor
    the contrast, are drawn as :func:`saliency_widgets.checks.random_logit` draws them with
    ``seed=RANDOM_LOGIT_SEED``."""
    n_out = len(maps)
    excluded = [target] if contrast is None else [target, contrast]
    n = min(RANDOM_LOGIT_N, n_out - len(excluded))
    others = checks._others(np.random.default_rng(RANDOM_LOGIT_SEED), n_out, excluded, n)
    correlations = [checks.spearman(maps[target], maps[k]) for k in others]
    finite = [c for c in correlations if np.isfinite(c)]
    mean = float(np.mean(finite)) if finite else float("nan")
    warn = bool(finite) and mean > RANDOM_LOGIT_LIMIT
    text = f"ρ = {format_value(mean)} with the maps of {n} other outputs"
    if warn:
        text += " — the map hardly depends on the class"
    return {"status": status(warn), "value": mean, "correlations": correlations,
            "others": [int(k) for k in others], "text": text}


def deletion_insertion_item(result: checks.DeletionInsertion) -> dict[str, Any]:
    """One sample's deletion / insertion curves and AUCs; warn when revealing the top-ranked
    elements raises the score no more than removing them lowers it (insertion AUC ≤ deletion AUC)."""
    deletion, insertion = float(result.deletion_auc[0]), float(result.insertion_auc[0])
    warn = insertion <= deletion
    return {
        "status": status(warn), "deletion_auc": deletion, "insertion_auc": insertion,
        "fractions": result.fractions.tolist(), "deletion": result.deletion[0].tolist(),
        "insertion": result.insertion[0].tolist(),
        "text": f"deletion AUC {format_value(deletion)} · insertion AUC {format_value(insertion)}",
    }


def randomization_item(result: checks.Randomization) -> dict[str, Any]:
    """One sample's randomization row: the layer of each step and the map's similarity to the
    original; warn when the map of the fully randomized model still looks like the original."""
    spearman = [float(v) for v in result.spearman[:, 0]]
    last = spearman[-1]
    warn = bool(np.isfinite(last)) and last > RANDOMIZATION_LIMIT
    text = f"ρ = {format_value(last)} with all {len(spearman)} layers randomized"
    if not np.isfinite(last):
        text = f"the map is constant with all {len(spearman)} layers randomized"
    elif warn:
        text += " — the map ignores the weights"
    return {"status": status(warn), "layers": list(result.layers), "spearman": spearman,
            "ssim": [float(v) for v in result.ssim[:, 0]], "text": text}


def computing() -> dict[str, Any]:
    return {"status": "computing", "text": "computing…"}



#: One line per check of the SaliencyMap's strip: what its number is and which value is good.
READINGS = {
    "completeness": "Integrated gradients' attributions should add up to f(x) − f(baseline); good: an error under "
                    f"{format_value(100 * COMPLETENESS_LIMIT)}%.",
    "random_logit": "ρ: rank correlation (Spearman) of this map with other outputs' maps; good: well under "
                    f"{format_value(RANDOM_LOGIT_LIMIT)} — a map that looks the same for every class does not explain the class.",
    "deletion_insertion": "Good: deletion falls fast (low AUC) as the top-ranked {noun} are removed; insertion rises fast "
                          "(high AUC) as they are revealed on the baseline — insertion AUC above deletion AUC.",
    "randomization": "ρ: rank correlation of the map with the map of a model whose layers are re-initialized, top layer "
                     f"first; good: falling towards 0 (under {format_value(RANDOMIZATION_LIMIT)}) — a map that survives "
                     "random weights shows the input, not what the model learned.",
}
#: What deletion / insertion removes, by input kind.
ELEMENTS = {"vector": "features", "image": "pixels", "sequence": "time × feature cells", "text": "tokens"}


def with_reading(name: str, item: dict[str, Any], kind: str) -> dict[str, Any]:
    """``item`` with its one-line reading (``explain``); the deletion / insertion curves also get their axes
    (``x_label``, ``y_label``), so the strip draws them as a labelled chart."""
    if item.get("status") == "computing" or name not in READINGS:
        return item
    noun = ELEMENTS.get(kind, "elements")
    out = {**item, "explain": READINGS[name].format(noun=noun)}
    if name == "deletion_insertion":
        out.update(x_label=f"fraction of {noun} removed / revealed", y_label="score")
    return out
