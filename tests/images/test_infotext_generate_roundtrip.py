"""The acceptance round trip of issue 13: an A1111 infotext (tests/data/infotexts) read by PNG
Info, sent to ``POST /api/generate/`` as PNG Info answers it, generated on the tiny demo model
(real diffusers, CPU), and the infotext of the PNG written equals the original up to the hashes
and ``Version`` (docs/infotext.md).

CPU time: the corpus asks for 512-1216 pixel images of 6-50 steps, minutes each on a shared
2-core machine even for the tiny model. Each infotext is therefore first made cheaper *as text*
(``Size`` divided down to 64 pixels on the short side, ``Steps`` at most 3; hires steps, scale,
upscaler and denoising strength kept, so the second pass still runs), and that text is the one
that must come back. Everything else (prompts with weights, BREAK and LoRA tags, sampler,
schedule type, CFG scale, seed, clip skip, VAE, hires fields, LoRA names) goes through as is.

The library holds a demo LoRA under each name the corpus uses, and the VAE folder a VAE file
of each name; the demo model is a single-file checkpoint named as the infotext's model. Left
out, with the reason: a hires upscaler Atelier does not have (``R-ESRGAN 4x+ Anime6B``, an
ESRGAN model A1111 downloads)."""

import io
import os
from pathlib import Path

import pytest
from PIL import Image as PILImage

from images.infotext import (
    generate_body,
    hash_list_parse,
    parse_infotext,
    request_params_from_infotext,
)
from images.models import Image
from images.services import generation_run
from jobs.models import Job
from tests.factories import LibraryRootFactory, LoraFactory, ModelProfileFactory

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "infotexts").glob("*.txt"))
MAX_STEPS = 3
SHORT_SIDE = 64
#: Infotexts naming what Atelier has no equivalent of (see the module docstring).
NOT_REPRODUCIBLE = {"11-hires-esrgan-steps": "hires upscaler R-ESRGAN 4x+ Anime6B"}



def _model_of(path: Path) -> str:
    return parse_infotext(path.read_text(encoding="utf-8")).params["Model"]


# Grouped by checkpoint, so the pipeline cache is reused from one test to the next.
RUNNABLE = sorted((p for p in CORPUS if p.stem not in NOT_REPRODUCIBLE), key=_model_of)


def _cheaper(text: str) -> str:
    """``text`` with a smaller ``Size`` (aspect ratio kept, multiples of 8) and fewer
    ``Steps``, rewritten in place in the parameters line."""
    info = parse_infotext(text)
    width, height = info.size()
    factor = SHORT_SIDE / min(width, height)
    size = f"{round(width * factor / 8) * 8}x{round(height * factor / 8) * 8}"
    steps = min(int(info.params["Steps"]), MAX_STEPS)
    head, last = text.rsplit("\n", 1)
    last = last.replace(f"Size: {info.params['Size']},", f"Size: {size},", 1)
    last = last.replace(f"Steps: {info.params['Steps']},", f"Steps: {steps},", 1)
    return f"{head}\n{last}"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, demo_folder):
    """One single-file checkpoint per checkpoint name of the corpus (``<Model>.safetensors``),
    all the demo model in A1111's layout (hard links of one file)."""
    from providers import demo
    from providers.diffusers_local import clear_pipeline_cache
    from providers.single_file import save_single_file

    root = tmp_path_factory.mktemp("checkpoints")
    first = save_single_file(demo.build_demo_pipeline(), root / "demo.safetensors")
    for name in {_model_of(p) for p in RUNNABLE}:
        os.link(first, root / f"{name}.safetensors")
    yield root
    clear_pipeline_cache()


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from providers import demo

    return demo.build_demo_model(tmp_path_factory.mktemp("rt") / "demo-sd-tiny")


@pytest.fixture(scope="module")
def demo_lora_bytes(tmp_path_factory):
    from providers import demo

    return demo.build_demo_lora(tmp_path_factory.mktemp("rt-lora") / "l.safetensors",
                                seed=3).read_bytes()


def _vae_file(model_dir: Path, path: Path) -> None:
    """The demo model's VAE written as an A1111 VAE file (original key layout)."""
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    from providers.single_file import vae_to_original

    vae = AutoencoderKL.from_pretrained(str(model_dir / "vae"), local_files_only=True)
    original = vae_to_original(vae.state_dict(), dict(vae.config))
    save_file({k.removeprefix("first_stage_model."): v.contiguous()
               for k, v in original.items()}, str(path))


