"""Round trip of real-world A1111 infotexts (tests/data/infotexts, written from the format A1111
v1.9-v1.10 writes: docs/infotext.md): parse -> parameters -> infotext again.

- pure: the parameters PNG Info answers, written back with ``build_infotext``, give the
  original text byte for byte;
- per request: the parameters stored on a ``GenerationRequest`` (as the generate API stores
  them), written by ``infotext_for_request`` for a local checkpoint file, give the original up
  to the hashes and ``Version`` (Atelier hashes its own files and writes its own version);
- the PNG Atelier writes is read back by sd-parsers (the real package) field by field.
"""

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from images.infotext import (
    build_infotext,
    hash_list_parse,
    infotext_for_request,
    parse_infotext,
    request_params_from_infotext,
)
from images.models import GenerationRequest
from images.pngmeta import png_bytes
from providers.models import ModelProfile

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "infotexts").glob("*.txt"))
HASH_FIELDS = {"Model hash", "VAE hash", "Version"}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_corpus_covers_what_a1111_users_write():
    texts = [_text(p) for p in CORPUS]
    joined = "\n".join(texts)
    assert len(texts) >= 20
    for needle in ("BREAK", "(freckles:1.3)", "\\(hello\\)", "Negative prompt:",
                   "Schedule type: Karras", "Schedule type: Exponential", "Clip skip: 2",
                   "Hires upscale:", "Hires steps:", "Lora hashes:", "VAE hash:",
                   "<lora:pixel-art-xl-v1.1:0.8:0.5>"):
        assert needle in joined, needle
    assert any(len(parse_infotext(t).prompt.split()) > 77 for t in texts)  # > 77 tokens
    assert any("\n" in parse_infotext(t).prompt for t in texts)
    assert any("\n" in parse_infotext(t).negative_prompt for t in texts)


def _rebuild(params: dict, info) -> str:
    """The infotext of PNG Info's parameters (hashes and version passed through)."""
    return build_infotext(
        prompt=params["prompt"], negative_prompt=params["negative_prompt"],
        steps=params["steps"], sampler=params["sampler"],
        scheduler=params["scheduler"] or "Automatic", cfg_scale=params["cfg_scale"],
        seed=params["seed"], width=params["width"], height=params["height"],
        model_hash=params["model_hash"] or "", model=params["model"] or "",
        vae_hash=params["vae_hash"] or "", vae=params["vae"] or "",
        denoising_strength=params["denoising_strength"], clip_skip=params["clip_skip"],
        hires_upscale=params["hr_scale"] if params["enable_hr"] else None,
        hires_steps=params["hr_second_pass_steps"], hires_upscaler=params["hr_upscaler"] or "",
        lora_hashes=[(x["name"], x["hash"]) for x in params["loras"] if x["hash"]],
        ti_hashes=hash_list_parse(info.params.get("TI hashes", "")),
        version=params["version"] or "")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_pure_round_trip_is_byte_for_byte(path):
    text = _text(path)
    info = parse_infotext(text)
    assert _rebuild(request_params_from_infotext(info), info) == text


def _masked(text: str) -> tuple[str, str, list[tuple[str, str]]]:
    """The infotext with hash values and Version blanked, TI hashes dropped (Atelier loads no
    textual inversions), LoRA hash names kept."""
    info = parse_infotext(text)
    items = []
    for key, value in info.params.items():
        if key == "TI hashes":
            continue
        if key in HASH_FIELDS:
            value = "*"
        elif key == "Lora hashes":
            value = ", ".join(name for name, _ in hash_list_parse(value))
        items.append((key, value))
    return info.prompt, info.negative_prompt, items


