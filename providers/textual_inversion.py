"""Textual inversion embeddings for the ``diffusers_local`` provider
(docs/checkpoints.md#textual-inversion-embeddings).

An embedding is one or more learned token vectors; a prompt calls it by its name as a word
(A1111 semantics). :func:`embeddings_apply` loads the embeddings a :class:`GenerationSpec`
names into the cached pipeline with diffusers' ``load_textual_inversion`` (each once per
pipeline, keyed by SHA-256) and writes every multi-vector name as its vector tokens
(``name name_1 name_2``: the tokens diffusers adds) so that attention weights apply to all of
them. Layouts (A1111 ``modules/textual_inversion/textual_inversion.py`` and diffusers
``loaders/textual_inversion.py``): ``emb_params`` ``[vectors, width]``, ``string_to_param.*``,
a single tensor (diffusers' ``learned_embeds``), SDXL ``clip_l`` (first encoder) + ``clip_g``
(second). Only ``.safetensors`` files are read; pickles are refused.

Providers never touch the ORM; torch is imported inside the functions.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from .base import EmbeddingSpec, GenerationSpec, ProviderError
from .checkpoints import safetensors_shapes

#: The attribute of a pipeline holding ``{name: (sha256, vectors)}`` of the loaded embeddings.
_LOADED = "_atelier_embeddings"


def name_pattern(name: str) -> re.Pattern:
    """``name`` as a whole word (not inside a longer word or hyphenated name), any case: how
    a prompt calls an embedding."""
    return re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", re.IGNORECASE)


def embedding_widths(path: str) -> tuple[int, ...]:
    """The token-vector width per text encoder of a ``.safetensors`` embedding, from its header:
    ``(768,)`` SD 1.x, ``(1024,)`` SD 2.x, ``(768, 1280)`` SDXL; ``()`` when it is not an
    embedding."""
    shapes = safetensors_shapes(path)
    if "clip_l" in shapes and "clip_g" in shapes:
        return (int(shapes["clip_l"][-1]), int(shapes["clip_g"][-1]))
    keys = [k for k in shapes if k == "emb_params" or k.startswith("string_to_param")]
    if not keys and len(shapes) == 1:
        keys = list(shapes)
    if keys and shapes[keys[0]] and len(shapes[keys[0]]) <= 2:
        return (int(shapes[keys[0]][-1]),)
    return ()


def _encoders(pipe: Any) -> list[tuple[Any, Any]]:
    """(tokenizer, text encoder) pairs of ``pipe``, first encoder first."""
    pairs = []
    for tok, enc in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        if getattr(pipe, tok, None) is not None and getattr(pipe, enc, None) is not None:
            pairs.append((getattr(pipe, tok), getattr(pipe, enc)))
    return pairs


def _tensors(emb: EmbeddingSpec) -> list[Any]:
    """The ``[vectors, width]`` tensor per text encoder of ``emb``'s file.

    Raises:
        ProviderError: ``embedding_unsafe`` (not ``.safetensors``), ``embedding_not_found``,
            ``embedding_incompatible`` (no embedding tensor in the file).
    """
    from safetensors.torch import load_file

    if not emb.path.lower().endswith(".safetensors"):
        raise ProviderError("embedding_unsafe", f"Embedding {emb.name!r} is not a .safetensors "
                            "file; pickle files (.pt, .bin) are never loaded.")
    if not os.path.isfile(emb.path):
        raise ProviderError("embedding_not_found",
                            f"Embedding {emb.name!r}: no file at {emb.path}.")
    state = load_file(emb.path)
    if "clip_l" in state and "clip_g" in state:
        parts = [state["clip_l"], state["clip_g"]]
    else:
        keys = [k for k in state if k == "emb_params" or k.startswith("string_to_param")]
        keys = keys or (list(state) if len(state) == 1 else [])
        if not keys:
            raise ProviderError("embedding_incompatible",
                                f"{emb.path} holds no textual inversion embedding.")
        parts = [state[keys[0]]]
    return [t.reshape(1, -1) if t.ndim == 1 else t for t in parts]


def _unload(pipe: Any, name: str, vectors: int) -> None:
    tokens = [name] + [f"{name}_{i}" for i in range(1, vectors)]
    for tok, enc in _encoders(pipe):
        if name in tok.get_vocab():
            pipe.unload_textual_inversion(tokens=tokens, tokenizer=tok, text_encoder=enc)


def load_embeddings(pipe: Any, embeddings: tuple[EmbeddingSpec, ...] | list) -> list[tuple]:
    """Load ``embeddings`` into ``pipe``'s tokenizers and text encoders (shared with its
    img2img/inpaint variants), each once per pipeline: an embedding whose name and SHA-256 are
    already loaded costs nothing; a changed file under the same name replaces the old vectors.

    Returns:
        ``[(name, sha256[:12])]`` for the infotext's ``TI hashes`` (A1111's short hash).

    Raises:
        ProviderError: ``embedding_incompatible`` (vector width or encoder count differs from
            the model's text encoders), ``embedding_unsafe``, ``embedding_not_found``.
    """
    loaded: dict[str, tuple[str, int]] = pipe.__dict__.setdefault(_LOADED, {})
    encoders = _encoders(pipe)
    for emb in embeddings:
        if loaded.get(emb.name, ("",))[0] == emb.sha256:
            continue
        parts = _tensors(emb)
        model = tuple(int(enc.get_input_embeddings().weight.shape[-1]) for _, enc in encoders)
        widths = tuple(int(t.shape[-1]) for t in parts)
        if widths != model:
            raise ProviderError(
                "embedding_incompatible",
                f"Embedding {emb.name!r} has vectors of width {'+'.join(map(str, widths))}; "
                f"this model's text encoders take {'+'.join(map(str, model)) or 'none'}.")
        if emb.name in loaded:
            _unload(pipe, emb.name, loaded.pop(emb.name)[1])
        for (tok, enc), tensor in zip(encoders, parts, strict=True):
            pipe.load_textual_inversion(tensor, token=emb.name, tokenizer=tok, text_encoder=enc)
        loaded[emb.name] = (emb.sha256, int(parts[0].shape[0]))
    return [(emb.name, emb.sha256[:12]) for emb in embeddings]


def prompt_with_vectors(text: str, vectors: dict[str, int]) -> str:
    """``text`` with each name of a multi-vector embedding (``vectors``: name -> count) written
    as its tokens ``name name_1 ... name_<n-1>`` (inside weights too: ``(x:1.2)`` weighs all)."""
    for name, count in vectors.items():
        if count > 1 and text:
            tokens = " ".join([name] + [f"{name}_{i}" for i in range(1, count)])
            text = name_pattern(name).sub(lambda _m, t=tokens: t, text)
    return text


def embeddings_apply(pipe: Any, spec: GenerationSpec) -> tuple[GenerationSpec, list[tuple]]:
    """Load ``spec.embeddings`` into ``pipe`` (:func:`load_embeddings`) and return ``spec`` with
    its prompts ready for ``encode_prompts`` plus the ``TI hashes`` pairs.

    Raises:
        ProviderError: see :func:`load_embeddings`.
    """
    hashes = load_embeddings(pipe, spec.embeddings)
    loaded = pipe.__dict__.get(_LOADED, {})
    vectors = {e.name: loaded[e.name][1] for e in spec.embeddings if e.name in loaded}
    spec = dataclasses.replace(spec, prompt=prompt_with_vectors(spec.prompt, vectors),
                               negative_prompt=prompt_with_vectors(spec.negative_prompt or "",
                                                                   vectors))
    return spec, hashes
