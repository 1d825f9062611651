"""``attribute_generation``: every generated token explained by the tokens before it, all rows
of one forward pass differentiated at once (``Backend.output_rows``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

import numpy as np

from .. import arguments, progress
from ..attribution import check_choice, gauss_legendre, method_options
from ..config import config
from ..errors import SaliencyError
from .language_model import Context, LanguageModel
from .prompts import continuation_ids, one_token, prompt_ids, token_strings
from .result import GenerationAttribution
from ..frameworks import accepts_framework
from ..zero import summed_zero_reason, zero_sentence

METHODS = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad")
#: Each target's normalisation of the logits over the vocabulary (see ``Backend.output_rows``).
TARGETS = {"log_prob": "log_softmax", "probability": "softmax", "logit": None}
#: Most tokens generated in one call (each is a row of the matrix).
MAX_NEW_TOKENS = 4096
#: Passes integrated gradients' rows are grouped into, each reading only the context its rows need.
_PATH_GROUPS = 4
#: Bytes of working memory of one row of one copy, per context position: the logits' gradient
#: (float32, per vocabulary entry) and the activations' gradients (a guess for small models).
_PER_VOCABULARY, _PER_POSITION = 4, 4096


@dataclass(frozen=True)
class Rows:
    """What is explained: generated token k at output ``positions[k]``, minus ``minus[k]``."""

    positions: np.ndarray
    tokens: np.ndarray
    minus: Optional[np.ndarray]
    normalize: Optional[str]

    def part(self, start: int, stop: int) -> "Rows":
        return Rows(self.positions[start:stop], self.tokens[start:stop],
                     None if self.minus is None else self.minus[start:stop], self.normalize)


@accepts_framework
def attribute_generation(model: Any, prompt: Any, *, tokenizer: Any = None, continuation: Any = None,
                         max_new_tokens: int = 20, method: str = "input_x_gradient", target: str = "log_prob",
                         contrast: Any = None, layer: Any = None, generate_kwargs: Optional[dict] = None,
                         **method_kw: Any) -> Union[GenerationAttribution, list[GenerationAttribution]]:
    """Which earlier tokens made a language model generate each token (DESIGN §3.8).

    ``model``: a torch causal LM or encoder–decoder (HuggingFace ``*ForCausalLM`` /
    ``*ForConditionalGeneration``, or a module from token ids to ``(batch, length, vocabulary)``
    logits), or a Keras one (a keras_hub ``CausalLM``, or a model from token ids to logits).
    ``prompt``: a string (with ``tokenizer``), token ids, or a tokenizer's output; a list of
    prompts gives a list of results. ``continuation``: None generates ``max_new_tokens`` (the
    model's ``generate`` with ``generate_kwargs``, e.g. ``{"do_sample": True, "seed": 0}``; else
    greedy); a string or ids is explained as given, by teacher forcing.

    ``target``: each token's ``"log_prob"``, ``"probability"`` or ``"logit"``; ``contrast``: a
    token (id, or a string of one token) or one per generated token, explaining score(token) −
    score(contrast). ``method``: ``"gradient"``, ``"input_x_gradient"``, ``"integrated_gradients"``
    (``steps``, ``baseline``: None for zero embeddings or a token id) or ``"smoothgrad"``
    (``n_samples``, ``noise``, ``seed``). ``layer``: where tokens are attributed (default the
    token embeddings); a token's attribution is the sum over the embedding axis.
    """
    check_choice("method", method, METHODS)
    check_choice("target", target, tuple(TARGETS))
    options = method_options(method, method_kw)
    max_new_tokens = arguments.positive_int("max_new_tokens", max_new_tokens, MAX_NEW_TOKENS,
                                            "each generated token is a row of the matrix; generate fewer")
    if generate_kwargs is not None and not isinstance(generate_kwargs, dict):
        raise SaliencyError(f"generate_kwargs must be a dict of generate() options; got {type(generate_kwargs).__name__}")
    lm = LanguageModel.of(model, layer)
    prompts, many = prompt_ids(prompt, tokenizer)
    results = [_explain(lm, ids, tokenizer, continuation, max_new_tokens, method, target, contrast,
                        generate_kwargs or {}, options) for ids in prompts]
    return results if many else results[0]


def _explain(lm: LanguageModel, prompt: np.ndarray, tokenizer: Any, continuation: Any, max_new_tokens: int,
             method: str, target: str, contrast: Any, generate_kwargs: dict, options: dict) -> GenerationAttribution:
    generated = (continuation_ids(continuation, tokenizer) if continuation is not None
                 else lm.generate(prompt, max_new_tokens, generate_kwargs))
    if generated.size == 0:
        raise SaliencyError("the model generated no token (its first token was the end of the text?); pass "
                            "continuation= to explain a text of your choosing")
    n, length = len(generated), len(prompt)
    minus = _contrast_ids(contrast, n, tokenizer)
    positions = np.arange(n) if lm.encoder_decoder else length - 1 + np.arange(n)
    rows = Rows(positions, generated, minus, TARGETS[target])
    context = lm.context(prompt, generated[:-1])
    budget = _Budget(length + n, lm.vocabulary(context), lm)
    completeness, notes = None, ()
    if method in ("gradient", "input_x_gradient"):
        values, mass, scores = _gradient_times(lm, prompt, generated, rows, budget,
                                               times_input=method == "input_x_gradient")
        notes = _rounding_notes(values, mass, method)
    else:
        scores = row_scores(lm.logits(context)[0], rows)
        if method == "integrated_gradients":
            values, base_scores, zero = _integrated_gradients(lm, prompt, generated, rows, budget, context, **options)
            completeness, notes = _completeness(values, scores - base_scores, lm, zero)
        else:
            values, mass = _smoothgrad(lm, prompt, generated, rows, budget, context, **options)
            notes = _rounding_notes(values, mass, method)
    if minus is None and target != "logit":  # the scores are the probabilities, or their logarithms
        probabilities = np.exp(scores) if target == "log_prob" else scores
    else:
        probabilities = np.exp(row_scores(lm.logits(context)[0], Rows(positions, generated, None, "log_softmax")))
    matrix = _columns(values, length, lm.encoder_decoder)
    _require_causal(matrix, length)
    return GenerationAttribution(
        tokens=token_strings(prompt, tokenizer) + token_strings(generated, tokenizer, after=prompt if not lm.encoder_decoder else ()),
        prompt_length=length, generated_ids=generated, context_ids=np.concatenate([prompt, generated]),
        matrix=matrix, scores=scores.astype(np.float32), probabilities=probabilities.astype(np.float32),
        method=method, target=target, layer=lm.layer.name, contrast_ids=minus,
        contrast_tokens=None if minus is None else [token_strings([c], tokenizer, after=prompt)[0] for c in minus],
        completeness_error=completeness, notes=notes, encoder_decoder=lm.encoder_decoder)


# ------------------------------------------------------------------ methods
def _gradient_times(lm: LanguageModel, prompt: np.ndarray, generated: np.ndarray, rows: Rows, budget: "_Budget",
                    times_input: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``((n, length), its terms' mass, scores)``: each row's gradient at the layer, times the layer's
    output if asked, summed over the embedding axis, and the sums of the terms' absolute values (see
    :func:`_rounding_notes`). One pass for all rows unless the budget splits them."""
    parts, masses, scores = [], [], []
    with progress.stage(len(generated), "rows"):
        for start, stop in budget.row_chunks(len(generated), copies=1):
            context = lm.context(prompt, generated[:stop - 1] if budget.truncate else generated[:-1])
            part = rows.part(start, stop)
            score, layer_output, grads = lm.backend.output_rows(context.query, context.entries, part.positions,
                                                                part.tokens, minus=part.minus, normalize=part.normalize)
            values = grads[0] * layer_output[0] if times_input else grads[0]
            parts.append(values.sum(axis=-1))
            masses.append(np.abs(values).sum(axis=-1))
            scores.append(score[0])
            progress.step(stop - start)
    return _stacked(parts), _stacked(masses), np.concatenate(scores).astype(np.float64)


