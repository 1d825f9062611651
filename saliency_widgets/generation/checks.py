"""Can I trust a generated token's map? Deletion / insertion over the prompt's tokens."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import arguments
from ..checks import DeletionInsertion
from ..config import config
from ..errors import SaliencyError
from .attribute import TARGETS, Rows, row_scores
from .language_model import LanguageModel
from .prompts import one_token, pad_id
from .result import GenerationAttribution


def deletion_insertion(model: Any, result: GenerationAttribution, selected: Optional[int] = None, *,
                       span: Optional[tuple[int, int]] = None, steps: int = 20, baseline: Any = None,
                       tokenizer: Any = None) -> DeletionInsertion:
    """Generated token ``selected``'s score (default: the last; a ``span``'s summed score), as
    the prompt tokens its row ranks highest are replaced by ``baseline`` (deletion) or revealed
    on a prompt of ``baseline`` only (insertion), in ``steps`` equal parts. The continuation stays
    as generated (teacher forcing). ``baseline``: a token id (or a string of one token), default
    the tokenizer's pad (else unk) id, else the model's pad id, else 0 — a token is replaced,
    never averaged. A faithful map gives a steep deletion curve (low area) and a steep insertion
    curve (high area). One batched forward pass per budget's worth of prompts."""
    steps = arguments.positive_int("steps", steps, 1000, "the curve has a point per step; pass fewer")
    if result.groups is not None:
        raise SaliencyError("deletion / insertion replaces tokens: run it on the token-level result, not an "
                            "aggregated one")
    rows = _rows(result, selected, span)
    lm = LanguageModel.of(model, None if result.encoder_decoder else result.layer)
    base = pad_id(tokenizer, lm.pad_id) if baseline is None else one_token(baseline, tokenizer, "baseline")
    length = result.prompt_length
    prompt, generated = result.context_ids[:length], result.generated_ids
    order = np.argsort(-result.matrix[rows, :length].sum(axis=0), kind="stable")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    top = np.zeros((steps + 1, length), dtype=bool)
    for step, count in enumerate(np.round(fractions * length).astype(int)):
        top[step, order[:count]] = True
    prompts = np.concatenate([np.where(top, base, prompt), np.where(top, prompt, base)])
    positions = np.arange(len(generated)) if result.encoder_decoder else length - 1 + np.arange(len(generated))
    explained = Rows(positions[rows], generated[rows], None if result.contrast_ids is None else
                     result.contrast_ids[rows], TARGETS[result.target])
    scores = []
    logits_bytes = 4 * (length + len(generated)) * lm.vocabulary(lm.context(prompt, generated[:-1]))
    per_pass = max(1, config.generation_budget_bytes // (2 * logits_bytes))  # the logits and their softmax
    for start in range(0, len(prompts), per_pass):
        logits = lm.logits(lm.context(prompts[start:start + per_pass], generated[:-1], masked=True))
        scores += [row_scores(sample, explained).sum() for sample in logits]
    curves = np.array(scores, dtype=np.float32).reshape(2, 1, steps + 1)
    return DeletionInsertion(fractions, curves[0], curves[1])


def _rows(result: GenerationAttribution, selected: Optional[int], span: Optional[tuple[int, int]]) -> slice:
    """The generated tokens explained: a span's, else the selected one's (default the last)."""
    n = result.n_generated
    if span is not None:
        start, stop = span
        begin, end, _ = slice(int(start), int(stop)).indices(n)
        if begin >= end:
            raise SaliencyError(f"span={span} is empty: there are {n} generated tokens")
        return slice(begin, end)
    k = n - 1 if selected is None else selected
    if not arguments.is_integer(k) or not -n <= k < n:
        raise SaliencyError(f"selected must be a generated token's position in 0..{n - 1}; got {arguments.shown(k)}")
    k = int(k) % n
    return slice(k, k + 1)
