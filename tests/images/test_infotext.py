"""The A1111 infotext writer and reader (images/infotext.py; format: docs/infotext.md)."""

import hashlib
import os

import pytest
from packaging.version import InvalidVersion
from packaging.version import parse as version_parse

from images.infotext import (
    atelier_version,
    build_infotext,
    file_sha256,
    hash_list_parse,
    lora_tag_name,
    lora_tags_parse,
    model_name_and_hash,
    parse_infotext,
    prompt_with_lora_tags,
    quote,
    request_params_from_infotext,
    sampler_split,
    unquote,
)


def _lora(lora_id, name, weight=1.0, *, alias="", te_weight=None, short="0123456789ab",
          sha256=None):
    entry = {"lora_id": lora_id, "name": name, "weight": weight, "short_hash": short,
             "sha256": sha256 or hashlib.sha256(name.encode()).hexdigest()}
    if alias:
        entry["alias"] = alias
    if te_weight is not None:
        entry["te_weight"] = te_weight
    return entry


# ----------------------------------------------------------------------------- quoting
@pytest.mark.parametrize("value,expected", [
    ("Euler a", "Euler a"),
    ("a: 1", '"a: 1"'),
    ("x, y", '"x, y"'),
    ("two\nlines", '"two\\nlines"'),
    ('say "hi"', 'say "hi"'),  # A1111 quotes only for , : and newlines
    ("ü: 1", '"ü: 1"'),  # ensure_ascii=False
])
def test_quote_as_a1111(value, expected):
    assert quote(value) == expected
    assert unquote(quote(value)) == value


def test_unquote_leaves_text_that_is_not_json():
    assert unquote('"broken') == '"broken'
    assert unquote('"a\\q"') == '"a\\q"'  # invalid JSON escape: as is


# ----------------------------------------------------------------------------- writing
def test_fields_in_create_infotext_order_and_defaults_left_out():
    text = build_infotext(
        prompt="a cat", negative_prompt="blurry", steps=20, sampler="DPM++ 2M",
        scheduler="Karras", cfg_scale=7.0, seed=42, width=512, height=768,
        model_hash="6ce0161689", model="v1-5-pruned-emaonly", vae_hash="735e4c3a44",
        vae="vae-ft-mse.safetensors", denoising_strength=0.7, clip_skip=2, hires_upscale=2.0,
        hires_steps=10, hires_upscaler="Latent",
        lora_hashes=[("add_detail", "7c6bad76eb54")], ti_hashes=[("EasyNegative", "c74b4e810b03")],
        version="Atelier 0.1.0")
    assert text.split("\n") == [
        "a cat", "Negative prompt: blurry",
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, "
        "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
        "VAE hash: 735e4c3a44, VAE: vae-ft-mse.safetensors, Denoising strength: 0.7, "
        "Clip skip: 2, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, "
        'Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "EasyNegative: c74b4e810b03", '
        "Version: Atelier 0.1.0"]


def test_optional_fields_are_left_out():
    text = build_infotext(prompt="p", steps=4, sampler="Euler", cfg_scale=5.5, seed=1,
                          width=64, height=64, clip_skip=1, hires_upscale=1.5, hires_steps=0)
    assert text == ("p\nSteps: 4, Sampler: Euler, CFG scale: 5.5, Seed: 1, Size: 64x64, "
                    "Hires upscale: 1.5")


def test_model_name_loses_commas_and_lora_hash_names_lose_colons_and_commas():
    text = build_infotext(prompt="p", steps=4, sampler="Euler", cfg_scale=5, seed=1,
                          width=64, height=64, model="Demo (tiny SD, random): v2",
                          lora_hashes=[("odd: name, v1", "0123456789ab")])
    line = text.split("\n")[-1]
    assert "Model: Demo (tiny SD random) v2," in line
    assert 'Lora hashes: "odd name v1: 0123456789ab"' in line


