import io

import pytest
from PIL import Image as PILImage

from images.pngmeta import build_infotext, png_bytes, thumbnail_bytes
from images.prompt import PromptLora, PromptSyntaxError, parse_prompt_loras


def test_lora_tags_are_removed_and_parsed():
    text, loras = parse_prompt_loras("a cat <lora:ink-style:0.8>, night <lora:glow>")
    assert text == "a cat, night"
    assert loras == [PromptLora("ink-style", 0.8), PromptLora("glow", 1.0)]


def test_extended_and_lyco_forms_keep_both_weights():
    # A1111: <lora:NAME:TE:UNET>; the second weight is the UNet's (it was dropped before).
    text, loras = parse_prompt_loras("<lyco:foo:0.5:0.7> portrait <lora:bar:te=0.3:unet=1>")
    assert text == "portrait"
    assert loras == [PromptLora("foo", 0.7, te_weight=0.5), PromptLora("bar", 1.0, te_weight=0.3)]


def test_bad_weight_is_a_clear_error():
    with pytest.raises(PromptSyntaxError, match="abc"):
        parse_prompt_loras("x <lora:foo:abc>")


def test_infotext_follows_a1111_layout():
    text = build_infotext(prompt="a cat <lora:ink:0.8>", negative_prompt="blurry", steps=4,
                          sampler="Euler", cfg_scale=5.0, seed=42, width=64, height=96,
                          model="Demo", lora_hashes=[("ink", "0123456789ab")])
    lines = text.split("\n")
    assert lines[0] == "a cat <lora:ink:0.8>"
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2] == ('Steps: 4, Sampler: Euler, CFG scale: 5.0, Seed: 42, Size: 64x96, '
                        'Model: Demo, Lora hashes: "ink: 0123456789ab"')


def test_png_carries_parameters_and_thumbnail_is_webp_bounded():
    img = PILImage.new("RGB", (640, 320), (10, 20, 30))
    data = png_bytes(img, parameters="hello\nSteps: 1")
    assert PILImage.open(io.BytesIO(data)).text["parameters"] == "hello\nSteps: 1"
    thumb = PILImage.open(io.BytesIO(thumbnail_bytes(img, size=256)))
    assert thumb.format == "WEBP" and thumb.size == (256, 128)
