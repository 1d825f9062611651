"""A GenerationAttribution with made-up numbers, for the widget tests (not a test module)."""

from __future__ import annotations

import numpy as np

from saliency_widgets.generation import GenerationAttribution

PROMPT = ["The", " capital", " of", " France", " is"]
GENERATED = [" Par", "is", ".", " It", " is", " big", ".\n", "Yes"]


def made_up(prompt=PROMPT, generated=GENERATED, *, seed=0, contrast=None, target="log_prob") -> GenerationAttribution:
    """A causal result: random rows, 0 from column ``P + k`` on in row ``k``."""
    rng = np.random.default_rng(seed)
    p, n = len(prompt), len(generated)
    matrix = rng.normal(size=(n, p + n)).astype(np.float32)
    matrix[np.arange(p + n)[None, :] >= p + np.arange(n)[:, None]] = 0
    return GenerationAttribution(
        tokens=list(prompt) + list(generated), prompt_length=p, generated_ids=np.arange(n) + 50,
        context_ids=np.arange(p + n), matrix=matrix, scores=-rng.uniform(0.1, 3, n).astype(np.float32),
        probabilities=rng.uniform(0.05, 0.95, n).astype(np.float32), method="input_x_gradient", target=target,
        layer="transformer.wte", contrast_ids=None if contrast is None else np.full(n, 7),
        contrast_tokens=None if contrast is None else [contrast] * n,
    )