def test_extra_fields_keep_a_standard_slot_or_come_before_version():
    text = build_infotext(prompt="p", steps=4, sampler="Euler", cfg_scale=5, seed=1,
                          width=64, height=64, version="Atelier 1",
                          extra={"Postprocess upscaler": "Lanczos", "Seed": 9})
    assert text.endswith("Seed: 9, Size: 64x64, Postprocess upscaler: Lanczos, "
                         "Version: Atelier 1")


def test_version_is_never_read_as_an_old_a1111_version():
    # A1111 (modules/infotext_versions.py) turns on compatibility options for versions it can
    # parse that are older than 1.6-1.8; ours must not parse at all.
    assert atelier_version().startswith("Atelier")
    with pytest.raises(InvalidVersion):
        version_parse(atelier_version())


# ----------------------------------------------------------------------------- reading
def test_parse_multiline_prompts_and_quoted_values():
    text = ("line one,\n  line two  \nNegative prompt: bad,\nworse\n"
            'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x768, '
            'Lora hashes: "a: 0123456789ab, b: ba9876543210", Note: "say \\"hi\\", ok"')
    info = parse_infotext(text)
    assert info.prompt == "line one,\nline two"
    assert info.negative_prompt == "bad,\nworse"
    assert info.params["Sampler"] == "Euler a"
    assert info.params["Lora hashes"] == "a: 0123456789ab, b: ba9876543210"
    assert info.params["Note"] == 'say "hi", ok'
    assert info.size() == (512, 768)
    assert hash_list_parse(info.params["Lora hashes"]) == [("a", "0123456789ab"),
                                                           ("b", "ba9876543210")]


def test_a_last_line_with_fewer_than_three_items_is_prompt():
    info = parse_infotext("a cat\nstyle: ink, mood: calm")
    assert info.prompt == "a cat\nstyle: ink, mood: calm"
    assert info.params == {}


def test_old_sampler_names_carry_the_schedule():
    assert sampler_split("DPM++ 2M Karras") == ("DPM++ 2M", "Karras")
    assert sampler_split("DPM++ 2M SDE Exponential") == ("DPM++ 2M SDE", "Exponential")
    assert sampler_split("Euler a") == ("Euler a", "")
    assert sampler_split("DPM++ 2M Karras", "Karras") == ("DPM++ 2M Karras", "Karras")
    params = request_params_from_infotext(parse_infotext(
        "x\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly"))
    assert (params["sampler"], params["scheduler"], params["clip_skip"]) == \
        ("DPM++ 2M", "Karras", 1)
    assert params["enable_hr"] is False and params["hr_scale"] is None


def test_request_params_from_a_hires_infotext():
    params = request_params_from_infotext(parse_infotext(
        "a <lora:add_detail:0.5> b <lora:xl_art:0.6:0.9> c <lora:named:te=0.2:unet=0.4>\n"
        "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, Seed: 12, "
        "Size: 512x768, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 1.5, "
        'Hires steps: 15, Hires upscaler: Latent, Lora hashes: "add_detail: 7c6bad76eb54"'))
    assert params["scheduler"] == "" and params["cfg_scale"] == 7.5
    assert (params["width"], params["height"], params["clip_skip"]) == (512, 768, 2)
    assert (params["enable_hr"], params["hr_scale"], params["hr_second_pass_steps"],
            params["hr_upscaler"], params["denoising_strength"]) == (True, 1.5, 15, "Latent",
                                                                      0.45)
    assert params["loras"] == [
        {"name": "add_detail", "weight": 0.5, "te_weight": None, "hash": "7c6bad76eb54"},
        {"name": "xl_art", "weight": 0.9, "te_weight": 0.6, "hash": None},
        {"name": "named", "weight": 0.4, "te_weight": 0.2, "hash": None}]


def test_lora_tags_parse_leaves_bad_weights_none():
    assert lora_tags_parse("<lora:x:abc>") == [{"name": "x", "weight": None, "te_weight": None}]
    assert lora_tags_parse("<lyco:y>")[0]["weight"] == 1.0


