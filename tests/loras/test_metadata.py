"""loras.metadata: header reading (only the header), base model / network / trigger words."""

import json

import pytest

from loras.metadata import (
    META_MAX_BYTES,
    HeaderError,
    base_model_from_metadata,
    header_info,
    header_read,
    metadata_keep,
)
from tests.support.lora_files import (
    CORRUPT,
    EXPECTED_BASE,
    kohya_metadata,
    modelspec_metadata,
    write_corrupt,
    write_lora,
    write_raw_safetensors,
)

ARCHS = ["sd1", "sd2", "sdxl", "flux"]
LAYOUTS = ["kohya", "peft", "diffusers"]


def info_of(path, **kwargs):
    return header_info(header_read(str(path), max_bytes=1 << 20), **kwargs)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_base_model_and_rank_from_tensor_shapes_without_metadata(tmp_path, arch, layout):
    path = write_lora(tmp_path / "x.safetensors", arch=arch, layout=layout, rank=8)
    info = info_of(path)
    assert info.base_model == EXPECTED_BASE[arch]
    assert info.network_rank == 8
    assert info.network_module == {"kohya": "networks.lora", "peft": "peft.lora",
                                   "diffusers": "diffusers.lora"}[layout]
    assert info.network_alpha is None and info.trigger_words == [] and info.metadata == {}


@pytest.mark.parametrize("arch", ARCHS)
def test_kohya_metadata_gives_base_model_network_and_trigger_words(tmp_path, arch):
    # Peft tensors with an SD1 shape would say SD 1.5: the metadata must win.
    path = write_lora(tmp_path / "x.safetensors", arch="sd1", layout="peft", rank=4,
                      metadata=kohya_metadata(arch, rank=16))
    info = info_of(path)
    assert info.base_model == EXPECTED_BASE[arch]
    assert info.network_rank == 16 and info.network_alpha == 8.0
    assert info.network_module == ("networks.lora_flux" if arch == "flux" else "networks.lora")
    assert info.trigger_words == ["mychar", "1girl", "solo", "smile", "outdoors"]
    assert info.metadata["ss_output_name"] == "my_lora"
    assert json.loads(info.metadata["ss_tag_frequency"])["10_mychar"]["hat"] == 3


@pytest.mark.parametrize("arch", ARCHS)
def test_modelspec_architecture_and_trigger_phrase(tmp_path, arch):
    path = write_lora(tmp_path / "x.safetensors", arch="sd1",
                      metadata=modelspec_metadata(arch, trigger="ohwx person, red hat"))
    info = info_of(path)
    assert info.base_model == EXPECTED_BASE[arch]
    assert info.trigger_words == ["ohwx person", "red hat"]
    assert "modelspec.thumbnail" not in info.metadata  # a 50 KB data URL, dropped
    assert info.metadata["modelspec.title"] == "My LoRA"


def test_tag_frequency_sums_folders_and_breaks_ties_by_name(tmp_path):
    meta = {"ss_tag_frequency": json.dumps({"5_a": {"b": 2, " zed ": 5}, "3_b": {"a": 2, "b": 1}})}
    assert info_of(write_lora(tmp_path / "x.safetensors", metadata=meta)).trigger_words == [
        "zed", "b", "a"]


def test_names_follow_civitai_and_unknown_values_pass_through():
    assert base_model_from_metadata({"ss_base_model_version": "sd_v2_768_v"}) == "SD 2.1 768"
    assert base_model_from_metadata({"modelspec.architecture": "flux-1-schnell/lora"}) == \
        "Flux.1 S"
    assert base_model_from_metadata({"ss_base_model_version": "hunyuan-image-2.1"}) == \
        "hunyuan-image-2.1"
    assert base_model_from_metadata({"modelspec.architecture": "qwen-image/lora"}) == "qwen-image"
    assert base_model_from_metadata({"ss_output_name": "x"}) == ""


def test_metadata_is_capped_dropping_the_largest_values(tmp_path):
    meta = {"ss_datasets": "x" * (META_MAX_BYTES + 10), "ss_network_dim": "4",
            "other_tool_key": "dropped: not ss_/modelspec."}
    kept = metadata_keep(meta)
    assert kept == {"ss_network_dim": "4", "_dropped": ["ss_datasets"]}


def test_strings_are_made_safe_for_json_columns(tmp_path):
    header = b'{"__metadata__":{"ss_output_name":"a\\ud800b\\u0000c"}}'
    path = write_raw_safetensors(tmp_path / "x.safetensors", header)
    assert info_of(path).metadata["ss_output_name"] == "a?bc"


@pytest.mark.parametrize("kind", sorted(set(CORRUPT) - {"truncated_data"}))
def test_corrupt_headers_raise_header_error(tmp_path, kind):
    path = write_corrupt(tmp_path / f"{kind}.safetensors", kind)
    with pytest.raises(HeaderError):
        header_read(str(path), max_bytes=1 << 20)


def test_truncated_tensor_data_is_a_problem_not_an_exception(tmp_path):
    path = write_corrupt(tmp_path / "t.safetensors", "truncated_data")
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    info = info_of(path, data_bytes=len(raw) - 8 - n)
    assert info.base_model == "SD 1.5"
    assert "Truncated file" in info.problem


def test_header_cap_comes_from_settings(tmp_path, settings):
    path = write_lora(tmp_path / "x.safetensors", metadata=kohya_metadata("sd1"))
    settings.LORA_HEADER_MAX_BYTES = 100
    with pytest.raises(HeaderError, match="over the 100-byte limit"):
        header_read(str(path))


def test_head_bytes_avoid_a_second_read(tmp_path):
    path = write_lora(tmp_path / "x.safetensors", arch="sdxl")
    head = path.read_bytes()[:1 << 20]
    path.unlink()  # the header comes from ``head`` alone
    assert header_info(header_read(str(path), head=head, max_bytes=1 << 20)).base_model == \
        "SDXL 1.0"


def test_metadata_that_is_not_an_object_is_an_error(tmp_path):
    path = write_raw_safetensors(tmp_path / "x.safetensors", b'{"__metadata__": "nope"}')
    with pytest.raises(HeaderError, match="__metadata__"):
        header_read(str(path), max_bytes=1 << 20)


@pytest.mark.parametrize("arch", ["sd1", "flux"])
def test_alpha_read_from_the_alpha_tensor_with_or_without_head_bytes(tmp_path, arch):
    from loras.metadata import alpha_from_tensors

    path = write_lora(tmp_path / "x.safetensors", arch=arch, rank=8)  # alpha = rank / 2
    header = header_read(str(path), max_bytes=1 << 20)
    assert alpha_from_tensors(header, path=str(path)) == 4.0
    assert alpha_from_tensors(header, path="/nonexistent", head=path.read_bytes()) == 4.0
    peft = write_lora(tmp_path / "p.safetensors", arch=arch, layout="peft")
    assert alpha_from_tensors(header_read(str(peft), max_bytes=1 << 20), path=str(peft)) is None


def test_bf16_and_f32_alpha(tmp_path):
    from loras.metadata import alpha_from_tensors

    for dtype, raw, want in (("BF16", b"\x00\x41", 8.0), ("F32", b"\x00\x00\x80\x3f", 1.0)):
        header = json.dumps({"lora_unet_x.alpha": {"dtype": dtype, "shape": [],
                                                   "data_offsets": [0, len(raw)]}}).encode()
        path = write_raw_safetensors(tmp_path / f"{dtype}.safetensors", header, raw)
        parsed = header_read(str(path), max_bytes=1 << 20)
        assert alpha_from_tensors(parsed, path=str(path)) == want
