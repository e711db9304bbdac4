"""A1111 samplers and schedule types, clip skip, VAE overrides, hires fix and per-component LoRA
weights on the real tiny SD pipeline (diffusers_local, CPU, random weights, no mocks).

The sampler table (providers/samplers.py) is checked against diffusers itself: every option it
sets exists on the class, and every schedule type it refuses for a sampler really has no option
on that class.
"""

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from providers import samplers as sm
from providers.base import GenerationSpec, HiresSpec, LoraSpec, ModelSpec, NullSink, ProviderError
from providers.diffusers_local import DiffusersProvider, clear_pipeline_cache

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class RecordingSink:
    def __init__(self):
        self.steps: list[tuple[int, int]] = []

    def step(self, step, total_steps, message=""):
        self.steps.append((step, total_steps))

    def should_cancel(self):
        return False


@pytest.fixture(scope="module")
def provider():
    clear_pipeline_cache()
    yield DiffusersProvider(device="cpu", num_threads=1)
    clear_pipeline_cache()


@pytest.fixture
def model_dir(demo_assets):
    return str(demo_assets["model"])


def spec(model, *, seed=7, steps=3, options=None, **kw):
    return GenerationSpec(
        model=ModelSpec(pipeline_type="sd", model=str(model), options=options or {}),
        prompt=kw.pop("prompt", "a lighthouse at dusk"), negative_prompt="blurry",
        width=kw.pop("width", 64), height=kw.pop("height", 64), steps=steps,
        guidance_scale=5.0, seed=seed, **kw)


def pixels(provider, s, sink=None):
    out = provider.generate(s, sink or NullSink())
    return np.asarray(out[0].image, dtype=np.int16), out[0]


# ----------------------------------------------------------------------------- the table
def test_every_sampler_option_exists_on_its_diffusers_class():
    import diffusers

    for sampler in sm.SAMPLERS:
        cls = getattr(diffusers, sampler.cls)
        params = inspect.signature(cls.__init__).parameters
        assert set(sampler.options) <= set(params), sampler.label
        for schedule in sm.SCHEDULE_TYPES:
            needs = set(schedule.options)
            if schedule.label in sampler.schedules:
                assert needs <= set(params), (sampler.label, schedule.label)
            else:  # refused only where diffusers really lacks the option
                assert not needs <= set(params), (sampler.label, schedule.label)


def test_names_aliases_and_defaults_as_a1111():
    assert sm.sampler_check("Euler a") == ("Euler a", "Automatic")
    for alias in ("euler_a", "k_euler_a", "k_euler_ancestral", "EULER A"):
        assert sm.sampler_check(alias)[0] == "Euler a"
    for alias in ("dpmpp_2m", "k_dpmpp_2m", "DPM++ 2M"):
        assert sm.sampler_check(alias) == ("DPM++ 2M", "Karras")  # A1111's Automatic for it
    assert sm.sampler_check("DPM++ 2M SDE") == ("DPM++ 2M SDE", "Exponential")
    assert sm.sampler_check("DPM++ 2M", "automatic") == ("DPM++ 2M", "Karras")
    assert sm.sampler_check("dpmpp_2m", "sgm_uniform") == ("DPM++ 2M", "SGM Uniform")
    assert sm.sampler_check("Euler", "SGMUniform") == ("Euler", "SGM Uniform")
    assert sm.sampler_check("Euler", "karras") == ("Euler", "Karras")
    # legacy combined labels
    assert sm.sampler_check("DPM++ 2M Karras") == ("DPM++ 2M", "Karras")
    assert sm.sampler_check("DPM++ 2M SDE Karras") == ("DPM++ 2M SDE", "Karras")
    assert sm.sampler_check("k_lms_karras") == ("LMS", "Karras")
    assert sm.sampler_check("", "") == ("", "")


@pytest.mark.parametrize("name", ["DPM++ 2S a", "k_dpmpp_2s_a", "DPM fast", "DPM adaptive",
                                  "Restart", "DPM++ 3M SDE", "DPM++ 2S a Karras"])
def test_a1111_samplers_diffusers_lacks_are_refused_saying_so(name):
    with pytest.raises(sm.SamplerError) as err:
        sm.sampler_check(name)
    assert "cannot run here" in str(err.value) and "DPM++ 2M" in str(err.value)
    assert err.value.field == "sampler" and "Euler a" in err.value.allowed