def _integrated_gradients(lm: LanguageModel, prompt: np.ndarray, generated: np.ndarray, rows: Rows,
                          budget: "_Budget", context: Context, *, baseline: Any, steps: int
                          ) -> tuple[np.ndarray, np.ndarray, bool]:
    """``((n, length) attributions, scores at the baseline, whether the baseline embeddings are all
    zero)``: every context position moves on the
    straight line from the baseline embedding to its own, rows grouped by how much context they read
    (a causal row reads no later token), steps × rows batched."""
    embedded = lm.embeddings(context)[0]
    base = _baseline_embeddings(lm, prompt, generated, baseline, embedded)
    delta = embedded - base
    alphas, weights = gauss_legendre(steps)
    parts = []
    with progress.stage(len(generated) * steps, "integrated gradients"):  # rows × steps per pass
        for start, stop in budget.row_chunks(len(generated), copies=steps, groups=_PATH_GROUPS):
            length = _read_length(lm, len(prompt), stop, delta.shape[0]) if budget.truncate else delta.shape[0]
            part = rows.part(start, stop)
            total = np.zeros((stop - start, length, delta.shape[1]), dtype=np.float64)
            for a, b in budget.step_chunks(steps, stop - start, length):
                points = base[None, :length] + alphas[a:b, None, None].astype(np.float32) * delta[None, :length]
                sub = lm.context(prompt, generated[:stop - 1] if budget.truncate else generated[:-1], copies=b - a)
                _, _, grads = lm.backend.output_rows(sub.query, sub.entries, part.positions, part.tokens,
                                                     minus=part.minus, normalize=part.normalize,
                                                     activation=points.astype(np.float32))
                total += np.tensordot(weights[a:b], grads, axes=1)
                progress.step((stop - start) * (b - a))
            parts.append((total * delta[None, :length]).sum(axis=-1))
    base_logits = lm.logits(context, base[None].astype(np.float32))
    return _stacked(parts, width=delta.shape[0]), row_scores(base_logits[0], rows), not np.any(base)


