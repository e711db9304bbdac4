"""Prompt embeddings as A1111 computes them: attention weights, ``BREAK``, prompts of any length.

How and why (docs/prompt-syntax.md#embeddings; facts from AUTOMATIC1111/stable-diffusion-webui
``modules/sd_hijack_clip.py``, ``modules/sd_emphasis.py``, ``modules/sd_hijack_open_clip.py``,
``modules/sd_models_xl.py``, ``modules/sd_samplers_cfg_denoiser.py``):

- the prompt is split into ``(text, weight)`` pairs by :func:`images.prompt.parse_prompt_attention`;
  each text is tokenized without special tokens and the tokens are packed into chunks of
  ``model_max_length - 2`` (75 for CLIP's 77) tokens; a ``BREAK`` starts a new chunk; when a chunk
  is full and a comma came at most ``COMMA_BACKTRACK`` (20) tokens before, the tokens after that
  comma move to the next chunk; each chunk is ``[BOS] + tokens + [EOS]`` padded with EOS, and for
  tokenizers whose pad token is not EOS (OpenCLIP: SD 2.x, SDXL's second encoder) every position
  after the first EOS holds the pad token;
- each chunk goes through the text encoder on its own; the per-token weights multiply the output
  vectors, then the chunk is rescaled so its mean is the mean before weighting ("Original"
  emphasis); the chunks are concatenated along the token axis (3 chunks = 231 tokens);
- the shorter of prompt and negative prompt is padded with chunks of the empty prompt's encoding
  (A1111's "Pad prompt/negative prompt" option: a diffusers pipeline needs both the same length);
- clip skip (A1111 numbering, 1 = last layer): SD 1.x takes ``hidden_states[-clip_skip]`` through
  the final layer norm; SD 2.x and SDXL ignore it as A1111 does by default (SD 2.x diffusers
  models already end at the penultimate layer; SDXL takes the penultimate hidden state of both
  encoders, un-normalized); SDXL's pooled embedding is the second encoder's projection of the
  first chunk; an SDXL negative prompt of ``""`` is all zeros (embeddings and pooled).

torch is imported inside the functions; providers never touch the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from images.prompt import is_break, parse_prompt_attention

#: A1111's "Prompt word wrap length limit" default (``comma_padding_backtrack``), in tokens.
COMMA_BACKTRACK = 20


class PromptEmbedsUnsupported(ValueError):
    """The pipeline's text encoders are not CLIP-only (Flux, SD3): pass the prompt as text."""


@dataclass
class PromptChunk:
    """One encoder input: ``tokens`` (BOS + content + EOS/pad, ``model_max_length`` ids) and one
    ``multipliers`` float per token (1.0 for BOS, EOS and padding)."""

    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Encoder:
    tokenizer: Any
    text_encoder: Any
    length: int  # tokens per chunk, BOS and EOS included (77 for CLIP)


def _chunk_length(tokenizer, text_encoder) -> int:
    """Tokens per chunk: the tokenizer's ``model_max_length`` bounded by the encoder's position
    embeddings (some tokenizers report a huge sentinel length)."""
    length = int(getattr(tokenizer, "model_max_length", 77) or 77)
    positions = getattr(getattr(text_encoder, "config", None), "max_position_embeddings", None)
    if positions:
        length = min(length, int(positions))
    if length < 3:
        raise ValueError(f"Text encoder takes {length} tokens; a chunk needs at least 3.")
    return length


