"""The library scan: incremental, moved/missing files, loops, unreadable folders, sidecars,
the scan job through the API and a real Celery worker, and the scan_loras command."""

import io
import json
import os

import pytest
from django.core.management import call_command
from django.urls import reverse

from jobs.models import Job
from jobs.services import job_create
from loras.metadata import trigger_words_from_metadata
from loras.models import LibraryRoot, LoraModel
from loras.services.scan import library_scan
from loras.services.walk import library_walk
from tests.support.lora_files import (
    CORRUPT,
    kohya_metadata,
    write_corrupt,
    write_lora,
)
from tests.support.wait import wait_for_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def lib(tmp_path, settings):
    root = tmp_path / "lib"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    settings.LORA_SCAN_WORKERS = 2
    settings.LORA_HASH_CHUNK_BYTES = 64 * 1024
    settings.JOB_CANCEL_CHECK_INTERVAL = 0
    return root


def rows():
    return {r.relative_path: r for r in LoraModel.objects.all()}


def test_first_scan_reads_every_layout_and_reports_each_corrupt_file(lib):
    write_lora(lib / "sd1" / "kohya.safetensors", arch="sd1", metadata=kohya_metadata("sd1"))
    write_lora(lib / "sdxl" / "peft.safetensors", arch="sdxl", layout="peft", seed=1)
    write_lora(lib / "flux" / "Diffusers.SafeTensors", arch="flux", layout="diffusers", seed=2)
    for kind in CORRUPT:
        write_corrupt(lib / "bad" / f"{kind}.safetensors", kind)
    (lib / "notes.txt").write_text("not a lora")

    report = library_scan()

    assert report["files_seen"] == 3 + len(CORRUPT)
    assert report["new"] == 3 + len(CORRUPT) and report["unchanged"] == 0
    assert sorted(e["path"] for e in report["errors"]) == sorted(
        f"bad/{kind}.safetensors" for kind in CORRUPT)
    assert all(e["root"] == LibraryRoot.objects.get().pk for e in report["errors"])
    found = rows()
    sd1 = found["sd1/kohya.safetensors"]
    assert (sd1.base_model, sd1.network_rank, sd1.network_alpha) == ("SD 1.5", 4, 2.0)
    assert (sd1.name, sd1.folder, sd1.file_name) == ("kohya", "sd1", "kohya.safetensors")
    assert sd1.trigger_words == ["mychar", "1girl", "solo", "smile", "outdoors"]
    assert sd1.header_metadata["ss_output_name"] == "my_lora"
    assert len(sd1.sha256) == 64 and len(sd1.autov3) == 64 and sd1.scan_error == ""
    sdxl = found["sdxl/peft.safetensors"]
    assert (sdxl.base_model, sdxl.network_module, sdxl.network_alpha) == ("SDXL 1.0", "peft.lora",
                                                                          None)
    assert found["flux/Diffusers.SafeTensors"].network_rank == 4
    assert found["flux/Diffusers.SafeTensors"].base_model == "Flux.1 D"
    huge = found["bad/huge_header_length.safetensors"]
    assert "over the" in huge.scan_error and len(huge.sha256) == 64 and huge.size == 10
    assert "Empty file" in found["bad/zero_byte.safetensors"].scan_error
    assert "Truncated file" in found["bad/truncated_data.safetensors"].scan_error


def test_rescan_does_not_reread_unchanged_files(lib):
    path = write_lora(lib / "a.safetensors", seed=1)
    library_scan()
    old = LoraModel.objects.get()
    # Same size, content changed, mtime restored: (size, mtime, inode) unchanged -> not re-read.
    stat = path.stat()
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    with open(path, "r+b") as fh:
        fh.write(raw)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    report = library_scan()
    assert (report["unchanged"], report["updated"], report["new"]) == (1, 0, 0)
    assert LoraModel.objects.get().sha256 == old.sha256

    os.utime(path, (stat.st_atime, stat.st_mtime + 10))
    report = library_scan()
    assert (report["unchanged"], report["updated"]) == (0, 1)
    lora = LoraModel.objects.get()
    assert lora.pk == old.pk and lora.sha256 != old.sha256


