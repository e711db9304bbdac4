"""LoRA references as A1111 resolves them (loras.selectors.lora_resolve) and the compatibility
check before queuing (loras.compat), on real rows and real files: the demo model folder and
LoRAs built for it, and SD 1.5 / SDXL / Flux-shaped LoRA files
(docs/prompt-syntax.md#how-a-lora-name-is-resolved, docs/prompt-syntax.md#lora-compatibility).
"""

import pytest

from core.exceptions import ApplicationError
from images.prompt import parse_prompt_loras
from loras.compat import (
    base_model_family,
    lora_fits,
    lora_text_width,
    loras_check,
    model_text_width,
)
from loras.models import LoraModel
from loras.selectors import lora_prompt_name, lora_resolve
from tests.factories import LibraryRootFactory, LoraFactory, ModelProfileFactory
from tests.support.lora_files import write_lora

pytestmark = pytest.mark.django_db


# ----------------------------------------------------------------------------- resolve
@pytest.fixture
def ink(tmp_path):
    root = LibraryRootFactory(path=str(tmp_path / "loras"))
    return LoraFactory(root=root, name="Ink Style", file_name="ink_style_v2.safetensors",
                       header_metadata={"ss_output_name": "inkstyle"},
                       sha256="ab12cd34ef" + "0" * 54, autov3="fe98dc76ba54" + "1" * 52)


@pytest.mark.parametrize("ref", ["ink_style_v2", "Ink Style", "inkstyle", "INK_STYLE_V2",
                                 "ink style", "INKSTYLE", "ab12cd34ef", "AB12CD34EF00",
                                 "fe98dc76ba54"])
def test_every_name_a1111_users_write_finds_the_lora(ink, ref):
    assert lora_resolve(ref=ref) == ink


def test_id_and_int(ink):
    assert lora_resolve(ref=ink.pk) == ink
    assert lora_resolve(ref=str(ink.pk)) == ink


@pytest.mark.parametrize("ref", ["", "  ", "ink", "ink_style", "ab12cd34e", "inkstyle2",
                                 "ink_style_v2.safetensors", "0000000000"])
def test_what_does_not_name_it(ink, ref):
    assert lora_resolve(ref=ref) is None


def test_tags_resolve_by_alias(ink):
    _, tagged = parse_prompt_loras("a cat <lora:inkstyle:0.5:0.8>")
    assert lora_resolve(ref=tagged[0].name) == ink
    assert (tagged[0].te_weight, tagged[0].weight) == (0.5, 0.8)


def test_prompt_name_is_what_a1111_can_resolve(ink):
    assert lora_prompt_name(ink, "inkstyle") == "inkstyle"
    assert lora_prompt_name(ink, "ink_style_v2") == "ink_style_v2"
    # An id, a hash or our library name mean nothing to A1111: the file stem then.
    for ref in (ink.pk, "ab12cd34ef", "Ink Style", "INKSTYLE"):
        assert lora_prompt_name(ink, ref) == "ink_style_v2"


def test_file_stem_wins_over_another_files_alias(tmp_path):
    root = LibraryRootFactory(path=str(tmp_path / "loras"))
    by_alias = LoraFactory(root=root, name="a", header_metadata={"ss_output_name": "glow"})
    by_stem = LoraFactory(root=root, name="glow")
    assert lora_resolve(ref="glow") == by_stem
    by_stem.status = LoraModel.Status.MISSING
    by_stem.save()
    assert lora_resolve(ref="glow") == by_alias


def test_name_before_id(tmp_path):
    root = LibraryRootFactory(path=str(tmp_path / "loras"))
    first = LoraFactory(root=root, name="other")
    named = LoraFactory(root=root, name=str(first.pk))
    assert lora_resolve(ref=str(first.pk)) == named


def test_ties_take_the_first_by_root_and_path(tmp_path):
    late = LibraryRootFactory(path=str(tmp_path / "z-root"))
    early = LibraryRootFactory(path=str(tmp_path / "a-root"))
    in_late = LoraFactory(root=late, name="dup")
    in_b = LoraFactory(root=early, name="dup", folder="b")
    in_a = LoraFactory(root=early, name="dup", folder="a")
    assert lora_resolve(ref="dup") == in_a
    for alias_holder in (in_late, in_b, in_a):
        alias_holder.header_metadata = {"ss_output_name": "shared"}
        alias_holder.name = f"x{alias_holder.pk}"
        alias_holder.file_name = f"x{alias_holder.pk}.safetensors"
        alias_holder.save()
    assert lora_resolve(ref="shared") == in_a


