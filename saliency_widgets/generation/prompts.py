"""Prompts and continuations as token ids, and token ids as the strings a tokenizer decodes."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..backends.base import to_numpy
from ..errors import SaliencyError


def prompt_ids(prompt: Any, tokenizer: Any) -> tuple[list[np.ndarray], bool]:
    """``(one 1-D int64 array per prompt, whether a list was given)``.

    A prompt is a string (with ``tokenizer``), token ids (a 1-D list / array or ``(1, P)``), or a
    tokenizer's output (a mapping with ``input_ids`` and maybe ``attention_mask``); a list of
    strings, or a ``(B, P)`` batch with its attention mask, gives one array per prompt with its
    padding removed."""
    if isinstance(prompt, str):
        return [encode(prompt, tokenizer, special=True)], False
    if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
        return [encode(p, tokenizer, special=True) for p in prompt], True
    if hasattr(prompt, "keys") and "input_ids" in prompt:
        ids = _integer_array(prompt["input_ids"], "prompt['input_ids']")
        mask = prompt.get("attention_mask") if hasattr(prompt, "get") else None
        mask = None if mask is None else to_numpy(mask).astype(bool).reshape(ids.shape)
    else:
        ids, mask = _integer_array(prompt, "prompt"), None
    if ids.ndim == 1:
        return [_non_empty(ids)], False
    if ids.ndim != 2:
        raise SaliencyError(f"a prompt of token ids is 1-D or (batch, length); got shape {ids.shape}")
    rows = [ids[i] if mask is None else ids[i][mask[i]] for i in range(len(ids))]
    return [_non_empty(r) for r in rows], len(rows) > 1


def continuation_ids(continuation: Any, tokenizer: Any) -> np.ndarray:
    """A given continuation (a string, encoded without special tokens, or token ids) as 1-D int64."""
    if isinstance(continuation, str):
        return _non_empty(encode(continuation, tokenizer, special=False), "continuation")
    ids = _integer_array(continuation, "continuation")
    return _non_empty(ids.reshape(-1) if ids.ndim == 2 and ids.shape[0] == 1 else ids, "continuation")


def encode(text: str, tokenizer: Any, *, special: bool) -> np.ndarray:
    """``text``'s token ids by a HuggingFace tokenizer (``add_special_tokens=special``), or any
    tokenizer with ``encode`` or ``tokenize`` (keras_hub) returning ids."""
    if tokenizer is None:
        raise SaliencyError("a text prompt needs its tokenizer: pass tokenizer=..., or pass token ids")
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    elif callable(getattr(tokenizer, "encode", None)):
        ids = tokenizer.encode(text)
    elif callable(getattr(tokenizer, "tokenize", None)):
        ids = tokenizer.tokenize(text)
    else:
        raise SaliencyError(f"a {type(tokenizer).__name__} is not a tokenizer this library reads: pass a "
                            "HuggingFace tokenizer, or one with encode(text) -> ids and decode(ids) -> text")
    return _integer_array(ids, "the tokenizer's ids").reshape(-1)


def one_token(value: Any, tokenizer: Any, what: str) -> int:
    """A token id given as an int or as a string that is exactly one token."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        ids = encode(value, tokenizer, special=False)
        if len(ids) != 1:
            shown = ", ".join(repr(t) for t in token_strings(ids, tokenizer))
            raise SaliencyError(f"{what} {value!r} is {len(ids)} tokens ({shown}), not one; pass one token "
                                "(a string the tokenizer makes one token of, e.g. with its leading space, or an id)")
        return int(ids[0])
    raise SaliencyError(f"{what} must be a token id or a string of one token; got {type(value).__name__}")


def token_strings(ids: Sequence[int], tokenizer: Any, *, after: Sequence[int] = ()) -> list[str]:
    """Each token of ``ids`` as text, whitespace kept: the growth of the decoded text as the tokens
    are appended to ``after`` (how sentencepiece and byte-level BPE tokens really read), else each
    token decoded alone; ``"[id]"`` without a tokenizer."""
    ids = [int(i) for i in ids]
    if tokenizer is None:
        return [f"[{i}]" for i in ids]
    decode = _decoder(tokenizer)
    context, text, pieces = list(after), decode(list(after)), []
    for i in ids:
        context.append(i)
        longer = decode(context)
        pieces.append(longer[len(text):] if longer.startswith(text) else decode([i]))
        text = longer
    return pieces


def _decoder(tokenizer: Any) -> Any:
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    method = getattr(tokenizer, "decode", None) or getattr(tokenizer, "detokenize", None)
    if callable(method):
        return lambda ids: _text(method(ids))
    raise SaliencyError(f"a {type(tokenizer).__name__} cannot decode ids: pass a tokenizer with decode(ids)")


def _text(value: Any) -> str:
    """A decoded string, from a str or a string tensor (keras_hub's ``detokenize``)."""
    if isinstance(value, str):
        return value
    item = to_numpy(value).item()
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)


def _integer_array(value: Any, what: str) -> np.ndarray:
    array = to_numpy(value)
    if array.size == 0:
        raise SaliencyError(f"the {what} has no tokens (shape {array.shape}); pass at least one token")
    if array.dtype.kind not in "iu":
        raise SaliencyError(f"{what} must be integer token ids; got dtype {array.dtype}")
    return array.astype(np.int64)


def _non_empty(ids: np.ndarray, what: str = "prompt") -> np.ndarray:
    if ids.ndim != 1 or ids.size == 0:
        raise SaliencyError(f"the {what} has no tokens (shape {ids.shape}); pass at least one token")
    return ids


def pad_id(tokenizer: Any, model_pad: Optional[int]) -> int:
    """The id that stands for "no token": the tokenizer's pad (else unk) id, the model's, else 0."""
    for name in ("pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, (int, np.integer)):
            return int(value)
    return int(model_pad) if model_pad is not None else 0