def test_moved_file_keeps_its_row_and_user_data(lib):
    write_lora(lib / "a.safetensors", seed=1)
    write_lora(lib / "b.safetensors", seed=2)
    library_scan()
    lora = LoraModel.objects.get(file_name="a.safetensors")
    LoraModel.objects.filter(pk=lora.pk).update(
        tags=["style"], notes="mine", favorite=True, civitai_version_id=42,
        base_model="Pony", civitai={"id": 42})
    (lib / "styles").mkdir()
    os.replace(lib / "a.safetensors", lib / "styles" / "renamed.safetensors")

    report = library_scan()

    assert (report["moved"], report["new"], report["missing"], report["unchanged"]) == (1, 0, 0, 1)
    moved = LoraModel.objects.get(pk=lora.pk)
    assert (moved.relative_path, moved.folder, moved.file_name, moved.name) == (
        "styles/renamed.safetensors", "styles", "renamed.safetensors", "renamed")
    assert (moved.tags, moved.notes, moved.favorite, moved.civitai_version_id) == (
        ["style"], "mine", True, 42)
    assert moved.base_model == "Pony"  # Civitai's word is not replaced by the header guess
    assert moved.status == "present" and LoraModel.objects.count() == 2


def test_vanished_file_is_missing_then_found_again(lib):
    path = write_lora(lib / "a.safetensors")
    library_scan()
    pk = LoraModel.objects.get().pk
    hidden = lib.parent / "elsewhere.safetensors"
    os.replace(path, hidden)

    report = library_scan()
    lora = LoraModel.objects.get()
    assert report["missing"] == 1 and lora.status == "missing" and lora.missing_since
    assert library_scan()["missing"] == 0  # already missing, not counted again

    os.replace(hidden, path)  # same path, same stat: present again without a re-read
    report = library_scan()
    lora = LoraModel.objects.get()
    assert (report["reappeared"], report["unchanged"]) == (1, 1)
    assert (lora.pk, lora.status, lora.missing_since) == (pk, "present", None)

    # Missing in one scan, back under another path in a later one: the same row moves.
    os.replace(path, hidden)
    library_scan()
    (lib / "new").mkdir()
    os.replace(hidden, lib / "new" / "a.safetensors")
    report = library_scan()
    assert report["moved"] == 1 and LoraModel.objects.get().pk == pk
    assert LoraModel.objects.get().relative_path == "new/a.safetensors"


def test_symlink_loop_is_reported_and_not_fatal(lib):
    write_lora(lib / "a" / "one.safetensors")
    os.symlink(lib / "a", lib / "a" / "loop")
    os.symlink(lib / "a", lib / "link_to_a")  # a second path to the same folder
    report = library_scan()
    assert report["files_seen"] == 1 and report["new"] == 1
    loops = sorted(item["path"] for item in report["loops"])
    # Whichever of a/ and link_to_a/ is met first is entered; the other and the loop inside
    # are reported.
    assert loops in (["a", "link_to_a/loop"], ["a/loop", "link_to_a"])
    assert {item["target"] for item in report["loops"]} >= {str(lib / "a")}


def test_symlinked_folder_outside_the_root_is_followed(lib, tmp_path):
    outside = tmp_path / "outside"
    write_lora(outside / "x.safetensors")
    os.symlink(outside, lib / "linked")
    report = library_scan()
    assert report["new"] == 1 and rows()["linked/x.safetensors"].status == "present"


def test_unreadable_root_is_reported_and_its_rows_are_not_marked_missing(lib, tmp_path):
    write_lora(lib / "a.safetensors")
    library_scan()
    root = LibraryRoot.objects.get()
    # A "folder" that cannot be listed: the root's path is now a file (scandir fails).
    os.replace(lib, tmp_path / "moved_away")
    lib.write_text("not a folder")
    report = library_scan(roots=[root])
    assert report["unreadable"] == [{"root": root.pk, "path": "", "error": "Not a directory"}]
    assert report["missing"] == 0 and LoraModel.objects.get().status == "present"