def test_unknown_names_and_impossible_combinations():
    with pytest.raises(sm.SamplerError) as err:
        sm.sampler_check("Eulr")
    assert "Unknown sampler 'Eulr'" in str(err.value) and err.value.field == "sampler"
    with pytest.raises(sm.SamplerError) as err:
        sm.sampler_check("Euler", "Karas")
    assert err.value.field == "scheduler" and "Karras" in err.value.allowed
    with pytest.raises(sm.SamplerError) as err:
        sm.sampler_check("Euler", "KL Optimal")
    assert "cannot run here" in str(err.value)
    with pytest.raises(sm.SamplerError) as err:  # diffusers' EulerAncestral has no Karras
        sm.sampler_check("Euler a", "Karras")
    assert err.value.allowed == list(sm.sampler_get("Euler a").schedules)
    with pytest.raises(sm.SamplerError):
        sm.sampler_check("", "Karras")  # a schedule type needs a sampler


def test_scheduler_for_keeps_the_model_config(model_dir):
    import json

    config = json.loads((Path(model_dir) / "scheduler" / "scheduler_config.json").read_text())
    sched, resolved = sm.scheduler_for(config, "dpmpp_2m_sde", "karras", seed=3)
    assert resolved == ("DPM++ 2M SDE", "Karras")
    assert type(sched).__name__ == "DPMSolverMultistepScheduler"
    assert sched.config.algorithm_type == "sde-dpmsolver++" and sched.config.use_karras_sigmas
    assert sched.config.beta_schedule == config["beta_schedule"]
    sde, _ = sm.scheduler_for(config, "DPM++ SDE", seed=11)
    assert type(sde).__name__ == "DPMSolverSDEScheduler" and sde.config.noise_sampler_seed == 11


# ----------------------------------------------------------------------------- on the pipeline
def test_sampler_changes_the_image_and_repeats_exactly(provider, model_dir):
    default, out = pixels(provider, spec(model_dir))
    assert out.info["sampler"] == "Euler" and "scheduler" not in out.info
    seen = {"default": default}
    for name in ("Euler a", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "Heun", "DDIM", "UniPC"):
        first, out = pixels(provider, spec(model_dir, sampler=name))
        again, _ = pixels(provider, spec(model_dir, sampler=name))
        assert np.array_equal(first, again), f"{name} is not repeatable"
        assert out.info["sampler"] == name
        for other, img in seen.items():
            assert not np.array_equal(first, img), f"{name} == {other}"
        seen[name] = first
    # the model's own scheduler again: exactly the first image (no state left behind)
    assert np.array_equal(pixels(provider, spec(model_dir))[0], default)


def test_reused_sde_scheduler_is_reseeded_per_image(provider, model_dir):
    first, _ = pixels(provider, spec(model_dir, sampler="DPM++ SDE", seed=7))
    other, _ = pixels(provider, spec(model_dir, sampler="DPM++ SDE", seed=8))
    again, _ = pixels(provider, spec(model_dir, sampler="DPM++ SDE", seed=7))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_schedule_type_changes_the_image_and_is_recorded(provider, model_dir):
    karras, out = pixels(provider, spec(model_dir, sampler="Euler", scheduler="Karras"))
    assert (out.info["sampler"], out.info["scheduler"]) == ("Euler", "Karras")
    uniform, _ = pixels(provider, spec(model_dir, sampler="Euler", scheduler="Uniform"))
    exponential, out = pixels(provider, spec(model_dir, sampler="k_euler",
                                             scheduler="exponential"))
    assert out.info["scheduler"] == "Exponential"
    assert not np.array_equal(karras, uniform) and not np.array_equal(karras, exponential)
    _, out = pixels(provider, spec(model_dir, sampler="DPM++ 2M"))
    assert (out.info["sampler"], out.info["scheduler"]) == ("DPM++ 2M", "Karras")


def test_unsupported_sampler_is_an_invalid_request(provider, model_dir):
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(model_dir, sampler="DPM++ 2S a"), NullSink())
    assert err.value.code == "invalid_request" and "cannot run" in err.value.message


def test_second_order_samplers_report_every_step_once(provider, model_dir):
    sink = RecordingSink()
    provider.generate(spec(model_dir, sampler="Heun", steps=3), sink)
    total = sink.steps[-1][1]
    assert total == 5  # Heun: 2 model calls per step but the last
    assert sink.steps == [(i, total) for i in range(1, total + 1)]