def test_missing_and_trashed_are_not_resolved(ink):
    for status in (LoraModel.Status.MISSING, LoraModel.Status.TRASHED):
        ink.status = status
        ink.save()
        assert lora_resolve(ref="ink_style_v2") is None
        assert lora_resolve(ref="inkstyle") is None


# ----------------------------------------------------------------------------- families
@pytest.mark.parametrize(("base", "family"), [
    ("SD 1.5", "SD1.x"), ("SD 1.4", "SD1.x"), ("SD 1.5 LCM", "SD1.x"), ("SD 2.1", "SD2.x"),
    ("SD 2.1 768", "SD2.x"), ("SDXL 1.0", "SDXL"), ("SDXL Lightning", "SDXL"), ("Pony", "SDXL"),
    ("Illustrious", "SDXL"), ("NoobAI", "SDXL"), ("Flux.1 D", "Flux"), ("Flux.1 S", "Flux"),
    ("SD 3.5 Large", "SD 3.5 Large"), ("Pony V7", "Pony V7"), ("Hunyuan 1", "Hunyuan 1"),
    ("", ""), ("Other", ""),
])
def test_base_model_family(base, family):
    assert base_model_family(base) == family


@pytest.mark.parametrize(("base", "pipeline", "expected"), [
    ("SD 1.5", "sd", (True, "SD1.x", "SD1.x/SD2.x")),
    ("SD 2.1", "sd", (True, "SD2.x", "SD1.x/SD2.x")),
    ("SD 1.5", "sdxl", (False, "SD1.x", "SDXL")),
    ("SDXL 1.0", "sd", (False, "SDXL", "SD1.x/SD2.x")),
    ("Pony", "sdxl", (True, "SDXL", "SDXL")),
    ("Flux.1 D", "sd", (False, "Flux", "SD1.x/SD2.x")),
    ("Flux.1 D", "flux", (True, "Flux", "Flux")),
    ("SDXL 1.0", "flux", (False, "SDXL", "Flux")),
    ("SD 3.5 Large", "sdxl", (False, "SD 3.5 Large", "SDXL")),
    ("", "sdxl", (True, "unknown", "SDXL")),
    ("SDXL 1.0", "fake", (True, "SDXL", "fake")),
])
def test_lora_fits_by_family(tmp_path, base, pipeline, expected):
    lora = LoraFactory(root=LibraryRootFactory(path=str(tmp_path)), base_model=base)
    assert lora_fits(lora, pipeline) == expected