def test_unreadable_subfolder_is_reported(tmp_path):
    """chmod 000 does not stop root: list the folder from a child process that dropped to an
    unprivileged user (nobody) when we are root."""
    base = tmp_path / "world"
    base.mkdir()
    for folder in (tmp_path, base):
        os.chmod(folder, 0o755)
    write_lora(base / "ok" / "a.safetensors")
    write_lora(base / "locked" / "b.safetensors")
    os.chmod(base / "locked", 0o000)
    os.chmod(base / "ok", 0o755)
    os.chmod(base / "ok" / "a.safetensors", 0o644)
    tmp_parents = [p for p in tmp_path.parents if str(p).startswith("/tmp/")]
    modes = {p: p.stat().st_mode for p in tmp_parents}
    for p in tmp_parents:
        os.chmod(p, modes[p] | 0o005)
    read, write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            try:
                os.close(read)
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                walk = library_walk(root=LibraryRoot(path=str(base)))
                os.write(write, json.dumps({"files": [f.relative for f in walk.files],
                                            "unreadable": walk.unreadable}).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as fh:
            result = json.loads(fh.read() or b"{}")
        os.waitpid(pid, 0)
    finally:
        os.chmod(base / "locked", 0o755)
        for p in tmp_parents:
            os.chmod(p, modes[p])
    assert result["files"] == ["ok/a.safetensors"]
    assert result["unreadable"] == [{"root": None, "path": "locked",
                                     "error": "Permission denied"}]


def test_civitai_helper_sidecar_wins_and_preview_is_adopted(lib):
    path = write_lora(lib / "chars" / "hero.safetensors", arch="sdxl",
                      metadata=kohya_metadata("sdxl"))
    info = {"id": 222, "modelId": 111, "baseModel": "Pony", "trainedWords": ["hero_v2", "cape"],
            "nsfwLevel": 2, "model": {"name": "Hero", "type": "LORA", "nsfw": False},
            "files": [{"hashes": {"SHA256": "AB"}}]}
    (lib / "chars" / "hero.civitai.info").write_text(json.dumps(info))
    (lib / "chars" / "hero.preview.png").write_bytes(b"\x89PNG fake")
    library_scan()
    lora = LoraModel.objects.get()
    assert (lora.civitai_model_id, lora.civitai_version_id) == (111, 222)
    # Civitai's words first, and the file's own ss_tag_frequency words kept after them
    # (docs/library.md#never-lose-what-the-user-or-the-file-said).
    guess = trigger_words_from_metadata(lora.header_metadata)
    assert guess and lora.trigger_words == ["hero_v2", "cape", *guess]
    assert lora.base_model == "Pony"  # not the header's SDXL 1.0
    assert lora.nsfw_level == 2 and lora.civitai["model"]["name"] == "Hero"
    assert lora.preview == "chars/hero.preview.png"
    assert path.exists()


def test_lora_manager_metadata_json_is_adopted(lib):
    write_lora(lib / "x.safetensors", arch="sd1")
    data = {"file_name": "x", "model_name": "X", "base_model": "Illustrious",
            "preview_url": "", "preview_nsfw_level": 4, "notes": "good at 0.7",
            "usage_tips": json.dumps({"strength": 0.7}), "tags": ["anime", "style"],
            "favorite": True, "from_civitai": True,
            "civitai": {"id": 9, "modelId": 8, "trainedWords": ["xstyle"]}}
    (lib / "x.metadata.json").write_text(json.dumps(data))
    (lib / "x.webp").write_bytes(b"RIFF fake")
    library_scan()
    lora = LoraModel.objects.get()
    assert (lora.base_model, lora.tags, lora.notes) == ("Illustrious", ["anime", "style"],
                                                        "good at 0.7")
    assert (lora.preferred_weight, lora.favorite, lora.nsfw_level) == (0.7, True, 4)
    assert (lora.civitai_model_id, lora.civitai_version_id) == (8, 9)
    assert lora.trigger_words == ["xstyle"] and lora.preview == "x.webp"


def test_sidecar_added_later_is_adopted_without_rehash_and_bad_sidecar_is_reported(lib):
    path = write_lora(lib / "x.safetensors", metadata=kohya_metadata("sd1"))
    library_scan()
    assert LoraModel.objects.get().trigger_words[0] == "mychar"
    info = lib / "x.civitai.info"
    info.write_text(json.dumps({"id": 5, "modelId": 4, "trainedWords": ["civ"]}))
    later = LoraModel.objects.get().updated_at.timestamp() + 1  # coarse file-system clocks
    os.utime(info, (later, later))
    report = library_scan()
    lora = LoraModel.objects.get()
    assert report["unchanged"] == 1 and lora.civitai_version_id == 5
    guess = trigger_words_from_metadata(lora.header_metadata)
    assert lora.trigger_words == ["civ", *guess]  # declared first, the file's words kept
    # A sidecar older than the row is not read again (a broken one would be reported).
    info.write_text("{broken")
    older = lora.updated_at.timestamp() - 10
    os.utime(info, (older, older))
    assert library_scan()["errors"] == []

    other = write_lora(lib / "y.safetensors", seed=3)
    (lib / "y.civitai.info").write_text("{broken")
    report = library_scan()
    assert report["new"] == 1
    assert [e["path"] for e in report["errors"]] == ["y.safetensors"]
    assert "y.civitai.info" in report["errors"][0]["error"]
    assert LoraModel.objects.get(file_name="y.safetensors").scan_error == ""
    assert path.exists() and other.exists()


def test_cancel_stops_between_files(lib, user):
    for i in range(8):
        write_lora(lib / f"{i}.safetensors", seed=i)
    job = job_create(kind="lora_scan", user=user)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    report = library_scan(job=job, workers=1)
    assert report["canceled"] is True
    assert 1 <= report["new"] < 8 == report["files_seen"]


@pytest.mark.django_db(transaction=True)
def test_api_scan_job_runs_on_the_worker(lib, api_client, celery_worker):
    write_lora(lib / "a.safetensors", metadata=kohya_metadata("sdxl"))
    write_corrupt(lib / "bad.safetensors", "not_json")
    response = api_client.post(reverse("api:lora-scan"))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["ws_url"] == f"/ws/jobs/{body['job']}/"
    job = wait_for_job(body["job"], timeout=60)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert job.kind == "lora_scan" and job.progress == 1.0 and job.step == job.total_steps == 2
    assert (job.result["new"], job.result["errors"][0]["path"]) == (2, "bad.safetensors")
    assert LoraModel.objects.get(file_name="a.safetensors").base_model == "SDXL 1.0"


def test_api_scan_conflicts_while_one_is_queued_and_needs_a_user(api_client, anon_client,
                                                                 user, lib):
    job_create(kind="lora_scan", user=user)
    response = api_client.post(reverse("api:lora-scan"))
    assert response.status_code == 409 and response.json()["code"] == "job_running"
    assert anon_client.post(reverse("api:lora-scan")).status_code == 401
    assert Job.objects.filter(kind="lora_scan").count() == 1


def test_scan_loras_command_prints_the_report(lib):
    write_lora(lib / "good.safetensors")
    write_corrupt(lib / "sub" / "bad.safetensors", "zero_byte")
    out, err = io.StringIO(), io.StringIO()
    call_command("scan_loras", "--workers", "1", stdout=out, stderr=err)
    text = out.getvalue()
    assert "Files seen: 2  new: 2  updated: 0  unchanged: 0" in text
    assert "error: lib/sub/bad.safetensors: Empty file (0 bytes)." in text
    assert "2/2" in err.getvalue()  # the tqdm bar reached the end
    out = io.StringIO()
    call_command("scan_loras", "--no-progress", stdout=out, stderr=io.StringIO())
    assert "new: 0  updated: 0  unchanged: 2" in out.getvalue()


def test_scan_job_canceled_while_running_keeps_its_partial_report(lib, user):
    from jobs.services import job_cancel
    from loras.services.scan import library_scan_run

    for i in range(6):
        write_lora(lib / f"{i}.safetensors", seed=i)
    queued = job_create(kind="lora_scan", user=user)
    job_cancel(job=queued)  # canceled while queued: the task finds it finished
    assert library_scan_run(job_id=str(queued.pk)).status == "canceled"
    assert LoraModel.objects.count() == 0

    job = job_create(kind="lora_scan", user=user)
    queued_flag = job_create(kind="lora_scan", user=user)  # the flag set before the start
    Job.objects.filter(pk=queued_flag.pk).update(cancel_requested=True)
    not_run = library_scan_run(job_id=str(queued_flag.pk))
    assert not_run.status == "canceled" and not_run.started_at is None

    def cancel_after_first_file(step, total):  # the user presses Cancel mid-scan
        if step >= 1:
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)

    done = library_scan_run(job_id=str(job.pk), listener=cancel_after_first_file)
    assert done.status == "canceled" and done.result["canceled"] is True
    assert done.result["new"] == LoraModel.objects.count() < 6


def test_kohya_file_without_metadata_gets_alpha_from_its_tensor(lib):
    write_lora(lib / "plain.safetensors", arch="sdxl", rank=16)
    library_scan()
    lora = LoraModel.objects.get()
    assert (lora.base_model, lora.network_rank, lora.network_alpha) == ("SDXL 1.0", 16, 8.0)
    assert lora.header_metadata == {} and lora.trigger_words == []


def test_file_name_that_is_not_utf8_is_reported_not_fatal(lib):
    write_lora(lib / "ok.safetensors")
    bad = os.path.join(os.fsencode(lib), b"caf\xe9.safetensors")
    with open(bad, "wb") as fh:
        fh.write((lib / "ok.safetensors").read_bytes())
    report = library_scan()
    assert report["new"] == 1 and report["files_seen"] == 1
    assert report["unreadable"][0]["error"] == "File name is not valid UTF-8."
