"""A language model seen the same way on every framework: token ids in, logits
``(batch, length, vocabulary)`` out, attributed at its token embeddings.

Everything framework-specific goes through the backend protocol (``backends/base.py``):
forward passes, :meth:`Backend.output_rows` and the model's own ``generate``.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..backends import get_backend
from ..backends.base import Backend, LayerRef, Query
from ..errors import SaliencyError, SaliencyWarning
from ..structure import flatten

#: Argument names of token ids and of their mask, by framework convention (HuggingFace, keras_hub).
_ID_NAMES = ("input_ids", "token_ids")
_MASK_NAMES = ("attention_mask", "padding_mask")
_DECODER_IDS = "decoder_input_ids"


@dataclass
class Context:
    """One forward pass's input: the model's argument dict (or one array) and its query."""

    inputs: Any
    entries: list[np.ndarray]
    query: Query


@dataclass
class LanguageModel:
    """How to feed one model token ids, and where its token embeddings are."""

    backend: Backend
    ids_name: Optional[str]
    #: The model's mask argument, and whether it must be given (else it is left out: all ones).
    mask_name: Optional[str]
    mask_required: bool
    encoder_decoder: bool
    layer: LayerRef
    #: The decoder's first input token (encoder–decoders).
    decoder_start: Optional[int]
    eos_id: Optional[int]
    pad_id: Optional[int]

    @classmethod
    def of(cls, model: Any, layer: Any = None) -> "LanguageModel":
        backend = get_backend(model)
        names = backend.input_names(32) or []
        ids_name = next((n for n in _ID_NAMES if n in names), None)
        mask_name = next((n for n in _MASK_NAMES if n in names), None)
        encoder_decoder = _DECODER_IDS in names
        config = _generation_config(model)
        start = _first_int(config, "decoder_start_token_id") if encoder_decoder else None
        if encoder_decoder and start is None:
            raise SaliencyError("the encoder–decoder's generation config names no decoder_start_token_id; set "
                                "model.generation_config.decoder_start_token_id")
        return cls(backend, ids_name, mask_name, mask_name is not None and _required(model, mask_name), encoder_decoder,
                   _embedding_layer(backend, model, layer, encoder_decoder),
                   start, _first_int(config, "eos_token_id"), _first_int(config, "pad_token_id"))

    @property
    def framework(self) -> str:
        return self.backend.framework

    def context(self, prompt: np.ndarray, tokens: np.ndarray, copies: int = 1, *, masked: bool = False) -> Context:
        """The input of one pass: a causal model reads ``prompt + tokens``; an encoder–decoder's
        encoder reads ``prompt`` and its decoder ``[start] + tokens``. ``prompt`` is one prompt,
        repeated ``copies`` times as the batch, or ``(batch, P)``: one prompt per sample. An
        all-ones mask goes with it where the model requires one, or ``masked`` (pad ids that are
        tokens, not padding)."""
        prompts = np.atleast_2d(np.asarray(prompt, dtype=np.int64))
        if len(prompts) == 1:
            prompts = np.repeat(prompts, copies, axis=0)
        after = np.repeat(np.asarray(tokens, dtype=np.int64).reshape(1, -1), len(prompts), axis=0)
        if self.encoder_decoder:
            start = np.full((len(prompts), 1), self.decoder_start, dtype=np.int64)
            inputs = {self.ids_name: prompts, _DECODER_IDS: np.concatenate([start, after], axis=1)}
            read = prompts
        else:
            read = np.concatenate([prompts, after], axis=1)
            inputs = {self.ids_name: read} if self.ids_name else read
        if self.mask_name and (self.mask_required or masked):
            inputs[self.mask_name] = np.ones_like(read)
        batch = ({k: v.astype(self._id_dtype) for k, v in inputs.items()} if isinstance(inputs, dict)
                 else inputs.astype(self._id_dtype))
        spec, entries = flatten(batch, self.backend.to_numpy, None, self.backend.input_names)
        return Context(batch, entries, self.backend.query(spec, logits=True, layer=self.layer))

    @property
    def _id_dtype(self) -> type:
        return np.int64 if self.framework == "torch" else np.int32

    def logits(self, context: Context, activation: Optional[np.ndarray] = None) -> np.ndarray:
        """The model's logits ``(batch, length, vocabulary)`` for ``context``, float32."""
        out = self.backend.forward(context.query, context.entries, activation)
        if out.ndim != 3:
            raise SaliencyError(f"a language model's output is (batch, length, vocabulary) logits; this model's is "
                                f"{out.shape}: pass a model that returns logits for every position")
        return out

    def vocabulary(self, context: Context) -> int:
        """The size of the logits' last axis; one forward pass the first time, then remembered
        with the backend's output shapes."""
        key = ("vocabulary", context.query.key)
        if key not in self.backend.output_shapes:
            self.backend.output_shapes[key] = self.logits(context).shape[2:]
        return self.backend.output_shapes[key][0]

    def embeddings(self, context: Context) -> np.ndarray:
        """The attributed layer's output for ``context``: ``(batch, length, width)``."""
        return self.backend.activation(context.query, context.entries)

    def layer_types(self) -> list[str]:
        """The type names of the model's layers (their output shapes are not needed here)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SaliencyWarning)
            return [info.type for info in self.backend.layers()]

    def generate(self, prompt: np.ndarray, max_new_tokens: int, options: dict[str, Any]) -> np.ndarray:
        """The generated ids: the model's own ``generate`` where it has one, else greedy decoding
        (sampling options then need the model's ``generate``)."""
        inputs = {self.ids_name or "input_ids": prompt[None]}
        if self.mask_name and self.mask_required:
            inputs[self.mask_name] = np.ones_like(prompt[None])
        generated = self.backend.generate(inputs, max_new_tokens, dict(options)) if self.ids_name else None
        if generated is not None:
            tokens = generated[0, 1:] if self.encoder_decoder else generated[0, len(prompt):]
            return _until_eos(tokens.astype(np.int64), self.eos_id if self.encoder_decoder else None)
        if options:
            raise SaliencyError(f"generate_kwargs ({', '.join(options)}) need the model's own generate(); this "
                                "model has none, so it is decoded greedily: pass continuation= to explain a sampled text")
        return self._greedy(prompt, max_new_tokens)

    def _greedy(self, prompt: np.ndarray, max_new_tokens: int) -> np.ndarray:
        """Greedy decoding on one fixed-length buffer (a causal model's logit at position t reads
        no later token): one input shape for every step, so a compiled model compiles once."""
        tokens = np.full(max_new_tokens, self.pad_id or 0, dtype=np.int64)
        for k in range(max_new_tokens):
            logits = self.logits(self.context(prompt, tokens[:-1]))
            position = (0 if self.encoder_decoder else len(prompt) - 1) + k
            tokens[k] = int(np.argmax(logits[0, position]))
            if self.eos_id is not None and tokens[k] == self.eos_id:
                return tokens[:k + 1]
        return tokens


def _required(model: Any, name: str) -> bool:
    """Whether the model needs argument ``name``: a Keras model needs all its inputs; a torch
    model's ``forward`` parameter with a default (HuggingFace's ``attention_mask=None``: no
    padding) is left out, as an all-ones mask would only slow the attention down."""
    forward = getattr(model, "forward", None)
    try:
        parameter = inspect.signature(forward).parameters.get(name) if forward is not None else None
    except (TypeError, ValueError):
        return True
    return parameter is None or parameter.default is inspect.Parameter.empty


def _until_eos(tokens: np.ndarray, eos: Optional[int]) -> np.ndarray:
    if eos is None or eos not in tokens:
        return tokens
    return tokens[:int(np.argmax(tokens == eos)) + 1]


def _generation_config(model: Any) -> Any:
    return getattr(model, "generation_config", None) or getattr(model, "config", None)


def _first_int(config: Any, name: str) -> Optional[int]:
    value = getattr(config, name, None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None


def _embedding_layer(backend: Backend, model: Any, layer: Any, encoder_decoder: bool) -> LayerRef:
    """``layer`` resolved; by default the token embeddings: HuggingFace's input embeddings (an
    encoder–decoder's encoder's and decoder's, joined), a keras_hub backbone's
    ``token_embedding`` (its first call: the second is the reverse call making logits), else
    the one layer whose type is an embedding."""
    if layer is not None:
        return backend.find_layer(layer)
    if encoder_decoder and hasattr(model, "get_encoder") and hasattr(model, "get_decoder"):
        encoder = backend.find_layer(model.get_encoder().get_input_embeddings())
        decoder = backend.find_layer(model.get_decoder().get_input_embeddings())
        if encoder.obj is decoder.obj:
            return LayerRef(encoder.name, encoder.obj, "all")
        return LayerRef(f"{encoder.name} + {decoder.name}", encoder.obj, "all", (decoder.obj,))
    if callable(getattr(model, "get_input_embeddings", None)):
        return backend.find_layer(model.get_input_embeddings())
    token_embedding = getattr(getattr(model, "backbone", None), "token_embedding", None)
    if token_embedding is not None:
        found = backend.find_layer(token_embedding)
        return LayerRef(found.name, found.obj, "first" if type(found.obj).__name__ == "ReversibleEmbedding" else "once")
    with warnings.catch_warnings():  # output shapes are not needed here
        warnings.simplefilter("ignore", SaliencyWarning)
        embeddings = [info for info in backend.layers() if "Embedding" in info.type]
    if len(embeddings) != 1:
        listed = ", ".join(f"{i.name} ({i.type})" for i in embeddings) or "none"
        raise SaliencyError(f"cannot tell which layer embeds the tokens (embedding layers: {listed}); pass layer=")
    return backend.find_layer(embeddings[0].name)