def test_clip_skip_changes_the_image(provider, model_dir):
    one, _ = pixels(provider, spec(model_dir, clip_skip=1))
    two, out = pixels(provider, spec(model_dir, clip_skip=2))
    assert not np.array_equal(one, two) and out.info["clip_skip"] == 2
    assert np.array_equal(pixels(provider, spec(model_dir))[0], one)
    with pytest.raises(ProviderError) as err:  # the demo text encoder has 5 layers
        provider.generate(spec(model_dir, clip_skip=6), NullSink())
    assert err.value.code == "invalid_request" and "5 layers" in err.value.message


# ----------------------------------------------------------------------------- hires fix
@pytest.mark.parametrize("upscaler", ["Latent", "Latent (nearest-exact)", "Lanczos"])
def test_hires_fix_doubles_the_size_in_one_monotonic_progress(provider, model_dir, upscaler):
    sink = RecordingSink()
    hires = HiresSpec(scale=2.0, upscaler=upscaler, steps=4, denoising_strength=0.5)
    out = provider.generate(spec(model_dir, steps=3, n=2, hires=hires), sink)
    assert [o.image.size for o in out] == [(128, 128), (128, 128)]
    total = 3 + int(4 * 0.5)
    assert sink.steps == [(i, total) for i in range(1, total + 1)]
    plain = provider.generate(spec(model_dir, steps=3, width=128, height=128), NullSink())
    assert not np.array_equal(np.asarray(out[0].image), np.asarray(plain[0].image))
    again = provider.generate(spec(model_dir, steps=3, n=2, hires=hires), NullSink())
    assert np.array_equal(np.asarray(out[1].image), np.asarray(again[1].image))


def test_hires_fix_with_a_second_order_sampler_counts_as_diffusers_runs(provider, model_dir):
    sink = RecordingSink()
    hires = HiresSpec(scale=1.5, upscaler="Latent", steps=0, denoising_strength=0.7)
    out = provider.generate(spec(model_dir, steps=3, sampler="Heun", hires=hires), sink)
    assert out[0].image.size == (96, 96)
    total = sink.steps[-1][1]
    assert sink.steps == [(i, total) for i in range(1, total + 1)]
    assert total == 5 + 3  # Heun: 3 steps -> 5 calls; hires int(3 * 0.7) = 2 steps -> 3 calls


def test_hires_fix_pass_of_no_step_is_refused(provider, model_dir):
    hires = HiresSpec(scale=2.0, steps=1, denoising_strength=0.5)
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(model_dir, hires=hires), NullSink())
    assert err.value.code == "invalid_request" and "no step" in err.value.message


# ----------------------------------------------------------------------------- VAE
def _vae_file(model_dir: Path, path: Path, *, scale: float = 1.0) -> Path:
    """The demo model's VAE as an A1111 VAE file (original layout), weights times ``scale``."""
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    from providers.single_file import vae_to_original

    vae = AutoencoderKL.from_pretrained(str(Path(model_dir) / "vae"), local_files_only=True)
    state = {k: (v * scale if k.startswith("decoder.conv_out") else v)
             for k, v in vae.state_dict().items()}
    original = vae_to_original(state, dict(vae.config))
    save_file({k.removeprefix("first_stage_model."): v.contiguous()
               for k, v in original.items()}, str(path))
    return path


def test_vae_override_file_folder_and_profile_option(provider, model_dir, tmp_path):
    from diffusers import AutoencoderKL

    base, _ = pixels(provider, spec(model_dir))
    same = _vae_file(model_dir, tmp_path / "same.safetensors")
    assert np.array_equal(pixels(provider, spec(model_dir, vae=str(same)))[0], base)
    other = _vae_file(model_dir, tmp_path / "other.safetensors", scale=0.3)
    changed, _ = pixels(provider, spec(model_dir, vae=str(other)))
    assert not np.array_equal(changed, base)
    assert np.array_equal(pixels(provider, spec(model_dir))[0], base)  # back to the model's
    # a diffusers folder, and the profile option
    vae = AutoencoderKL.from_single_file(str(other), config=model_dir, subfolder="vae",
                                         local_files_only=True)
    vae.save_pretrained(str(tmp_path / "other-vae"))
    folder, _ = pixels(provider, spec(model_dir, vae=str(tmp_path / "other-vae")))
    assert np.array_equal(folder, changed)
    by_profile, _ = pixels(provider, spec(model_dir, options={"vae": str(other)}))
    assert np.array_equal(by_profile, changed)
    entry_vaes = provider.cache_info()["pipelines"]
    assert entry_vaes  # still one cached pipeline; the VAEs ride on it
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(model_dir, vae=str(tmp_path / "missing.safetensors")),
                          NullSink())
    assert err.value.code == "vae_not_found"
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(model_dir, vae=str(broken)), NullSink())
    assert err.value.code == "vae_load_failed"
    assert np.array_equal(pixels(provider, spec(model_dir))[0], base)