def _masked(text: str):
    """Prompts and parameters with the hash values and Version blanked (Atelier hashes its
    own files), TI hashes dropped (no textual inversion is loaded)."""
    info = parse_infotext(text)
    items = []
    for key, value in info.params.items():
        if key == "TI hashes":
            continue
        if key in ("Model hash", "VAE hash", "Version"):
            value = "*"
        elif key == "Lora hashes":
            value = ", ".join(name for name, _ in hash_list_parse(value))
        items.append((key, value))
    return info.prompt, info.negative_prompt, items


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.stem)
def test_generate_writes_the_infotext_it_was_given(
        path, api_client, settings, tmp_path, demo_folder, models_dir, demo_lora_bytes,
        django_capture_on_commit_callbacks):
    text = _cheaper(path.read_text(encoding="utf-8"))
    params = request_params_from_infotext(parse_infotext(text))
    # The checkpoint, a single file named as the infotext names it (its config: the demo's).
    ModelProfileFactory(slug="rt", provider="diffusers_local", pipeline_type="sd",
                        model_path=str(models_dir / f"{params['model']}.safetensors"),
                        options={"config": str(demo_folder)}, max_width=2048,
                        max_height=2048, is_default=False)
    settings.REQUEST_MAX_PIXELS = 4 * 1024 * 1024
    body = generate_body(params, model="rt")
    if params["vae"]:
        settings.VAE_DIR = str(tmp_path / "VAE")
        Path(settings.VAE_DIR).mkdir()
        _vae_file(demo_folder, Path(settings.VAE_DIR) / params["vae"])
        body["vae"] = params["vae"]
    root = LibraryRootFactory(path=str(tmp_path / "loras"))
    for lora in params["loras"]:
        LoraFactory(root=root, name=lora["name"], content=demo_lora_bytes)

    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post("/api/generate/", body, format="json")
    assert response.status_code == 202, response.content
    job = generation_run(request_id=response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    image = Image.objects.get(request_id=response.json()["id"])
    written = PILImage.open(io.BytesIO(image.file.read())).text["parameters"]
    assert written == image.parameters
    assert _masked(written) == _masked(text)
    assert len(parse_infotext(written).params["Model hash"]) == 10  # AutoV2 of the file
    scale = params["hr_scale"] if params["enable_hr"] else 1
    assert (image.width, image.height) == (int(params["width"] * scale),
                                           int(params["height"] * scale))
    # PNG Info on the PNG Atelier wrote: the same request again, every resource in the library
    # (the checkpoint by the AutoV2 hashed while writing, the LoRAs by their short hash).
    image.file.seek(0)
    info = api_client.post("/api/png-info/", {"image": image.file}, format="multipart").json()
    assert info["generator"] == "AUTOMATIC1111"
    assert info["resources"]["model"]["found"] and info["resources"]["model"]["profile"] == "rt"
    assert all(x["found"] for x in info["resources"]["loras"])
    assert {k: v for k, v in info["request"].items() if k != "prompt"} == \
        {k: v for k, v in body.items() if k != "prompt"}


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_applied_lora_is_a_tag_under_the_name_a1111_resolves(
        api_client, tmp_path, demo_folder, models_dir, demo_lora_bytes,
        django_capture_on_commit_callbacks):
    """A tag typed as a library id and a LoRA sent in the JSON ``loras`` field by its
    ``ss_output_name`` alias (with a separate text-encoder weight) both come back as tags A1111
    resolves, with their ``Lora hashes``."""
    ModelProfileFactory(slug="rt", provider="diffusers_local", pipeline_type="sd",
                        model_path=str(models_dir / "v1-5-pruned-emaonly.safetensors"),
                        options={"config": str(demo_folder)}, is_default=False)
    root = LibraryRootFactory(path=str(tmp_path / "loras"))
    by_id = LoraFactory(root=root, name="ink_style_v3", content=demo_lora_bytes)
    aliased = LoraFactory(root=root, name="detail_tweaker_v1", content=demo_lora_bytes,
                          header_metadata={"ss_output_name": "add_detail"})
    body = {"model": "rt", "prompt": f"a lighthouse <lora:{by_id.pk}:0.6>, night",
            "steps": 2, "width": 64, "height": 64, "seed": 5,
            "loras": [{"lora": "add_detail", "weight": 0.8, "te_weight": 0.4}]}
    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post("/api/generate/", body, format="json")
    assert response.status_code == 202, response.content
    job = generation_run(request_id=response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    info = parse_infotext(Image.objects.get(request_id=response.json()["id"]).parameters)
    assert info.prompt == "a lighthouse <lora:ink_style_v3:0.6>, night <lora:add_detail:0.4:0.8>"
    by_id.refresh_from_db()
    aliased.refresh_from_db()
    assert hash_list_parse(info.params["Lora hashes"]) == [
        ("ink_style_v3", by_id.short_hash), ("add_detail", aliased.short_hash)]
