"""Library checkpoints (docs/checkpoints.md): a file dropped into CHECKPOINT_ROOTS becomes a model
profile that POST /api/generate/ runs by its stem, with no admin step; pickles are listed
disabled; a vanished file disables its profile; a hand edit is never overwritten."""

import io
import json
import struct

import pytest
from django.core.management import call_command

from images.models import Image
from images.services import generation_run
from jobs.models import Job
from providers.checkpoints import UNSAFE_NOTE, checkpoints_sync, detect_file
from providers.models import ModelProfile
from tests.factories import UserFactory

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def checkpoint_bytes(demo_assets, tmp_path_factory):
    """The tiny demo pipeline as one .safetensors in the original SD 1.x layout."""
    from providers import demo
    from providers.single_file import save_single_file

    path = tmp_path_factory.mktemp("ckpt") / "x.safetensors"
    return save_single_file(demo.build_demo_pipeline(), path).read_bytes()


@pytest.fixture
def roots(settings, tmp_path, demo_assets):
    root = tmp_path / "Stable-diffusion"
    root.mkdir()
    settings.CHECKPOINT_ROOTS = [str(root)]
    settings.DEMO_MODEL_DIR = demo_assets["model"]  # the config folder of the demo's shapes
    return root


@pytest.fixture
def staff_client(db):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    staff = UserFactory(username="staffer", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=staff)[0].key}")
    return client


