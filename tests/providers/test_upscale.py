"""The local Lanczos + unsharp-mask upscaler and the fake provider's edit/upscale (Pillow only)."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from providers.base import EditSpec, ModelSpec, NullSink, ProviderError, UpscaleSpec
from providers.fake import FakeProvider
from providers.upscale import LANCZOS, lanczos_upscale, local_upscale


class Steps:
    def __init__(self):
        self.steps = []

    def step(self, step, total_steps, message=""):
        self.steps.append((step, total_steps))

    def should_cancel(self):
        return False


def checker(size=32, cell=4):
    """A black/white checkerboard: sharp edges everywhere, so blur and sharpening show."""
    yy, xx = np.mgrid[0:size, 0:size]
    return Image.fromarray((((yy // cell + xx // cell) % 2) * 255).astype(np.uint8), "L").convert(
        "RGB")


@pytest.mark.parametrize("factor", [2, 4])
def test_local_upscale_size_and_sharpening(factor):
    src = checker()
    sink = Steps()
    out = local_upscale(UpscaleSpec(image=src, factor=factor, upscaler=LANCZOS), sink)
    assert out.image.size == (32 * factor, 32 * factor)
    assert out.image.mode == "RGB"
    assert out.info == {"upscaler": "Lanczos", "factor": factor}
    assert sink.steps == [(1, 1)]
    plain = np.asarray(src.resize(out.image.size, Image.Resampling.LANCZOS), dtype=int)
    sharp = np.asarray(out.image, dtype=int)
    # The unsharp mask raises local contrast: more energy in the edges than plain Lanczos.
    edges = lambda a: np.abs(np.diff(a, axis=1)).sum()  # noqa: E731
    assert edges(sharp) > edges(plain) * 1.02
    # ...and the picture is still the source: cell centres keep their colour.
    c = 2 * factor  # centre of the first 4x4 cell, scaled
    assert max(sharp[c, c]) < 40 and min(sharp[c, c + 4 * factor]) > 215


def test_lanczos_keeps_alpha_and_converts_palette():
    rgba = Image.new("RGBA", (10, 6), (200, 10, 10, 128))
    out = lanczos_upscale(rgba, 2)
    assert out.mode == "RGBA" and out.size == (20, 12)
    assert out.getpixel((5, 5))[3] == 128
    pal = Image.new("P", (4, 4), 3)
    assert lanczos_upscale(pal, 4).mode == "RGB"


def test_bad_factor_is_refused():
    with pytest.raises(ProviderError) as err:
        local_upscale(UpscaleSpec(image=checker(), factor=3), NullSink())
    assert err.value.code == "invalid_request"
    with pytest.raises(ProviderError):
        lanczos_upscale(checker(), 0)


# ----------------------------------------------------------------------------- fake provider
MODEL = ModelSpec(pipeline_type="fake", model="fake")


def test_fake_img2img_blends_by_strength():
    src = Image.new("RGB", (32, 24), (10, 200, 30))
    fake = FakeProvider()
    keep = fake.edit(EditSpec(model=MODEL, prompt="p", width=32, height=24, steps=4, seed=3,
                              init_image=src, strength=0.01), NullSink())[0]
    full = fake.edit(EditSpec(model=MODEL, prompt="p", width=32, height=24, steps=4, seed=3,
                              init_image=src, strength=1.0), NullSink())[0]
    near = np.abs(np.asarray(keep.image, dtype=int) - np.asarray(src, dtype=int)).max()
    far = np.abs(np.asarray(full.image, dtype=int) - np.asarray(src, dtype=int)).max()
    assert near <= 3 < far
    assert keep.info["kind"] == "img2img" and keep.seed == 3


def test_fake_inpaint_only_changes_white_mask_pixels():
    src = Image.new("RGB", (16, 16), (0, 0, 0))
    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (8, 0, 16, 16))  # right half
    out = FakeProvider().edit(EditSpec(model=MODEL, prompt="paint", width=16, height=16,
                                       steps=2, init_image=src, mask=mask, strength=1.0),
                              NullSink())[0]
    px = np.asarray(out.image)
    assert (px[:, :8] == 0).all()
    assert px[:, 8:].any()
    assert out.info["kind"] == "inpaint"


def test_fake_upscale_is_nearest_neighbour():
    src = checker(8, 2)
    out = FakeProvider().upscale(UpscaleSpec(image=src, factor=2, upscaler="x"), NullSink())
    assert out.image.size == (16, 16)
    assert out.info == {"upscaler": "x", "factor": 2}
    assert set(np.unique(np.asarray(out.image))) == {0, 255}  # no interpolated greys


def test_sharpening_is_pillows_unsharp_mask():
    """The constants are applied exactly as PIL.ImageFilter.UnsharpMask does."""
    from providers.upscale import SHARPEN

    src = checker(16, 2)
    expected = src.resize((32, 32), Image.Resampling.LANCZOS).filter(
        ImageFilter.UnsharpMask(**SHARPEN))
    assert np.array_equal(np.asarray(lanczos_upscale(src, 2)), np.asarray(expected))
