"""Auto-organize: dry-run plan, the real run as a Job on a real Celery worker, one at a time."""

import pytest

from jobs.models import Job
from loras.models import LoraModel
from loras.services.organize import folder_name_sanitize, organize_folder
from tests.loras.test_library_ops import lib, tree  # noqa: F401 (fixture)
from tests.support.wait import wait_for_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def messy(lib):
    lib.lora("a.safetensors", sidecars=(".civitai.info",), base_model="SDXL 1.0",
             tags=["style", "x"])
    lib.lora("deep/b.safetensors", base_model="SD 1.5", tags=["anime"])
    lib.lora("SD 1.5/anime/ok.safetensors", base_model="SD 1.5", tags=["anime"])  # in place
    lib.lora("c.safetensors", base_model="", tags=[])
    lib.lora("skip.safetensors", base_model="SD 1.5", tags=["anime"], excluded=True)
    # d would land on an existing file: a conflict, left in place.
    lib.lora("d.safetensors", base_model="SD 1.5", tags=["anime"])
    lib.file("SD 1.5/anime/d.safetensors", b"someone else")
    return lib


def test_dry_run_plans_and_changes_nothing(messy, api_client):
    before = tree(messy.path)
    r = api_client.post("/api/loras/auto-organize/?dry_run=1", {}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    moves = {m["from"]: m["to"] for m in body["moves"]}
    assert moves == {"a.safetensors": "SDXL 1.0/style/a.safetensors",
                     "deep/b.safetensors": "SD 1.5/anime/b.safetensors",
                     "c.safetensors": "unknown/unknown/c.safetensors"}
    assert [(c["from"], c["code"]) for c in body["conflicts"]] == [("d.safetensors",
                                                                    "path_taken")]
    assert tree(messy.path) == before
    assert not Job.objects.exists()


def test_dry_run_with_author_template(lib, api_client):
    lib.lora("a.safetensors", civitai={"creator": {"username": "Ajuro"}})
    lib.lora("b.safetensors", civitai={"model": {"creator": {"username": "../evil"}}})
    lib.lora("c.safetensors")
    r = api_client.post("/api/loras/auto-organize/?dry_run=1", {"template": "by/{author}"},
                        format="json")
    assert r.status_code == 200, r.content
    assert sorted(m["to"] for m in r.json()["moves"]) == [
        "by/Ajuro/a.safetensors", "by/_evil/b.safetensors", "by/unknown/c.safetensors"]


def test_two_loras_planned_to_one_path_conflict(lib, api_client):
    lib.lora("one/x.safetensors", base_model="SDXL 1.0", tags=["s"])
    lib.lora("two/x.safetensors", base_model="SDXL 1.0", tags=["s"])
    body = api_client.post("/api/loras/auto-organize/?dry_run=1", {}, format="json").json()
    assert len(body["moves"]) == 1
    assert [c["code"] for c in body["conflicts"]] == ["duplicate_target"]


@pytest.mark.parametrize("template", ["{nope}", "{base_model!r}", "../{base_model}",
                                      "/abs/{base_model}", "{base_model"])
def test_bad_templates_are_400(lib, api_client, template):
    r = api_client.post("/api/loras/auto-organize/?dry_run=1", {"template": template},
                        format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_template", r.content


def test_sanitize_folder_names():
    assert folder_name_sanitize("SD 1.5") == "SD 1.5"
    assert folder_name_sanitize("a/b\\c:d*e?") == "a_b_c_d_e_"
    assert folder_name_sanitize("..") == "unknown"
    assert folder_name_sanitize("  \x00 ") == "unknown"
    assert len(folder_name_sanitize("x" * 300)) == 64


def test_organize_folder_never_leaves_the_root(lib):
    lora = lib.lora("a.safetensors", base_model="../..", tags=["/etc"])
    assert organize_folder(lora=lora, template="{base_model}/{first_tag}") == "unknown/_etc"


def test_409_while_an_organize_job_runs(lib, api_client, user):
    Job.objects.create(kind="lora_organize", status=Job.Status.RUNNING, user=user)
    r = api_client.post("/api/loras/auto-organize/", {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "job_running"
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_real_run_moves_files_and_reports(messy, api_client, celery_worker):
    r = api_client.post("/api/loras/auto-organize/", {}, format="json")
    assert r.status_code == 202, r.content
    job = wait_for_job(r.json()["id"], timeout=30)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert job.kind == "lora_organize" and job.progress == 1.0
    assert sorted(m["to"] for m in job.result["moved"]) == [
        "SD 1.5/anime/b.safetensors", "SDXL 1.0/style/a.safetensors",
        "unknown/unknown/c.safetensors"]
    assert [c["from"] for c in job.result["conflicts"]] == ["d.safetensors"]
    assert tree(messy.path) == {
        "SDXL 1.0/style/a.safetensors", "SDXL 1.0/style/a.civitai.info",
        "SD 1.5/anime/b.safetensors", "SD 1.5/anime/ok.safetensors",
        "unknown/unknown/c.safetensors", "skip.safetensors", "d.safetensors",
        "SD 1.5/anime/d.safetensors"}
    assert (messy.path / "SD 1.5/anime/d.safetensors").read_bytes() == b"someone else"
    b = LoraModel.objects.get(name="b")
    assert (b.folder, b.relative_path) == ("SD 1.5/anime", "SD 1.5/anime/b.safetensors")
    # A second run finds nothing to move (only the conflict remains).
    r = api_client.post("/api/loras/auto-organize/", {}, format="json")
    job = wait_for_job(r.json()["id"], timeout=30)
    assert job.status == "succeeded" and job.result["moved"] == []