def _smoothgrad(lm: LanguageModel, prompt: np.ndarray, generated: np.ndarray, rows: Rows, budget: "_Budget",
                context: Context, *, n_samples: int, noise: float, seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """``((n, length), its terms' mass)``: the mean gradient over ``n_samples`` noisy copies of the
    layer's output (σ = ``noise`` × its range), summed over the embedding axis; every row sees the
    same noise."""
    embedded = lm.embeddings(context)[0]
    sigma = np.float32(noise * (embedded.max() - embedded.min()))
    if isinstance(seed, np.random.Generator):  # a generator of the caller's: one seed drawn from it
        seed = int(seed.integers(2 ** 63))
    entropy = np.random.SeedSequence(seed)  # every row chunk draws the same noise from it
    parts, masses = [], []
    with progress.stage(len(generated) * n_samples, "SmoothGrad"):  # rows × samples per pass
        for start, stop in budget.row_chunks(len(generated), copies=n_samples, truncate=False):
            part, rng = rows.part(start, stop), np.random.default_rng(entropy)
            total = np.zeros((stop - start, *embedded.shape), dtype=np.float64)
            for a, b in budget.step_chunks(n_samples, stop - start, embedded.shape[0]):
                points = embedded[None] + sigma * rng.standard_normal((b - a, *embedded.shape), dtype=np.float32)
                sub = lm.context(prompt, generated[:-1], copies=b - a)
                _, _, grads = lm.backend.output_rows(sub.query, sub.entries, part.positions, part.tokens,
                                                     minus=part.minus, normalize=part.normalize, activation=points)
                total += grads.sum(axis=0)
                progress.step((stop - start) * (b - a))
            parts.append((total / n_samples).sum(axis=-1))
            masses.append(np.abs(total / n_samples).sum(axis=-1))
    return _stacked(parts), _stacked(masses)


# ------------------------------------------------------------------ pieces
class _Budget:
    """Splits rows (and copies) into passes under ``config.generation_budget_bytes``."""

    def __init__(self, length: int, vocabulary: int, lm: LanguageModel) -> None:
        self.length, self.vocabulary = length, vocabulary
        #: Whether passes read only the context their rows need: a compiled model (Keras) would
        #: compile once per length, so it reads the whole context every time.
        self.truncate = lm.framework == "torch"

    def _per_copy_row(self, length: int) -> int:
        return length * (_PER_VOCABULARY * self.vocabulary + _PER_POSITION)

    def row_chunks(self, n: int, *, copies: int, groups: int = 1, truncate: bool = True) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of the row passes: at least ``groups`` when passes read only the
        context they need (later rows read more), else as few as the budget allows."""
        per_row = self._per_copy_row(self.length)
        if per_row > config.generation_budget_bytes:
            raise SaliencyError(
                f"one generated token's row over a context of {self.length:,} tokens and a vocabulary of "
                f"{self.vocabulary:,} needs about {per_row / 2 ** 20:,.0f} MiB, more than "
                f"sw.config.generation_budget_bytes ({config.generation_budget_bytes / 2 ** 20:,.0f} MiB); raise it, "
                "or explain a shorter prompt or continuation")
        size = max(1, min(n, config.generation_budget_bytes // per_row))
        count = max(math.ceil(n / size), groups if (self.truncate and truncate) else 1)
        count = min(count, n)
        bounds = np.linspace(0, n, count + 1).round().astype(int)
        yield from ((int(a), int(b)) for a, b in zip(bounds, bounds[1:]) if b > a)

    def step_chunks(self, copies: int, rows: int, length: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of the copies (steps, samples) per pass for ``rows`` rows."""
        size = max(1, config.generation_budget_bytes // max(1, rows * self._per_copy_row(length)))
        for start in range(0, copies, size):
            yield start, min(copies, start + size)


def _read_length(lm: LanguageModel, prompt_length: int, stop: int, full: int) -> int:
    """How many layer positions rows ``< stop`` read (their context up to generated token ``stop - 1``)."""
    return prompt_length + stop if lm.encoder_decoder else min(full, prompt_length + stop - 1)


def _rounding_notes(values: np.ndarray, mass: np.ndarray, method: str) -> tuple[str, ...]:
    """A note when every row is zero up to float rounding (DESIGN §7): the signed gradient of
    embeddings that feed a LayerNorm sums to 0 over the embedding axis, whatever the model does."""
    reason = summed_zero_reason(values, mass, method=method)
    return () if reason is None else (zero_sentence(reason),)


def _stacked(parts: list[np.ndarray], width: Optional[int] = None) -> np.ndarray:
    """Row blocks read over shorter contexts padded with zeros to the full one."""
    width = width or max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts]).astype(np.float32)


