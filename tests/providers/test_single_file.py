"""Single-file checkpoints: the tiny demo pipeline saved as ONE .safetensors in the original
SD 1.x (LDM) layout, then loaded back offline by the diffusers_local provider."""

import os

import numpy as np
import pytest
from safetensors import safe_open

from providers.base import GenerationSpec, LoraSpec, ModelSpec, NullSink, ProviderError
from providers.diffusers_local import DiffusersProvider, clear_pipeline_cache

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:peft.tuners.tuners_utils")


@pytest.fixture(scope="module")
def provider():
    clear_pipeline_cache()
    yield DiffusersProvider(device="cpu", num_threads=1, max_cached_pipelines=4)
    clear_pipeline_cache()


@pytest.fixture(scope="module")
def checkpoint(demo_assets, tmp_path_factory):
    from providers import demo
    from providers.single_file import save_single_file

    path = tmp_path_factory.mktemp("ckpt") / "tiny-sd.safetensors"
    return save_single_file(demo.build_demo_pipeline(), path)


def spec(model, *, options=None, loras=(), seed=11):
    return GenerationSpec(model=ModelSpec(pipeline_type="sd", model=str(model),
                                          options=options or {}),
                          prompt="a red lighthouse", width=64, height=64, steps=3,
                          guidance_scale=5.0, seed=seed, loras=tuple(loras))


def test_checkpoint_has_the_original_layout(checkpoint):
    with safe_open(str(checkpoint), "pt") as fh:
        keys = set(fh.keys())
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys          # UNet conv_in
    assert "model.diffusion_model.middle_block.1.proj_in.weight" in keys    # mid attention
    assert "model.diffusion_model.out.2.weight" in keys                      # UNet conv_out
    assert "first_stage_model.decoder.up.0.block.0.conv1.weight" in keys     # VAE (reversed)
    assert "first_stage_model.encoder.mid.attn_1.q.weight" in keys
    assert ("cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
            in keys)
    assert not [k for k in keys if "down_blocks" in k or "resnets" in k]     # nothing diffusers
    with safe_open(str(checkpoint), "pt") as fh:  # attention linears became 1x1 convolutions
        assert fh.get_tensor("first_stage_model.encoder.mid.attn_1.q.weight").ndim == 4


def test_single_file_loads_offline_and_matches_the_folder(provider, checkpoint, demo_assets):
    folder = demo_assets["model"]
    from_folder = provider.generate(spec(folder), NullSink())[0]
    from_file = provider.generate(spec(checkpoint, options={"config": str(folder)}),
                                  NullSink())[0]
    # Same weights, same seed: the same picture (the conversion lost nothing).
    assert np.array_equal(np.asarray(from_folder.image), np.asarray(from_file.image))
    assert from_file.info == {"sampler": "Euler", "model": "tiny-sd.safetensors"}
    key = ("sd", os.path.realpath(checkpoint))
    assert key in provider.cache_info()["pipelines"]
    assert provider.cache_info()["bytes"][key] > 1_000_000


def test_lora_on_a_single_file_model(provider, checkpoint, demo_assets):
    path, sha = demo_assets["warm"]
    folder = str(demo_assets["model"])
    base = provider.generate(spec(checkpoint, options={"config": folder}), NullSink())[0]
    warm = LoraSpec(path=str(path), sha256=sha, name="warm", weight=1.0)
    with_lora = provider.generate(spec(checkpoint, options={"config": folder}, loras=[warm]),
                                  NullSink())[0]
    on_folder = provider.generate(spec(folder, loras=[warm]), NullSink())[0]
    assert not np.array_equal(np.asarray(base.image), np.asarray(with_lora.image))
    assert np.array_equal(np.asarray(with_lora.image), np.asarray(on_folder.image))


def test_single_file_errors(provider, checkpoint, demo_assets, tmp_path, monkeypatch):
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"PK\x03\x04 not loaded")
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(pickle), NullSink())
    assert err.value.code == "model_load_failed" and ".ckpt" in err.value.message

    # No "config" option and no config shipped for the type: a clear error, nothing fetched.
    monkeypatch.setattr("providers.diffusers_pipelines.CONFIGS_DIR", tmp_path / "no-configs")
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(checkpoint), NullSink())
    assert err.value.code == "model_load_failed" and "'config'" in err.value.message

    wrong = tmp_path / "xl-config"
    wrong.mkdir()
    (wrong / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(checkpoint, options={"config": str(wrong)}), NullSink())
    assert err.value.code == "unsupported_pipeline"

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}              ")
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(junk, options={"config": str(demo_assets["model"])}), NullSink())
    assert err.value.code == "model_load_failed"
    assert "junk.safetensors" in err.value.message
    assert ("sd", os.path.realpath(junk)) not in provider.cache_info()["pipelines"]


def test_models_lists_checkpoints_by_type(checkpoint, demo_assets, tmp_path, settings):
    import shutil

    settings.MODELS_DIR = tmp_path
    shutil.copy(checkpoint, tmp_path / "tiny-sd.safetensors")
    shutil.copy(demo_assets["warm"][0], tmp_path / "a-lora.safetensors")  # not a checkpoint
    shutil.copytree(demo_assets["model"], tmp_path / "folder-model")
    listed = DiffusersProvider(device="cpu").models()
    assert listed == [
        {"id": str(tmp_path / "folder-model"), "name": "folder-model", "pipeline_type": "sd"},
        {"id": str(tmp_path / "tiny-sd.safetensors"), "name": "tiny-sd.safetensors",
         "pipeline_type": "sd"},
    ]


#: Parameter counts of the published models: SD 1.5 and SDXL base 1.0.
PUBLISHED = {
    "sd": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
             "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("pipeline_type", sorted(PUBLISHED))
def test_shipped_configs_describe_the_published_models(pipeline_type):
    """The configs shipped in the repo build the exact architectures (parameter counts of the
    published weights), on the meta device: no memory, no weights, no hub."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from providers.diffusers_pipelines import CONFIGS_DIR

    folder = CONFIGS_DIR / pipeline_type
    builders = {
        "unet": lambda p: UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(p)),
        "vae": lambda p: AutoencoderKL.from_config(AutoencoderKL.load_config(p)),
        "text_encoder": lambda p: CLIPTextModel(CLIPTextConfig.from_pretrained(p)),
        "text_encoder_2": lambda p: CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(p)),
    }
    counts = {}
    with torch.device("meta"):
        for name in PUBLISHED[pipeline_type]:
            model = builders[name](folder / name)
            counts[name] = sum(p.numel() for p in model.parameters())
    assert counts == PUBLISHED[pipeline_type]


def test_shipped_config_without_tokenizer_is_a_clear_error(provider, checkpoint, tmp_path,
                                                           monkeypatch):
    """The configs are shipped without the CLIP BPE files (see providers/configs/README.md):
    loading a checkpoint with them says which files to add instead of trying a hub."""
    import shutil

    from providers import diffusers_pipelines

    shipped = tmp_path / "configs"
    shutil.copytree(diffusers_pipelines.CONFIGS_DIR, shipped,
                    ignore=shutil.ignore_patterns("vocab.json", "merges.txt"))
    monkeypatch.setattr(diffusers_pipelines, "CONFIGS_DIR", shipped)
    with pytest.raises(ProviderError) as err:
        provider.generate(spec(checkpoint), NullSink())  # no "config": the shipped one
    assert err.value.code == "model_load_failed"
    assert "tokenizer" in err.value.message and str(shipped / "sd") in err.value.message
