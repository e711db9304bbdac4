"""img2img, inpaint, previews and the memory-bounded cache of diffusers_local, on the real tiny
SD pipeline (random weights, CPU, no hub, no mocks)."""

import base64
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from providers.base import (
    EditSpec,
    GenerationCancelled,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    NullSink,
    ProviderError,
)
from providers.diffusers_local import DiffusersProvider, clear_pipeline_cache

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:peft.tuners.tuners_utils")


class Sink:
    def __init__(self, cancel_after=None):
        self.steps, self.previews, self.cancel_after = [], [], cancel_after

    def step(self, step, total_steps, message=""):
        self.steps.append((step, total_steps))

    def preview(self, data_url):
        self.previews.append((len(self.steps), data_url))

    def should_cancel(self):
        return self.cancel_after is not None and len(self.steps) >= self.cancel_after


@pytest.fixture(scope="module")
def provider():
    clear_pipeline_cache()
    yield DiffusersProvider(device="cpu", num_threads=1)
    clear_pipeline_cache()


@pytest.fixture
def model_dir(demo_assets):
    return str(demo_assets["model"])


def source(size=(64, 64)):
    """A picture with structure: a vertical colour gradient and a white square."""
    h = np.linspace(0, 255, size[1], dtype=np.uint8)[:, None]
    rgb = np.stack([np.repeat(h, size[0], 1), np.full((size[1], size[0]), 90, np.uint8),
                    np.repeat(255 - h, size[0], 1)], axis=-1)
    img = Image.fromarray(rgb, "RGB")
    img.paste((255, 255, 255), (16, 16, 40, 40))
    return img


def edit(model_dir, *, strength=0.6, steps=8, seed=3, mask=None, init=None, loras=(), **kw):
    return EditSpec(model=ModelSpec(pipeline_type=kw.pop("pipeline_type", "sd"), model=model_dir),
                    prompt="a stormy sea", width=kw.pop("width", 64),
                    height=kw.pop("height", 64), steps=steps, guidance_scale=5.0, seed=seed,
                    init_image=init if init is not None else source(), mask=mask,
                    strength=strength, loras=tuple(loras), **kw)


def px(result):
    return np.asarray(result.image, dtype=int)


def test_img2img_shares_the_txt2img_modules_and_counts_strength_steps(provider, model_dir):
    txt = provider.generate(GenerationSpec(model=ModelSpec("sd", model_dir), prompt="a stormy sea",
                                           width=64, height=64, steps=4, seed=3), NullSink())
    pipe = provider.cached_pipeline(model_dir)
    sink = Sink()
    out = provider.edit(edit(model_dir, strength=0.5, steps=8), sink)
    assert len(out) == 1 and out[0].image.size == (64, 64) and out[0].seed == 3
    # int(8 * 0.5) = 4 denoising steps, reported as such.
    assert sink.steps == [(i, 4) for i in range(1, 5)]
    variant = provider.cached_pipeline(model_dir, kind="img2img")
    assert type(variant).__name__ == "StableDiffusionImg2ImgPipeline"
    assert variant.unet is pipe.unet and variant.vae is pipe.vae  # from_pipe: no copy
    provider.edit(edit(model_dir), NullSink())
    assert provider.cached_pipeline(model_dir, kind="img2img") is variant
    assert not np.array_equal(px(out[0]), px(txt[0]))


def test_img2img_is_deterministic_and_follows_source_and_strength(provider, model_dir):
    a = px(provider.edit(edit(model_dir, strength=0.3), NullSink())[0])
    again = px(provider.edit(edit(model_dir, strength=0.3), NullSink())[0])
    other_seed = px(provider.edit(edit(model_dir, strength=0.3, seed=4), NullSink())[0])
    flipped = source().transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    other_src = px(provider.edit(edit(model_dir, strength=0.3, init=flipped), NullSink())[0])
    strong = px(provider.edit(edit(model_dir, strength=1.0), NullSink())[0])
    assert np.array_equal(a, again)
    assert not np.array_equal(a, other_seed)
    assert not np.array_equal(a, other_src)
    assert not np.array_equal(a, strong)


def test_source_size_is_used_when_width_is_zero(provider, model_dir):
    out = provider.edit(edit(model_dir, init=source((70, 50)), width=0, height=0), NullSink())
    assert out[0].image.size == (64, 48)  # rounded down to multiples of 8