# ----------------------------------------------------------------------------- LoRA tags
def test_tag_names_are_rewritten_in_place_and_json_loras_appended():
    loras = [_lora(1, "add_detail_v2", 0.5, alias="add_detail"),
             _lora(2, "ink-style", 0.8), _lora(3, "glow", 0.3, te_weight=0.6)]
    sha_prefix = loras[0]["sha256"][:10]
    prompt, ordered = prompt_with_lora_tags(
        f"portrait, <lora:{sha_prefix}:0.5>, smile <lora:2:0.8:0.4>", loras)
    assert prompt == ("portrait, <lora:add_detail:0.5>, smile <lora:ink-style:0.8:0.4> "
                      "<lora:glow:0.6:0.3>")
    assert [e["lora_id"] for e in ordered] == [1, 2, 3]


def test_a_prompt_of_only_json_loras():
    prompt, _ = prompt_with_lora_tags("", [_lora(1, "a", 1.0), _lora(2, "b", 0.25)])
    assert prompt == "<lora:a:1> <lora:b:0.25>"


def test_unknown_tags_stay_as_typed_and_resolve_is_asked():
    asked = []

    def resolve(ref):
        asked.append(ref)
        return 7 if ref == "my alias" else None

    prompt, ordered = prompt_with_lora_tags(
        "x <lora:my alias:0.7> <lora:gone:1>", [_lora(7, "file_stem", 0.7)], resolve=resolve)
    assert prompt == "x <lora:file_stem:0.7> <lora:gone:1>"
    assert asked == ["my alias", "gone"] and ordered[0]["lora_id"] == 7


def test_names_that_would_break_a_tag():
    assert lora_tag_name({"alias": "style: ink", "name": "style_ink"}) == "style_ink"
    assert lora_tag_name({"alias": "", "name": "a:b<c>"}) == "abc"
    assert lora_tag_name({"name": "comma, ok"}) == "comma, ok"
    prompt, _ = prompt_with_lora_tags("", [_lora(1, "a:b", 1, alias="c:d")])
    text = build_infotext(prompt=prompt, steps=1, sampler="Euler", cfg_scale=1, seed=1,
                          width=8, height=8)
    # Both names hold ':': the alias (the name A1111 shows) without it, read back whole.
    tags = lora_tags_parse(parse_infotext(text).prompt)
    assert tags == [{"name": "cd", "weight": 1.0, "te_weight": None}]


# ----------------------------------------------------------------------------- files
def test_file_sha256_is_cached_per_path_size_and_mtime(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"A" * 4096)
    first = file_sha256(str(path))
    assert first == hashlib.sha256(b"A" * 4096).hexdigest()
    stat = os.stat(path)
    # Same size and mtime: the cached digest is answered without reading the file again.
    path.write_bytes(b"B" * 4096)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_sha256(str(path)) == first
    # A new mtime is a new file: read again.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert file_sha256(str(path)) == hashlib.sha256(b"B" * 4096).hexdigest()


def test_file_sha256_without_compute_reads_nothing(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(b"C" * 100)
    assert file_sha256(str(path), compute=False) == ""
    assert file_sha256(str(tmp_path / "missing")) == ""
    assert file_sha256(str(tmp_path)) == ""  # a folder


def test_model_name_and_hash(tmp_path):
    ckpt = tmp_path / "my, model.safetensors"
    ckpt.write_bytes(b"weights")
    assert model_name_and_hash(str(ckpt)) == ("my model",
                                               hashlib.sha256(b"weights").hexdigest()[:10])
    folder = tmp_path / "demo-sd"
    folder.mkdir()
    assert model_name_and_hash(str(folder) + "/") == ("demo-sd", "")
    assert model_name_and_hash("black-forest-labs/FLUX.1-dev") == ("FLUX.1-dev", "")
    assert model_name_and_hash("", "fallback-slug") == ("fallback-slug", "")