def _baseline_embeddings(lm: LanguageModel, prompt: np.ndarray, generated: np.ndarray, baseline: Any,
                         embedded: np.ndarray) -> np.ndarray:
    """Zeros, or the embeddings of a context of ``baseline`` token ids only."""
    if baseline is None:
        return np.zeros_like(embedded)
    if not arguments.is_integer(baseline):
        raise SaliencyError(f"baseline= for generated text is None (zero embeddings) or a token id (e.g. the pad "
                            f"id); got {arguments.shown(baseline)}")
    filled = lm.context(np.full_like(prompt, int(baseline)), np.full(len(generated) - 1, int(baseline)))
    return lm.embeddings(filled)[0]


def row_scores(logits: np.ndarray, rows: Rows) -> np.ndarray:
    """Each row's score from one pass's logits ``(length, vocabulary)``, in float64."""
    at = logits[rows.positions].astype(np.float64)
    if rows.normalize is not None:
        at = at - at.max(axis=-1, keepdims=True)
        at = at - np.log(np.exp(at).sum(axis=-1, keepdims=True))
        if rows.normalize == "softmax":
            at = np.exp(at)
    picked = at[np.arange(len(at)), rows.tokens]
    return picked if rows.minus is None else picked - at[np.arange(len(at)), rows.minus]


def _completeness(values: np.ndarray, differences: np.ndarray, lm: LanguageModel, zero_baseline: bool
                  ) -> tuple[float, tuple[str, ...]]:
    """The largest ``|Σ row − (f(x) − f(baseline))|`` relative to the largest ``|f(x) − f(baseline)|``,
    and a note where the model cannot be complete from zero embeddings (RMSNorm)."""
    error = np.abs(values.sum(axis=1, dtype=np.float64) - differences).max()
    relative = float(error / max(np.abs(differences).max(), 1e-12))
    notes: tuple[str, ...] = ()
    if zero_baseline and any("RMSNorm" in kind for kind in lm.layer_types()):
        notes = (f"completeness error {relative:.1%}: the model normalises with RMSNorm, x / rms(x), which jumps "
                 "near a zero embedding, so integrated gradients from zero embeddings cannot be complete; pass "
                 "baseline=<token id> of a token whose embedding is not zero (e.g. the unk id: a pad id's "
                 "embedding is often all zeros)",)
    return relative, notes


def _columns(values: np.ndarray, prompt_length: int, encoder_decoder: bool) -> np.ndarray:
    """``(n, prompt_length + n)``: the layer's positions as context tokens. An encoder–decoder's
    decoder start token has no column; the last generated token (read by no row) gets zeros."""
    if encoder_decoder:
        values = np.concatenate([values[:, :prompt_length], values[:, prompt_length + 1:]], axis=1)
    n = values.shape[0]
    return np.pad(values, ((0, 0), (0, prompt_length + n - values.shape[1]))).astype(np.float32)


def _require_causal(matrix: np.ndarray, prompt_length: int) -> None:
    """Refuses a model whose output at a position reads later tokens: its rows would credit tokens
    that had not been generated yet."""
    later = np.triu(np.ones(matrix.shape, dtype=bool), k=prompt_length)
    if np.any(matrix[later] != 0):
        raise SaliencyError("the model's logits at a position depend on later tokens (it is not causal, e.g. a "
                            "bidirectional encoder such as BERT); attribute_generation explains causal language "
                            "models and encoder–decoders")


def _contrast_ids(contrast: Any, n: int, tokenizer: Any) -> Optional[np.ndarray]:
    if contrast is None:
        return None
    if isinstance(contrast, (list, tuple, np.ndarray)):
        if len(contrast) != n:
            raise SaliencyError(f"contrast= gives {len(contrast)} tokens for {n} generated ones; pass one token, or "
                                f"one per generated token")
        return np.array([one_token(c, tokenizer, "contrast") for c in contrast], dtype=np.int64)
    return np.full(n, one_token(contrast, tokenizer, "contrast"), dtype=np.int64)
