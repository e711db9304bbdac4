"""A1111 infotext: the PNG ``parameters`` text, written and read as AUTOMATIC1111 does.

Format and sources: docs/infotext.md (A1111 ``modules/processing.py: create_infotext`` for the
field names and order, ``modules/infotext_utils.py: parse_generation_parameters`` and
``quote``/``unquote`` for reading and quoting).

Layout (the last line is one line)::

    <prompt, may span lines, LoRA tags included>
    Negative prompt: <negative prompt, may span lines>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768,
    Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Clip skip: 2,
    Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "a: 0123456789ab",
    Version: Atelier 0.1.0

Pure functions here (:func:`build_infotext`, :func:`parse_infotext`,
:func:`request_params_from_infotext`, :func:`prompt_with_lora_tags`); the ORM and file reads are
in :func:`infotext_for_request` and :func:`file_sha256`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: One ``key: value`` item of the parameters line (A1111 ``re_param_code``): a key starts with a
#: word character, then words, spaces, ``-`` and ``/``; a value is a JSON-quoted string or runs
#: to the next comma.
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_SIZE = re.compile(r"^(\d+)x(\d+)$")
#: A1111's extra-network tag, ``<lora:NAME:ARG:ARG...>`` (``modules/extra_networks.py``).
RE_LORA_TAG = re.compile(r"<(lora|lyco):([^>]+)>", re.IGNORECASE)
#: Characters A1111 removes from a LoRA name in ``Lora hashes`` (its ``remove_symbols``).
_HASH_KEY_DROP = str.maketrans("", "", ":,")
#: Characters that would break a ``<lora:NAME:...>`` tag (``:`` splits the arguments, ``>`` ends
#: the tag) or a parameters value read by tools that split on ``,`` and ``:`` (sd-parsers).
_TAG_BREAKERS = str.maketrans("", "", ":<>")
_VALUE_DROP = str.maketrans("", "", ",:\n")

#: Samplers A1111 before 1.9 named with their schedule; it now splits them (``Sampler`` +
#: ``Schedule type``) when it pastes an old infotext.
_OLD_SCHEDULE_SUFFIXES = {" Karras": "Karras", " Exponential": "Exponential"}


# ----------------------------------------------------------------------------- quoting
def quote(value: Any) -> str:
    """A value as A1111 writes it: JSON-quoted when it holds ``,``, ``:`` or a newline.

    >>> quote("add_detail: 0123456789ab")
    '"add_detail: 0123456789ab"'
    """
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    """The inverse of :func:`quote`; text that is not a valid JSON string is returned as is."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def number(value: Any) -> str:
    """A number as A1111's web UI writes it: ``7`` for 7.0, ``0.45``, ``1.5`` (text as is)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def value_clean(text: str) -> str:
    """``text`` without ``,``, ``:`` and newlines, for values (the model name) that readers which
    split the parameters line on ``,`` and ``:`` (sd-parsers) must get whole."""
    return str(text).translate(_VALUE_DROP).strip()


# ----------------------------------------------------------------------------- writing
def build_infotext(*, prompt: str, negative_prompt: str = "", steps: int, sampler: str,
                   scheduler: str | None = None, cfg_scale: float | str, seed: int,
                   width: int, height: int, model_hash: str = "", model: str = "",
                   vae_hash: str = "", vae: str = "", denoising_strength: float | None = None,
                   clip_skip: int = 1, hires_upscale: float | None = None,
                   hires_steps: int | None = None, hires_upscaler: str = "",
                   lora_hashes: Iterable[tuple[str, str]] = (),
                   ti_hashes: Iterable[tuple[str, str]] = (), version: str = "",
                   extra: Mapping[str, Any] | None = None) -> str:
    """The A1111 ``parameters`` text, fields in ``create_infotext``'s order.

    Args:
        prompt, negative_prompt: as written to the file (LoRA tags in ``prompt``).
        sampler: A1111 sampler label (``"Euler a"``); ``scheduler``: its schedule type label
            (``"Karras"``), None to leave the field out.
        cfg_scale, denoising_strength, hires_upscale: numbers (written ``7``, ``7.5``); a
            string is written as is.
        model_hash: AutoV2 (10 hex) of a single-file checkpoint, "" for none; ``model``: the
            checkpoint's file stem. ``vae_hash``/``vae`` the same for a VAE file.
        clip_skip: A1111 numbering (1 = none, not written).
        hires_upscale/hires_steps/hires_upscaler: hires fix (None: no hires pass; steps 0 or
            None: same as the first pass, not written).
        lora_hashes / ti_hashes: ``[(name, 12-hex short hash)]``; ``:`` and ``,`` are dropped
            from names as A1111 does.
        version: the ``Version`` field ("" to leave it out).
        extra: more ``{label: value}`` fields, written after the hashes and before
            ``Version``; a label of a standard field replaces it in place (A1111's dict).

    Returns:
        ``prompt``, ``Negative prompt: ...`` when there is one, and the parameters line.
    """
    params: dict[str, Any] = {
        "Steps": steps,
        "Sampler": sampler,
        "Schedule type": scheduler,
        "CFG scale": cfg_scale,
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model hash": model_hash or None,
        "Model": value_clean(model) or None,
        "VAE hash": vae_hash or None,
        "VAE": vae or None,
        "Denoising strength": denoising_strength,
        "Clip skip": clip_skip if clip_skip and clip_skip > 1 else None,
    }
    if hires_upscale is not None:
        params["Hires upscale"] = hires_upscale
        params["Hires steps"] = hires_steps or None
        params["Hires upscaler"] = hires_upscaler or None
    lora_text = _hash_list(lora_hashes)
    if lora_text:
        params["Lora hashes"] = lora_text
    ti_text = _hash_list(ti_hashes)
    if ti_text:
        params["TI hashes"] = ti_text
    for key, value in (extra or {}).items():
        params[key] = value
    params["Version"] = version or None
    line = ", ".join(f"{key}: {quote(number(value))}" for key, value in params.items()
                     if value is not None and value != "")
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}".strip()


def _hash_list(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{str(name).translate(_HASH_KEY_DROP)}: {short}"
                     for name, short in pairs if short)


def lora_tag_name(entry: Mapping[str, Any]) -> str:
    """The name to write in ``<lora:NAME:...>`` for a request LoRA: its ``alias`` (the name
    A1111 resolves it by: ``ss_output_name`` or file stem), else ``name`` (the library's file
    stem). A name holding ``:``, ``<`` or ``>`` cannot be written in a tag (A1111 splits the
    arguments on ``:``): the other name is taken, else those characters are dropped."""
    candidates = [str(entry.get("alias") or ""), str(entry.get("name") or "")]
    for candidate in candidates:
        if candidate and candidate == candidate.translate(_TAG_BREAKERS):
            return candidate
    return next((c.translate(_TAG_BREAKERS) for c in candidates if c), "")


def lora_tag(name: str, weight: float, te_weight: float | None = None) -> str:
    """``<lora:name:w>``, or ``<lora:name:te:unet>`` when the text-encoder weight differs."""
    if te_weight is not None and float(te_weight) != float(weight):
        return f"<lora:{name}:{number(float(te_weight))}:{number(float(weight))}>"
    return f"<lora:{name}:{number(float(weight))}>"


def _tag_matches(ref: str, entry: Mapping[str, Any]) -> bool:
    """Whether the tag name ``ref`` names the request LoRA ``entry`` (as the library resolves
    it: id, alias, name, sha256 / AutoV2 prefix of 10+ hex)."""
    ref = ref.strip()
    low = ref.lower()
    if ref.isdigit() and int(ref) == entry.get("lora_id"):
        return True
    names = [str(entry.get(k) or "") for k in ("alias", "name")]
    if any(n and n.lower() == low for n in names):
        return True
    sha = str(entry.get("sha256") or "").lower()
    return bool(sha) and len(ref) >= 10 and sha.startswith(low)


def prompt_with_lora_tags(prompt: str, loras: list[Mapping[str, Any]], *,
                          resolve=None) -> tuple[str, list[Mapping[str, Any]]]:
    """``prompt`` with every applied LoRA written as A1111 resolves it.

    Tags already in ``prompt`` keep their place and arguments; their name becomes
    :func:`lora_tag_name` of the LoRA they resolved to. LoRAs of ``loras`` no tag names (sent in
    the request's JSON ``loras`` field) are appended as ``<lora:name:w>``, separated by a space
    (A1111's default extra-networks separator). Tags naming no request LoRA stay as typed.

    Args:
        loras: the request's resolved LoRAs ``[{lora_id, name, weight, sha256, short_hash,
            te_weight?, alias?}]``.
        resolve: optional ``ref -> lora_id | None`` for tag names the entries do not carry
            (e.g. an ``ss_output_name`` alias the request did not record).

    Returns:
        ``(prompt, loras in the order they appear in the returned prompt)``.
    """
    ordered: list[Mapping[str, Any]] = []

    def rewrite(match: re.Match) -> str:
        args = match.group(2).split(":")
        ref = args[0]
        entry = next((e for e in loras if _tag_matches(ref, e)), None)
        if entry is None and resolve is not None:
            lora_id = resolve(ref.strip())
            entry = next((e for e in loras if lora_id and e.get("lora_id") == lora_id), None)
        if entry is None:
            return match.group(0)
        if entry not in ordered:
            ordered.append(entry)
        return f"<{match.group(1)}:{':'.join([lora_tag_name(entry), *args[1:]])}>"

    text = RE_LORA_TAG.sub(rewrite, prompt)
    tail = [e for e in loras if e not in ordered]
    if tail:
        tags = " ".join(lora_tag(lora_tag_name(e), e.get("weight", 1.0), e.get("te_weight"))
                        for e in tail)
        text = f"{text.rstrip()} {tags}" if text.strip() else tags
        ordered.extend(tail)
    return text, ordered


# ----------------------------------------------------------------------------- reading
@dataclass
class Infotext:
    """A parsed infotext: the prompts and the parameters line as ``{label: text}`` (values
    unquoted, in file order)."""

    prompt: str = ""
    negative_prompt: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def size(self) -> tuple[int, int] | None:
        match = RE_SIZE.match(self.params.get("Size", ""))
        return (int(match.group(1)), int(match.group(2))) if match else None


def parse_infotext(text: str) -> Infotext:
    """Read an A1111 infotext as ``parse_generation_parameters`` does.

    The last line is the parameters line when it holds at least three ``key: value`` items;
    otherwise it belongs to the prompt. Lines before ``Negative prompt:`` are the prompt, the
    rest the negative prompt; each line is stripped, lines are joined with ``\\n``. Quoted
    values are unquoted (JSON). No defaults are filled in (A1111 adds ``Clip skip: 1`` etc.).
    """
    *lines, last = (text or "").strip().split("\n")
    if len(RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    params: dict[str, str] = {}
    for key, value in RE_PARAM.findall(last):
        params[key] = unquote(value) if value[:1] == '"' and value[-1:] == '"' else value
    return Infotext(prompt="\n".join(prompt), negative_prompt="\n".join(negative),
                    params=params)


def hash_list_parse(text: str) -> list[tuple[str, str]]:
    """``"a: 0123456789ab, b: ba9876543210"`` (``Lora hashes``/``TI hashes``) as pairs."""
    pairs = []
    for part in (text or "").split(","):
        name, sep, short = part.rpartition(":")
        if sep and name.strip() and short.strip():
            pairs.append((name.strip(), short.strip()))
    return pairs


def lora_tags_parse(prompt: str) -> list[dict[str, Any]]:
    """The ``<lora:NAME:W>`` / ``<lora:NAME:TE:UNET>`` tags of ``prompt`` as
    ``[{name, weight, te_weight}]`` (``weight``: UNet weight; ``te_weight`` None when one weight
    is given; ``te=``/``unet=`` named forms too). Weights that are not numbers are left None."""
    found = []
    for match in RE_LORA_TAG.finditer(prompt or ""):
        args = [a.strip() for a in match.group(2).split(":")]
        positional = [a for a in args[1:] if "=" not in a]
        named = dict(a.split("=", 1) for a in args[1:] if "=" in a)
        te = to_float(named.get("te", positional[0] if positional else "1"))
        unet = to_float(named.get("unet", positional[1] if len(positional) > 1 else None))
        found.append({"name": args[0], "weight": te if unet is None else unet,
                      "te_weight": None if unet is None else te})
    return found


def to_float(text: Any) -> float | None:
    """``text`` as a float; None when it is not a number."""
    if text is None:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def to_int(text: Any) -> int | None:
    """``text`` as an int when it is a whole number; else None."""
    value = to_float(text)
    return int(value) if value is not None and value.is_integer() else None


def sampler_split(sampler: str, scheduler: str = "") -> tuple[str, str]:
    """``("DPM++ 2M Karras", "")`` -> ``("DPM++ 2M", "Karras")``: old A1111 sampler names carry
    the schedule; newer infotexts have ``Schedule type``."""
    if not scheduler:
        for suffix, schedule in _OLD_SCHEDULE_SUFFIXES.items():
            if sampler.endswith(suffix):
                return sampler[: -len(suffix)], schedule
    return sampler, scheduler


def request_params_from_infotext(info: Infotext) -> dict[str, Any]:
    """The generation parameters an infotext describes, named as PNG Info answers them.

    Returns:
        ``{prompt, negative_prompt, steps, sampler, scheduler, cfg_scale, seed, width, height,
        clip_skip, enable_hr, hr_scale, hr_second_pass_steps, hr_upscaler,
        denoising_strength, model, model_hash, vae, vae_hash, loras: [{name, weight,
        te_weight, hash}], version}``; a field the infotext lacks is None (``clip_skip`` 1,
        ``enable_hr`` False, ``scheduler`` "" as A1111 fills them).
    """
    p = info.params
    sampler, scheduler = sampler_split(p.get("Sampler", ""), p.get("Schedule type", ""))
    size = info.size()
    hires = "Hires upscale" in p or "Hires resize" in p or "Hires upscaler" in p
    hashes = dict(hash_list_parse(p.get("Lora hashes", "")))
    loras = lora_tags_parse(info.prompt)
    for item in loras:
        item["hash"] = hashes.get(item["name"].translate(_HASH_KEY_DROP))
    return {
        "prompt": info.prompt, "negative_prompt": info.negative_prompt,
        "steps": to_int(p.get("Steps")), "sampler": sampler,
        "scheduler": "" if scheduler == "Automatic" else scheduler,
        "cfg_scale": to_float(p.get("CFG scale")), "seed": to_int(p.get("Seed")),
        "width": size[0] if size else None, "height": size[1] if size else None,
        "clip_skip": to_int(p.get("Clip skip")) or 1,
        "enable_hr": hires,
        "hr_scale": to_float(p.get("Hires upscale")) if hires else None,
        "hr_second_pass_steps": to_int(p.get("Hires steps")) if hires else None,
        "hr_upscaler": p.get("Hires upscaler") if hires else None,
        "denoising_strength": to_float(p.get("Denoising strength")),
        "model": p.get("Model"), "model_hash": p.get("Model hash"),
        "vae": p.get("VAE"), "vae_hash": p.get("VAE hash"),
        "loras": loras, "version": p.get("Version"),
    }


def generate_body(params: Mapping[str, Any], *, model: str | None = None,
                  vae: str | None = None) -> dict[str, Any]:
    """The ``POST /api/generate/`` body for PNG Info's ``parameters`` (A1111 API names where
    Atelier has them: ``sampler``, ``scheduler``, ``clip_skip``, ``enable_hr``, ``hr_scale``,
    ``hr_upscaler``, ``hr_second_pass_steps``, ``denoising_strength``; ``cfg_scale`` is
    ``guidance_scale``). Fields the parameters lack are left out (the profile's defaults
    apply); LoRAs stay as the prompt's tags. ``model``: a profile slug to generate with;
    ``vae``: a VAE name Atelier has (``GET /api/vaes/``)."""
    body: dict[str, Any] = {
        "prompt": params.get("prompt"), "negative_prompt": params.get("negative_prompt"),
        "steps": params.get("steps"), "sampler": params.get("sampler") or None,
        "scheduler": params.get("scheduler") or None,
        "guidance_scale": params.get("cfg_scale"), "seed": params.get("seed"),
        "width": params.get("width"), "height": params.get("height"),
        "clip_skip": params.get("clip_skip") if (params.get("clip_skip") or 1) > 1 else None,
        "model": model, "vae": vae,
    }
    if params.get("enable_hr"):
        body.update(enable_hr=True, hr_scale=params.get("hr_scale"),
                    hr_upscaler=params.get("hr_upscaler"),
                    hr_second_pass_steps=params.get("hr_second_pass_steps"),
                    denoising_strength=params.get("denoising_strength"))
    return {key: value for key, value in body.items() if value is not None}


# ----------------------------------------------------------------------------- files and rows
def file_sha256(path: str, *, compute: bool = True) -> str:
    """SHA-256 (64 lower-case hex) of the file at ``path``, read once per (path, size, mtime):
    cached in the process and in Django's cache (Redis when configured), so a 2-7 GB
    checkpoint is hashed once, not per image. "" when ``path`` is not a readable file, or
    when ``compute`` is False and the digest is not cached yet."""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    if not os.path.isfile(path):
        return ""
    key = f"atelier:file-sha256:{hashlib.sha1(path.encode()).hexdigest()}:" \
          f"{stat.st_size}:{stat.st_mtime_ns}"
    if key in _SHA_MEMO:
        return _SHA_MEMO[key]
    from django.core.cache import cache

    try:
        digest = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache that is down only costs a re-hash
        digest = None
    if not digest and not compute:
        return ""
    if not digest:
        try:
            with open(path, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as exc:
            log.warning("cannot hash %s: %s", path, exc)
            return ""
        try:
            cache.set(key, digest, timeout=None)
        except Exception:  # noqa: BLE001
            pass
    _SHA_MEMO[key] = digest
    return digest


_SHA_MEMO: dict[str, str] = {}


def model_name_and_hash(model_path: str, fallback: str = "", *,
                        compute: bool = True) -> tuple[str, str]:
    """``(Model, Model hash)`` of a checkpoint path as A1111 writes them: the file stem and the
    AutoV2 (first 10 hex of the file's SHA-256) for a single file; the folder name and no hash
    for a diffusers folder; the last path segment of a remote model id; ``fallback`` when
    ``model_path`` is empty. Commas and colons are dropped from the name. ``compute`` False:
    only a hash already cached (no file is read)."""
    if not model_path:
        return value_clean(fallback), ""
    path = os.path.realpath(os.path.expanduser(model_path))
    if os.path.isfile(path):
        stem = os.path.splitext(os.path.basename(path))[0]
        return value_clean(stem), file_sha256(path, compute=compute)[:10]
    return value_clean(os.path.basename(model_path.rstrip("/\\")) or fallback), ""


def _vae_fields(vae_path: str) -> tuple[str, str]:
    """``(VAE, VAE hash)``: the file name (extension kept, as A1111) and its AutoV2."""
    if not vae_path:
        return "", ""
    path = os.path.realpath(os.path.expanduser(vae_path))
    name = os.path.basename(vae_path.rstrip("/\\"))
    return name, (file_sha256(path)[:10] if os.path.isfile(path) else "")


def atelier_version() -> str:
    """``Atelier <version>``: never a bare ``1.2.3``, which A1111 would read as its own (old)
    version and paste with backward-compatibility options switched on."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"Atelier {version('atelier')}"
    except PackageNotFoundError:
        return "Atelier"


def infotext_for_request(request, image_info: Mapping[str, Any] | None = None, *, seed: int,
                         width: int, height: int) -> str:
    """The infotext of one image of ``request`` (a ``GenerationRequest``).

    Args:
        image_info: what the provider reported for the image (``GeneratedImage.info``):
            ``sampler``, ``scheduler``, ``model_hash``, ``ti_hashes`` [(name, hash)] are used
            when the request does not name them.
        seed, width, height: of this image. With hires fix ``Size`` is the first pass (the
            request's width x height) and ``Hires upscale`` says the rest, as A1111.

    Every LoRA of ``request.loras`` is written as a ``<lora:...>`` tag (see
    :func:`prompt_with_lora_tags`) and in ``Lora hashes``. Reads the checkpoint/VAE files
    once per (path, size, mtime) for their hashes (:func:`file_sha256`).
    """
    info = dict(image_info or {})
    profile = request.profile
    loras = list(request.loras or [])

    def resolve(ref: str):
        from loras.selectors import lora_resolve

        found = lora_resolve(ref=ref)
        return found.pk if found is not None else None

    prompt, ordered = prompt_with_lora_tags(request.prompt, loras, resolve=resolve)
    model, model_hash = model_name_and_hash(profile.model_path,
                                            fallback=profile.name or profile.slug)
    vae, vae_hash = _vae_fields(getattr(request, "vae", "") or
                                str((profile.options or {}).get("vae") or ""))
    enable_hr = bool(getattr(request, "enable_hr", False))
    denoising = None
    extra: dict[str, Any] = {}
    if request.kind != "txt2img":  # img2img / inpaint / upscale: A1111's names (#5)
        from .services.edit import edit_infotext_extra

        extra = dict(edit_infotext_extra(request=request))
        denoising = extra.pop("Denoising strength", None)
    elif enable_hr:
        denoising = request.hr_denoising_strength
        width, height = request.width, request.height
    return build_infotext(
        prompt=prompt, negative_prompt=request.negative_prompt, steps=request.steps,
        sampler=getattr(request, "sampler", "") or info.get("sampler") or "Default",
        scheduler=getattr(request, "scheduler", "") or info.get("scheduler") or "Automatic",
        cfg_scale=request.guidance_scale, seed=seed, width=width, height=height,
        model_hash=info.get("model_hash") or model_hash, model=model,
        vae_hash=vae_hash, vae=vae, denoising_strength=denoising,
        clip_skip=getattr(request, "clip_skip", 1) or 1,
        hires_upscale=request.hr_scale if enable_hr else None,
        hires_steps=request.hr_second_pass_steps if enable_hr else None,
        hires_upscaler=(request.hr_upscaler or "Latent") if enable_hr else "",
        lora_hashes=[(lora_tag_name(e), e.get("short_hash", "")) for e in ordered],
        ti_hashes=info.get("ti_hashes") or (), version=atelier_version(), extra=extra,
    )