def _request_for(params: dict, tmp_path: Path) -> GenerationRequest:
    """The request the generate API stores for these parameters, against a checkpoint file
    named as the infotext's model, and the LoRAs in the library under other file names with
    the infotext's names as aliases."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    checkpoint = models / f"{params['model']}.safetensors"
    checkpoint.write_bytes(params["model"].encode() * 64)
    vae = ""
    if params["vae"]:
        vae = str(models / params["vae"])
        Path(vae).write_bytes(b"vae weights")
    profile = ModelProfile(name="Checkpoint, as named in the library", slug="ckpt",
                           provider="diffusers", pipeline_type="sd",
                           model_path=str(checkpoint))
    loras = [{"lora_id": i + 1, "name": f"library_file_{i}", "alias": x["name"],
              "weight": x["weight"], "te_weight": x["te_weight"],
              "sha256": f"{i:064x}", "short_hash": f"{i + 1:012x}"}
             for i, x in enumerate(params["loras"])]
    return GenerationRequest(
        profile=profile, kind="txt2img", prompt=params["prompt"], clean_prompt=params["prompt"],
        negative_prompt=params["negative_prompt"], width=params["width"],
        height=params["height"], steps=params["steps"], guidance_scale=params["cfg_scale"],
        seed=params["seed"], n=1, loras=loras, sampler=params["sampler"],
        scheduler=params["scheduler"], clip_skip=params["clip_skip"], vae=vae,
        enable_hr=params["enable_hr"], hr_scale=params["hr_scale"],
        hr_upscaler=params["hr_upscaler"] or "",
        hr_second_pass_steps=params["hr_second_pass_steps"],
        hr_denoising_strength=params["denoising_strength"])


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_request_round_trip_equals_up_to_hashes_and_version(path, tmp_path):
    text = _text(path)
    params = request_params_from_infotext(parse_infotext(text))
    request = _request_for(params, tmp_path)
    scale = params["hr_scale"] if params["enable_hr"] else 1
    written = infotext_for_request(request, {"sampler": "ignored: the request names one"},
                                   seed=params["seed"], width=int(params["width"] * scale),
                                   height=int(params["height"] * scale))
    assert _masked(written) == _masked(text)
    info = parse_infotext(written)
    assert info.params["Version"].startswith("Atelier")
    assert len(info.params["Model hash"]) == 10  # AutoV2 of the checkpoint file
    for (name, short), lora in zip(hash_list_parse(info.params.get("Lora hashes", "")),
                                   request.loras, strict=True):
        assert (name, short) == (lora["alias"], lora["short_hash"])


def test_sd_parsers_reads_every_field_of_an_atelier_png(tmp_path):
    from sd_parsers import ParserManager

    text = _text(next(p for p in CORPUS if "hires-esrgan" in p.stem))
    params = request_params_from_infotext(parse_infotext(text))
    request = _request_for(params, tmp_path)
    written = infotext_for_request(request, {}, seed=params["seed"], width=768, height=1152)
    data = png_bytes(PILImage.new("RGB", (768, 1152)), parameters=written)
    got = ParserManager().parse(io.BytesIO(data))
    assert got is not None and got.generator.value == "AUTOMATIC1111"
    assert got.full_prompt == params["prompt"]
    assert got.full_negative_prompt == params["negative_prompt"]
    sampler = got.samplers[0]
    assert sampler.name == "Euler a"
    assert sampler.parameters == {"scheduler": "Automatic", "cfg_scale": "8", "seed": "12345",
                                  "steps": "28"}
    model = sampler.model
    assert model.name == "anything-v5-PrtRE" and model.hash == parse_infotext(
        written).params["Model hash"]
    assert got.metadata == {"Size": "512x768", "Denoising strength": "0.45", "Clip skip": "2",
                            "Hires upscale": "1.5", "Hires steps": "15",
                            "Hires upscaler": "R-ESRGAN 4x+ Anime6B",
                            "Version": parse_infotext(written).params["Version"]}
    assert got.raw_parameters["parameters"] == written


def test_sd_parsers_reads_a_model_name_that_had_commas(tmp_path):
    from sd_parsers import ParserManager

    checkpoint = tmp_path / "Demo (tiny SD, random).safetensors"
    checkpoint.write_bytes(b"x")
    profile = ModelProfile(name="Demo", slug="demo", model_path=str(checkpoint))
    request = GenerationRequest(profile=profile, kind="txt2img", prompt="a cat",
                                clean_prompt="a cat", negative_prompt="", width=64, height=64,
                                steps=4, guidance_scale=5.0, seed=3, loras=[])
    written = infotext_for_request(request, {"sampler": "Euler"}, seed=3, width=64, height=64)
    data = png_bytes(PILImage.new("RGB", (64, 64)), parameters=written)
    got = ParserManager().parse(io.BytesIO(data))
    assert got.samplers[0].model.name == "Demo (tiny SD random)"
    assert got.samplers[0].name == "Euler"