def prompt_chunks(tokenizer, prompt: str, *, length: int = 77,
                  comma_backtrack: int = COMMA_BACKTRACK) -> list[PromptChunk]:
    """Split ``prompt`` (A1111 attention syntax, LoRA tags already removed) into chunks of
    ``length`` tokens as A1111 does; at least one chunk (the empty prompt is one chunk).

    Raises:
        images.prompt.PromptSyntaxError: a bad attention weight (``(x:1.2.3)``).
    """
    parsed = parse_prompt_attention(prompt)
    width = length - 2
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    comma = tokenizer.get_vocab().get(",</w>")
    # verbose=False: no "sequence length is longer than the maximum" warning, chunks are the fix
    token_lists = tokenizer([t for t, _ in parsed], truncation=False, add_special_tokens=False,
                            verbose=False)["input_ids"]

    chunks: list[PromptChunk] = []
    tokens: list[int] = []
    mults: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, mults, last_comma
        body = tokens + [eos] * (width - len(tokens))
        ids = [bos, *body, eos]
        if pad != eos:  # OpenCLIP: everything after the first EOS is padding
            first = ids.index(eos)
            ids = ids[:first + 1] + [pad] * (len(ids) - first - 1)
        chunks.append(PromptChunk(ids, [1.0, *mults, *[1.0] * (width - len(mults)), 1.0]))
        tokens, mults, last_comma = [], [], -1

    for ids, (text, weight) in zip(token_lists, parsed, strict=True):
        if is_break(text, weight):
            close()
            continue
        for token in ids:
            if token == comma:
                last_comma = len(tokens)
            elif (comma_backtrack and len(tokens) == width and last_comma != -1
                  and len(tokens) - last_comma <= comma_backtrack):
                cut = last_comma + 1
                moved, moved_mults = tokens[cut:], mults[cut:]
                tokens, mults = tokens[:cut], mults[:cut]
                close()
                tokens, mults = moved, moved_mults
            if len(tokens) == width:
                close()
            tokens.append(token)
            mults.append(weight)
    if tokens or not chunks:
        close()
    return chunks


def _encoders(pipe) -> tuple[list[_Encoder], bool]:
    """The pipeline's CLIP encoders and whether it is SDXL (two CLIP encoders, pooled output)."""
    te, te2 = getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None)
    if getattr(pipe, "text_encoder_3", None) is not None:
        raise PromptEmbedsUnsupported(f"{type(pipe).__name__} has three text encoders.")
    if te2 is not None and type(te2).__name__ != "CLIPTextModelWithProjection":
        raise PromptEmbedsUnsupported(
            f"{type(pipe).__name__}'s second text encoder is a {type(te2).__name__}, not CLIP.")
    found = []
    for tok, enc in ((getattr(pipe, "tokenizer", None), te),
                     (getattr(pipe, "tokenizer_2", None), te2)):
        if enc is not None and tok is not None:
            found.append(_Encoder(tok, enc, _chunk_length(tok, enc)))
    if not found:
        raise PromptEmbedsUnsupported(f"{type(pipe).__name__} has no CLIP text encoder.")
    return found, te2 is not None


def prompt_embeds_supported(pipe) -> bool:
    """Whether :func:`encode_prompts` handles ``pipe`` (SD 1.x/2.x and SDXL pipelines)."""
    try:
        _encoders(pipe)
    except PromptEmbedsUnsupported:
        return False
    return True


def _encode(enc: _Encoder, chunks: list[PromptChunk], *, sdxl: bool, clip_skip: int):
    """Encode ``chunks`` (one batch row each) -> (embeddings [1, n*length, C], pooled or None)."""
    import torch

    model = enc.text_encoder
    ids = torch.tensor([c.tokens for c in chunks], dtype=torch.long, device=model.device)
    out = model(ids, output_hidden_states=True)
    pad_is_eos = enc.tokenizer.pad_token_id in (None, enc.tokenizer.eos_token_id)
    if sdxl:
        z = out.hidden_states[-2]
    elif clip_skip > 1 and pad_is_eos:
        # transformers 5 flattened CLIPTextModel (no .text_model); 4.x has it.
        z = getattr(model, "text_model", model).final_layer_norm(out.hidden_states[-clip_skip])
    else:
        z = out.last_hidden_state
    pooled = out.text_embeds[:1] if sdxl and hasattr(out, "text_embeds") else None
    weights = torch.tensor([c.multipliers for c in chunks], dtype=torch.float32,
                           device=z.device)
    rows = []
    for i in range(z.shape[0]):
        row = z[i:i + 1]
        if bool((weights[i] != 1.0).any()):
            before = row.float()
            weighted = before * weights[i].reshape(1, -1, 1)
            new_mean = weighted.mean()
            if bool(torch.isfinite(new_mean)) and float(new_mean) != 0.0:
                weighted = weighted * (before.mean() / new_mean)
            row = weighted.to(row.dtype)
        rows.append(row)
    return torch.cat(rows, dim=1), pooled