def test_broken_files_do_not_fit(tmp_path):
    root = LibraryRootFactory(path=str(tmp_path))
    missing = LoraFactory(root=root, status=LoraModel.Status.MISSING)
    assert lora_fits(missing, "sd") == (False, "missing file", "SD1.x/SD2.x")
    bad = LoraFactory(root=root, scan_error="Header is not valid JSON: Expecting value.")
    ok, family, _ = lora_fits(bad, "sd")
    assert not ok and family.startswith("unreadable file: Header is not valid JSON")
    garbage = LoraFactory(root=root, content=b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    ok, family, _ = lora_fits(garbage, "sd")
    assert not ok and "unreadable file" in family


def test_profile_base_model_narrows_the_family(tmp_path):
    lora = LoraFactory(root=LibraryRootFactory(path=str(tmp_path)), base_model="SD 1.5")
    assert lora_fits(lora, "sd", model_base="SD 2.1") == (False, "SD1.x", "SD2.x")


# ----------------------------------------------------------------------------- file shapes
@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    from providers import demo

    root = tmp_path_factory.mktemp("compat")
    model = demo.build_demo_model(root / "demo-sd-tiny")
    fits = demo.build_demo_lora(root / "loras" / "warm.safetensors", seed=1)
    wide = demo.build_mismatched_lora(root / "loras" / "wide.safetensors")
    sd15 = write_lora(root / "loras" / "real15.safetensors", arch="sd1")
    sdxl = write_lora(root / "loras" / "realxl.safetensors", arch="sdxl")
    flux = write_lora(root / "loras" / "realflux.safetensors", arch="flux")
    return {"model": model, "root": root / "loras", "warm": fits, "wide": wide,
            "real15": sd15, "realxl": sdxl, "flux": flux}


def test_widths_read_from_files(demo_files):
    assert model_text_width(str(demo_files["model"])) == 32
    assert model_text_width("runwayml/stable-diffusion-v1-5") is None
    assert lora_text_width(str(demo_files["warm"])) == 32
    assert lora_text_width(str(demo_files["wide"])) == 64
    assert lora_text_width(str(demo_files["real15"])) == 768
    assert lora_text_width(str(demo_files["realxl"])) == 2048
    assert lora_text_width(str(demo_files["flux"])) is None


@pytest.fixture
def demo_library(demo_files):
    root = LibraryRootFactory(path=str(demo_files["root"]))
    rows = {}
    for key, base in (("warm", "SD 1.5"), ("wide", "SD 1.5"), ("real15", "SD 1.5"),
                      ("realxl", "SDXL 1.0")):
        path = demo_files[key]
        rows[key] = LoraFactory(root=root, name=key, file_name=path.name,
                                relative_path=path.name, base_model=base)
    profile = ModelProfileFactory(slug="demo-sd", provider="diffusers", pipeline_type="sd",
                                  model_path=str(demo_files["model"]), is_default=False)
    return rows, profile


def test_loras_check_passes_a_lora_made_for_the_model(demo_library):
    rows, profile = demo_library
    loras_check([rows["warm"]], profile)
    loras_check([], profile)


@pytest.mark.parametrize(("key", "family", "model"), [
    ("wide", "SD1.x, for 64-wide text embeddings", "SD1.x/SD2.x, 32-wide"),
    ("real15", "SD1.x, for 768-wide text embeddings", "SD1.x/SD2.x, 32-wide"),
    ("realxl", "SDXL", "SD1.x/SD2.x"),
])
def test_loras_check_refuses_what_would_fail_at_load(demo_library, key, family, model):
    rows, profile = demo_library
    with pytest.raises(ApplicationError) as info:
        loras_check([rows["warm"], rows[key]], profile)
    exc = info.value
    assert (exc.code, exc.status) == ("lora_incompatible", 400)
    expected = f"LoRA {key!r} ({family}) does not fit model 'demo-sd' ({model})."
    assert exc.fields == {"loras": [expected]}
    assert exc.message == expected


def test_loras_check_names_every_misfit(demo_library):
    rows, profile = demo_library
    with pytest.raises(ApplicationError) as info:
        loras_check([rows["realxl"], rows["warm"], rows["wide"]], profile)
    assert [m.split(" (")[0] for m in info.value.fields["loras"]] == ["LoRA 'realxl'",
                                                                      "LoRA 'wide'"]


def test_loras_check_leaves_other_providers_types_alone(demo_library):
    rows, _ = demo_library
    fake = ModelProfileFactory(slug="fake-x", pipeline_type="fake", is_default=False)
    loras_check([rows["realxl"], rows["wide"]], fake)


# ----------------------------------------------------------------------------- through the API
def post(client, **body):
    return client.post("/api/generate/", {"prompt": "a lighthouse", **body}, format="json")


def test_api_records_alias_and_both_weights(api_client, fake_profile, ink):
    from images.models import GenerationRequest

    resp = post(api_client, prompt="a cat <lora:inkstyle:0.5:0.8>")
    assert resp.status_code == 202, resp.content
    (item,) = GenerationRequest.objects.get().loras
    assert (item["lora_id"], item["alias"], item["weight"], item["te_weight"]) == (
        ink.pk, "inkstyle", 0.8, 0.5)


def test_api_refuses_an_incompatible_lora_before_queuing(api_client, demo_library):
    from jobs.models import Job

    resp = post(api_client, model="demo-sd", prompt="a cat <lora:warm:1> <lora:realxl:0.7>")
    assert resp.status_code == 400, resp.content
    data = resp.json()
    assert data["code"] == "lora_incompatible"
    assert data["fields"]["loras"] == [
        "LoRA 'realxl' (SDXL) does not fit model 'demo-sd' (SD1.x/SD2.x)."]
    resp = post(api_client, model="demo-sd", loras=[{"lora": "wide", "weight": 1}])
    assert resp.status_code == 400 and resp.json()["code"] == "lora_incompatible"
    assert "64-wide" in resp.json()["message"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(("body", "field", "named"), [
    ({"prompt": "a cat <hypernet:agm:1.1>"}, "prompt", "<hypernet:agm:1.1>"),
    ({"prompt": "a cat <lora:x:inf>"}, "prompt", "<lora:x:inf>"),
    ({"prompt": "a cat <lora:>"}, "prompt", "<lora:>"),
    ({"prompt": "a cat <lora:x:1:2:3:4>"}, "prompt", "<lora:x:1:2:3:4>"),
    ({"prompt": "a (cat:1.2.3)"}, "prompt", ":1.2.3)"),
    ({"negative_prompt": "(blurry:..)"}, "negative_prompt", ":..)"),
])
def test_api_bad_prompt_syntax_is_400_naming_it(api_client, fake_profile, body, field, named):
    from jobs.models import Job

    resp = post(api_client, **body)
    assert resp.status_code == 400, resp.content
    data = resp.json()
    assert data["code"] == "invalid"
    assert named in data["message"] and named in data["fields"][field][0]
    assert not Job.objects.exists()
