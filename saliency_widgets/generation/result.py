"""``GenerationAttribution``: which earlier tokens made each generated token."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from ..errors import SaliencyError

#: Where a new group starts, by granularity: a word at a token that begins with whitespace
#: (or is punctuation, or follows it); a sentence after a token that ends one.
_WORD_START = re.compile(r"^(\s|[^\w\s])")
_SENTENCE_END = re.compile(r"[.!?\n]\s*$")


@dataclass(frozen=True)
class GenerationAttribution:
    """Attributions of generated tokens to every earlier token, from one forward and one
    batched backward pass.

    ``tokens``: the context's token strings as the tokenizer decodes them (whitespace kept),
    the prompt's ``prompt_length`` first (an encoder–decoder's encoder tokens), then the
    ``len(generated_ids)`` generated ones. ``matrix[k, j]`` attributes generated token ``k``'s
    target score to context token ``j``, summed over the embedding axis; 0 where ``j`` is at or
    after ``prompt_length + k`` (it cannot have caused token ``k``). ``scores[k]`` is the
    explained score of token ``k`` (its log-probability by default, minus the contrast's);
    ``probabilities[k]`` its probability under the model.
    """

    tokens: list[str]
    prompt_length: int
    generated_ids: np.ndarray
    context_ids: np.ndarray
    matrix: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray
    method: str
    target: str
    layer: str
    contrast_ids: Optional[np.ndarray] = None
    contrast_tokens: Optional[list[str]] = None
    completeness_error: Optional[float] = None
    notes: tuple[str, ...] = ()
    encoder_decoder: bool = False
    granularity: str = "token"
    #: For an aggregated result: the token positions of each group (else one per token).
    groups: Optional[list[list[int]]] = field(default=None, compare=False)

    @property
    def n_generated(self) -> int:
        """How many generated tokens (or groups) there are."""
        return len(self.tokens) - self.prompt_length

    @property
    def generated_tokens(self) -> list[str]:
        return self.tokens[self.prompt_length:]

    @property
    def prompt_tokens(self) -> list[str]:
        return self.tokens[:self.prompt_length]

    def span(self, start: int, stop: int) -> np.ndarray:
        """The row of the summed target of generated tokens ``start``..``stop - 1`` (slice
        semantics): exact, as every method here is linear in the target."""
        n = self.n_generated
        if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))):
            raise SaliencyError("span(start, stop) takes two ints, generated-token positions")
        begin, end, _ = slice(int(start), int(stop)).indices(n)
        if begin >= end:
            raise SaliencyError(f"span({start}, {stop}) is empty: there are {n} generated tokens; "
                                "give start < stop, e.g. span(0, {n})")
        return self.matrix[begin:end].sum(axis=0, dtype=np.float32)

    def aggregate(self, by: str = "word") -> "GenerationAttribution":
        """Groups tokens into words, sentences, or the groups a regex starts: ``by`` is
        ``"word"``, ``"sentence"``, or a regular expression that each group's first token
        matches (``re.match``). Groups never cross from the prompt into the generated text.
        The matrix sums over both axes (a row is then the summed target of a group's tokens);
        ``scores`` sum (log-probabilities of a group add up) and ``probabilities`` multiply."""
        if self.groups is not None:
            raise SaliencyError("this result is aggregated already; aggregate the token-level result")
        starts = _group_starts(self.tokens, self.prompt_length, by)
        groups = [list(range(a, b)) for a, b in zip(starts, starts[1:] + [len(self.tokens)])]
        n_prompt_groups = sum(1 for g in groups if g[0] < self.prompt_length)
        columns = np.stack([self.matrix[:, g].sum(axis=1) for g in groups], axis=1)
        generated = groups[n_prompt_groups:]
        rows = [[i - self.prompt_length for i in g] for g in generated]
        matrix = np.stack([columns[r].sum(axis=0) for r in rows]).astype(np.float32)
        return replace(
            self,
            tokens=["".join(self.tokens[i] for i in g) for g in groups],
            prompt_length=n_prompt_groups,
            matrix=matrix,
            scores=np.array([self.scores[r].sum() for r in rows], dtype=np.float32),
            probabilities=np.array([np.prod(self.probabilities[r]) for r in rows], dtype=np.float32),
            granularity=by,
            groups=groups,
        )

    def to_figure(self, selected: Optional[int] = None, *, span: Optional[tuple[int, int]] = None,
                  view: str = "text", **kwargs: Any) -> Any:
        """A matplotlib figure: the text coloured by generated token ``selected``'s row (or a
        span's), or ``view="matrix"``, the generated × context matrix."""
        from .figure import generation_figure

        return generation_figure(self, selected=selected, span=span, view=view, **kwargs)

    def to_html(self, path: Any = None, **kwargs: Any) -> str:
        """An offline page with every row embedded, clickable without a kernel."""
        from ..widgets.generation_map import GenerationMap

        return GenerationMap.from_attribution(self, **kwargs).to_html(path)


def _group_starts(tokens: list[str], prompt_length: int, by: str) -> list[int]:
    """The positions where groups start (0 and ``prompt_length`` always among them)."""
    if by == "word":
        def starts_at(i: int) -> bool:
            return bool(_WORD_START.match(tokens[i])) or bool(re.search(r"[^\w\s]$", tokens[i - 1]))
    elif by == "sentence":
        def starts_at(i: int) -> bool:
            return bool(_SENTENCE_END.search(tokens[i - 1]))
    else:
        try:
            pattern = re.compile(by)
        except (re.error, TypeError) as err:
            raise SaliencyError(f"aggregate() takes 'word', 'sentence' or a regular expression; {by!r} is "
                                f"not one ({err})") from None

        def starts_at(i: int) -> bool:
            return bool(pattern.match(tokens[i]))
    return [i for i in range(len(tokens)) if i in (0, prompt_length) or starts_at(i)]