# ----------------------------------------------------------------------------- LoRA TE/UNet
def build_te_lora(path: Path, *, seed: int = 3) -> Path:
    """A kohya LoRA with UNet (the demo LoRA's) and text-encoder (``lora_te_*``) weights."""
    from safetensors.torch import load_file, save_file

    from providers import demo

    tensors = load_file(str(demo.build_demo_lora(path.with_suffix(".unet.safetensors"),
                                                 seed=seed)))
    gen = torch.Generator().manual_seed(seed)
    for layer in range(5):  # the demo CLIP: 5 layers, width 32
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            key = f"lora_te_text_model_encoder_layers_{layer}_self_attn_{proj}"
            tensors[f"{key}.lora_down.weight"] = (torch.randn(4, 32, generator=gen) / 2).half()
            tensors[f"{key}.lora_up.weight"] = (torch.randn(32, 4, generator=gen) / 2).half()
            tensors[f"{key}.alpha"] = torch.tensor(4.0).half()
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora",
                                            "ss_base_model_version": "sd_v1"})
    return path


def test_text_encoder_and_unet_weights_apart(provider, model_dir, tmp_path):
    import hashlib

    path = build_te_lora(tmp_path / "te.safetensors")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    def lora(weight, te_weight=None):
        return (LoraSpec(path=str(path), sha256=sha, name="te", weight=weight,
                         te_weight=te_weight),)

    plain, _ = pixels(provider, spec(model_dir, loras=lora(0.8)))
    split_same, _ = pixels(provider, spec(model_dir, loras=lora(0.8, 0.8)))
    assert np.array_equal(plain, split_same)  # <lora:x:0.8:0.8> == <lora:x:0.8>
    te_off, _ = pixels(provider, spec(model_dir, loras=lora(1.0, 0.0)))
    te_on, _ = pixels(provider, spec(model_dir, loras=lora(1.0, 1.0)))
    assert not np.array_equal(te_off, te_on)  # same UNet weight, TE weight 0 vs 1
    unet_off, _ = pixels(provider, spec(model_dir, loras=lora(0.0, 1.0)))
    assert not np.array_equal(unet_off, te_on)



def test_unet_only_lora_ignores_a_text_encoder_weight(provider, model_dir, demo_assets):
    path, sha = demo_assets["warm"]
    only = LoraSpec(path=str(path), sha256=sha, name="warm", weight=0.7)
    split = LoraSpec(path=str(path), sha256=sha, name="warm", weight=0.7, te_weight=0.2)
    assert np.array_equal(pixels(provider, spec(model_dir, loras=(only,)))[0],
                          pixels(provider, spec(model_dir, loras=(split,)))[0])


# ----------------------------------------------------------------------------- SDXL
@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    from providers.demo import save_pipeline_folder
    from tests.providers.test_prompt_embeds import build_tiny_sdxl

    return str(save_pipeline_folder(build_tiny_sdxl(), tmp_path_factory.mktemp("xl") / "xl"))


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_sdxl_sampler_and_hires_fix(provider, sdxl_dir, upscaler):
    def xl(**kw):
        return GenerationSpec(model=ModelSpec(pipeline_type="sdxl", model=sdxl_dir),
                              prompt="a (lighthouse:1.3) at dusk", width=64, height=64, steps=3,
                              guidance_scale=5.0, seed=2, **kw)

    euler = provider.generate(xl(), NullSink())[0]
    dpm = provider.generate(xl(sampler="DPM++ 2M"), NullSink())[0]
    assert dpm.info["sampler"] == "DPM++ 2M" and dpm.info["scheduler"] == "Karras"
    assert not np.array_equal(np.asarray(euler.image), np.asarray(dpm.image))
    sink = RecordingSink()
    hires = HiresSpec(scale=2.0, upscaler=upscaler, steps=2, denoising_strength=0.5)
    out = provider.generate(xl(sampler="DPM++ 2M", hires=hires), sink)
    assert out[0].image.size == (128, 128)
    assert sink.steps == [(i, 4) for i in range(1, 5)]  # 3 + int(2 x 0.5)