def _header_file(path, shapes: dict) -> None:
    """A .safetensors file with zero-filled float16 tensors of ``shapes`` (header + data)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


@pytest.mark.django_db
def test_a_dropped_checkpoint_generates_by_its_stem(
        roots, checkpoint_bytes, staff_client, api_client, demo_assets,
        django_capture_on_commit_callbacks):
    (roots / "tiny-sd.safetensors").write_bytes(checkpoint_bytes)
    (roots / "old-model.ckpt").write_bytes(b"\x80\x04not really a pickle")

    answer = staff_client.post("/api/model-profiles/sync/")
    assert answer.status_code == 200, answer.content
    assert sorted(answer.json()["created"]) == ["old-model", "tiny-sd"]

    profile = ModelProfile.objects.get(slug="tiny-sd")
    assert (profile.name, profile.source, profile.provider, profile.pipeline_type) == (
        "tiny-sd", "library", "diffusers_local", "sd")
    assert (profile.default_width, profile.default_steps, profile.default_guidance_scale) == (
        512, 25, 7.0)
    assert profile.enabled and profile.options == {"config": str(demo_assets["model"])}
    pickle = ModelProfile.objects.get(slug="old-model")
    assert not pickle.enabled and pickle.note == UNSAFE_NOTE.format(suffix=".ckpt")

    body = api_client.get("/api/model-profiles/").json()
    listed = {p["slug"]: p for p in (body["results"] if isinstance(body, dict) else body)}
    assert listed["tiny-sd"]["source"] == "library"
    assert "unsafe format" in listed["old-model"]["note"].lower()

    # The generate page lists it (by name, with its defaults); not the pickle.
    from django.test import Client

    page = Client()
    page.force_login(UserFactory(username="painter"))
    html = page.get("/").content.decode()
    assert '<option value="tiny-sd"' in html and 'data-width="512"' in html
    assert 'value="old-model"' not in html

    with django_capture_on_commit_callbacks(execute=False):
        response = api_client.post("/api/generate/", {
            "prompt": "a red lighthouse", "model": "tiny-sd", "width": 64, "height": 64,
            "steps": 2, "seed": 5}, format="json")
    assert response.status_code == 202, response.content
    job = generation_run(request_id=response.json()["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    image = Image.objects.get(request_id=response.json()["id"])
    assert (image.width, image.height, image.model_name) == (64, 64, "tiny-sd")

    # The pickle cannot be asked for.
    refused = api_client.post("/api/generate/", {"prompt": "x", "model": "old-model"},
                              format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "unknown_model"


@pytest.mark.django_db
def test_vanished_files_disable_and_hand_edits_stay(roots, checkpoint_bytes, staff_client):
    (roots / "keep.safetensors").write_bytes(checkpoint_bytes)
    (roots / "edited.safetensors").write_bytes(checkpoint_bytes)
    out = io.StringIO()
    call_command("sync_checkpoints", stdout=out)
    assert "2 new" in out.getvalue()
    assert checkpoints_sync()["unchanged"] == 2  # idempotent

    edit = staff_client.patch("/api/model-profiles/edited/",
                              {"default_steps": 7, "default_width": 256}, format="json")
    assert edit.status_code == 200, edit.content
    (roots / "keep.safetensors").unlink()
    (roots / "edited.safetensors").unlink()
    result = checkpoints_sync()
    assert result["disabled"] == ["keep"]
    kept = ModelProfile.objects.get(slug="keep")
    assert not kept.enabled and "gone" in kept.note
    edited = ModelProfile.objects.get(slug="edited")
    assert (edited.source, edited.enabled, edited.default_steps, edited.default_width) == (
        "manual", True, 7, 256)

    # The file comes back: the library profile is enabled again; the edited one still wins
    # (no second profile for its file).
    (roots / "keep.safetensors").write_bytes(checkpoint_bytes)
    (roots / "edited.safetensors").write_bytes(checkpoint_bytes)
    result = checkpoints_sync()
    assert result["updated"] == ["keep"] and result["created"] == []
    assert ModelProfile.objects.get(slug="keep").enabled
    assert result["skipped"] == [str(roots.resolve() / "edited.safetensors")]
    assert ModelProfile.objects.filter(name="edited").count() == 1


@pytest.mark.django_db
def test_sync_needs_a_library_manager(roots, api_client):
    answer = api_client.post("/api/model-profiles/sync/")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"


@pytest.mark.django_db
def test_architectures_from_tensor_names(roots, tmp_path):
    sdxl = tmp_path / "xl.safetensors"
    _header_file(sdxl, {
        "model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3],
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight":
            [8, 768],
        "conditioner.embedders.1.model.token_embedding.weight": [8, 1280]})
    sd2 = tmp_path / "v2.safetensors"
    _header_file(sd2, {"model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3],
                       "cond_stage_model.model.token_embedding.weight": [8, 1024]})
    flux = tmp_path / "flux.safetensors"
    _header_file(flux, {"double_blocks.0.img_attn.norm.key_norm.scale": [2]})
    sd3 = tmp_path / "sd3.safetensors"
    _header_file(sd3, {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": [2, 2]})
    lora = tmp_path / "lora.safetensors"
    _header_file(lora, {"lora_unet_down_blocks_0.lora_up.weight": [2, 2]})
    got = {p.stem: (d.arch, d.text_widths) for p in (sdxl, sd2, flux, sd3, lora)
           for d in [detect_file(p)]}
    assert got == {"xl": ("sdxl", (768, 1280)), "v2": ("sd2", (1024,)), "flux": ("flux", ()),
                   "sd3": ("sd3", ()), "lora": ("", ())}

    for path in (sdxl, sd2, flux, sd3, lora):
        (roots / path.name).write_bytes(path.read_bytes())
    result = checkpoints_sync()
    assert sorted(result["created"]) == ["flux", "sd3", "v2", "xl"]  # the LoRA is not one
    xl = ModelProfile.objects.get(slug="xl")
    assert (xl.pipeline_type, xl.default_width, xl.default_steps, xl.default_guidance_scale,
            xl.enabled) == ("sdxl", 1024, 30, 6.0, True)  # the shipped SDXL config fits
    flux_profile = ModelProfile.objects.get(slug="flux")
    assert (flux_profile.pipeline_type, flux_profile.default_guidance_scale) == ("flux", 3.5)
    assert not flux_profile.enabled and "config" in flux_profile.note  # no Flux config here
    assert not ModelProfile.objects.get(slug="v2").enabled  # no SD 2.x config shipped
    assert not ModelProfile.objects.get(slug="sd3").enabled


@pytest.mark.django_db
def test_admin_lists_the_source_and_note(roots):
    from django.test import Client

    (roots / "old.ckpt").write_bytes(b"x")
    checkpoints_sync()
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    html = admin.get("/admin/providers/modelprofile/?source__exact=library").content.decode()
    assert "old" in html and "Unsafe format, not loaded" in html