def test_inpaint_repaints_the_white_part_of_the_mask(provider, model_dir):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 0, 64, 64))  # right half repainted
    sink = Sink()
    one = px(provider.edit(edit(model_dir, mask=mask, strength=1.0, steps=4, seed=1), sink)[0])
    two = px(provider.edit(edit(model_dir, mask=mask, strength=1.0, steps=4, seed=2),
                           NullSink())[0])
    assert sink.steps[-1] == (4, 4)
    assert type(provider.cached_pipeline(model_dir, kind="inpaint")).__name__ == \
        "StableDiffusionInpaintPipeline"
    # The seed changes the repainted half far more than the kept half (which is the source's
    # latents, up to the VAE decoder's global attention).
    kept = np.abs(one[:, :24] - two[:, :24]).mean()
    painted = np.abs(one[:, 40:] - two[:, 40:]).mean()
    assert painted > 3 * kept, (painted, kept)


def test_lora_applies_to_img2img(provider, model_dir, demo_assets):
    path, sha = demo_assets["warm"]
    warm = LoraSpec(path=str(path), sha256=sha, name="warm")
    base = px(provider.edit(edit(model_dir, strength=0.8), NullSink())[0])
    with_lora = px(provider.edit(edit(model_dir, strength=0.8, loras=[warm]), NullSink())[0])
    base_again = px(provider.edit(edit(model_dir, strength=0.8), NullSink())[0])
    assert not np.array_equal(base, with_lora)
    assert np.array_equal(base, base_again)


def test_cancel_during_img2img(provider, model_dir):
    sink = Sink(cancel_after=1)
    with pytest.raises(GenerationCancelled):
        provider.edit(edit(model_dir, strength=1.0, steps=10), sink)
    assert sink.steps[0] == (1, 10) and len(sink.steps) < 10
    assert len(provider.edit(edit(model_dir, steps=4), NullSink())) == 1  # still usable


def test_edit_errors(provider, model_dir):
    for bad in (0.0, 1.5):
        with pytest.raises(ProviderError) as err:
            provider.edit(edit(model_dir, strength=bad), NullSink())
        assert err.value.code == "invalid_request"
    with pytest.raises(ProviderError) as err:
        provider.edit(EditSpec(model=ModelSpec("sd", model_dir), prompt="x"), NullSink())
    assert err.value.code == "invalid_request"
    with pytest.raises(ProviderError) as err:
        provider.edit(edit(model_dir, pipeline_type="flux"), NullSink())
    assert err.value.code == "unsupported_pipeline"  # the folder holds an SD pipeline


def test_preview_every_k_steps(model_dir):
    clear_pipeline_cache()
    prov = DiffusersProvider(device="cpu", num_threads=1, preview_every=2)
    sink = Sink()
    prov.generate(GenerationSpec(model=ModelSpec("sd", model_dir), prompt="dawn", width=64,
                                 height=64, steps=6, seed=1), sink)
    assert [at for at, _ in sink.previews] == [1, 3]  # after steps 2 and 4; not at the end
    url = sink.previews[0][1]
    assert url.startswith("data:image/webp;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.format == "WEBP" and img.size == (32, 32)  # a pixel per latent (tiny VAE: /2)
    assert len(url) < 3000
    # A profile option overrides the provider option; 0 turns previews off.
    quiet = Sink()
    prov.generate(GenerationSpec(model=ModelSpec("sd", model_dir, options={"preview_every": 0}),
                                 prompt="dawn", width=64, height=64, steps=6, seed=1), quiet)
    assert quiet.previews == [] and len(quiet.steps) == 6
    clear_pipeline_cache()


def test_cache_bounded_by_memory(model_dir, tmp_path):
    clear_pipeline_cache()
    second = tmp_path / "second"
    shutil.copytree(model_dir, second)
    spec = lambda m: GenerationSpec(model=ModelSpec("sd", str(m)), prompt="x", width=64,  # noqa
                                    height=64, steps=1)
    roomy = DiffusersProvider(device="cpu", num_threads=1, max_cached_pipelines=4)
    roomy.generate(spec(model_dir), NullSink())
    one = roomy.cache_info()["bytes"][("sd", os.path.realpath(model_dir))]
    assert one > 1_000_000
    # Room for one pipeline and a half: loading the second evicts the first.
    tight = DiffusersProvider(device="cpu", num_threads=1, max_cached_pipelines=4,
                              max_cache_bytes=int(one * 1.5))
    tight.generate(spec(second), NullSink())
    assert tight.cache_info()["pipelines"] == [("sd", os.path.realpath(second))]
    # Room for both: nothing is evicted.
    clear_pipeline_cache()
    both = DiffusersProvider(device="cpu", num_threads=1, max_cached_pipelines=4,
                             max_cache_bytes=one * 3)
    both.generate(spec(model_dir), NullSink())
    both.generate(spec(second), NullSink())
    assert len(both.cache_info()["pipelines"]) == 2
    clear_pipeline_cache()