def _check_clip_skip(encoders: list[_Encoder], clip_skip: int) -> None:
    if not isinstance(clip_skip, int) or clip_skip < 1:
        raise ValueError(f"clip_skip must be an integer of at least 1, not {clip_skip!r}.")
    layers = getattr(encoders[0].text_encoder.config, "num_hidden_layers", None)
    if layers is not None and clip_skip > layers:
        raise ValueError(f"clip_skip {clip_skip} is more than the text encoder's {layers} layers.")


def encode_prompts(pipe, prompt: str, negative: str, *, clip_skip: int = 1) -> dict:
    """The embedding keyword arguments of ``pipe(...)`` for ``prompt`` and ``negative``.

    Args:
        pipe: a diffusers SD 1.x/2.x or SDXL pipeline (txt2img, img2img or inpaint); its text
            encoders (with any LoRA adapters loaded) are run here, under ``torch.no_grad``.
        prompt, negative: A1111 prompt syntax (attention weights, ``BREAK``), LoRA tags removed.
        clip_skip: A1111 numbering, 1 = last layer (see the module docstring for SD 2.x / SDXL).

    Returns:
        ``{"prompt_embeds", "negative_prompt_embeds"}`` tensors of shape ``[1, chunks*77, C]``
        (same chunk count for both), plus ``"pooled_prompt_embeds"`` and
        ``"negative_pooled_prompt_embeds"`` (``[1, 1280]``) for SDXL; on the text encoder's device
        and dtype. The pipeline repeats them for ``num_images_per_prompt``.

    Raises:
        PromptEmbedsUnsupported: not an SD/SDXL pipeline (check :func:`prompt_embeds_supported`).
        ValueError: ``clip_skip`` below 1 or above the encoder's layer count.
        images.prompt.PromptSyntaxError: a bad attention weight.
    """
    import torch

    encoders, sdxl = _encoders(pipe)
    _check_clip_skip(encoders, clip_skip)
    zero_negative = sdxl and negative == ""  # A1111 force_zero_negative_prompt
    keys = ("prompt",) if zero_negative else ("prompt", "negative")
    texts = {"prompt": prompt, "negative": negative}
    chunked = [{k: prompt_chunks(enc.tokenizer, texts[k], length=enc.length) for k in keys}
               for enc in encoders]
    lengths = {len(c[k]) * enc.length for c, enc in zip(chunked, encoders, strict=True)
               for k in keys} | ({encoders[0].length} if zero_negative else set())
    embeds: dict[str, Any] = {}
    pooled: dict[str, Any] = {}
    with torch.no_grad():
        # The empty prompt's encoding pads the shorter side; only encoded when needed.
        empties = [_encode(enc, prompt_chunks(enc.tokenizer, "", length=enc.length), sdxl=sdxl,
                           clip_skip=clip_skip)[0] if len(lengths) > 1 else None
                   for enc in encoders]
        for key in keys:
            parts = []
            for enc, chunks in zip(encoders, chunked, strict=True):
                z, pool = _encode(enc, chunks[key], sdxl=sdxl, clip_skip=clip_skip)
                parts.append(z)
                if pool is not None:
                    pooled[key] = pool
            tokens = max(p.shape[1] for p in parts)
            embeds[key] = torch.cat([_pad(p, e, tokens) for p, e in zip(parts, empties,
                                                                         strict=True)], dim=-1)
        if zero_negative:
            embeds["negative"] = embeds["prompt"].new_zeros(
                (1, encoders[0].length, embeds["prompt"].shape[-1]))
            pooled["negative"] = torch.zeros_like(pooled["prompt"])
        tokens = max(embeds["prompt"].shape[1], embeds["negative"].shape[1])
        empty = torch.cat(empties, dim=-1) if empties[0] is not None else None
        result = {"prompt_embeds": _pad(embeds["prompt"], empty, tokens),
                  "negative_prompt_embeds": _pad(embeds["negative"], empty, tokens)}
    if sdxl:
        result["pooled_prompt_embeds"] = pooled["prompt"]
        result["negative_pooled_prompt_embeds"] = pooled["negative"]
    return result


def _pad(z, empty, tokens: int):
    """``z`` [1, n, C] extended to ``tokens`` with repeats of the empty prompt ``empty``
    [1, length, C] (A1111 ``pad_cond_uncond``: whole empty-prompt chunks)."""
    import torch

    missing = tokens - z.shape[1]
    if missing <= 0:
        return z
    repeats = missing // empty.shape[1]
    return torch.cat([z, empty.repeat(1, repeats, 1)], dim=1)
