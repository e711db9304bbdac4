"""Disk full (ENOSPC) and permission denied (EACCES) while moving, renaming, downloading and
saving images.

Why injection: the tests run as root, which ignores file modes (chmod 000 does not stop it),
and filling a real disk would disturb every other process on the machine. So the OSError is
raised where the kernel would raise it, at the OS call of the code path under test: the
``os.link`` a move/rename makes, the ``write`` of the download's ``.part`` file, the ``write``
of the storage's temporary file. Everything above that call runs for real.
"""

from __future__ import annotations

import errno
import os

import pytest

from images.models import Image
from images.services import generation_create, generation_run
from jobs.models import Job
from loras.models import LoraModel
from loras.services import downloads as services_downloads
from loras.services import library_roots_sync, lora_register
from loras.services.downloads import download_create, download_run
from tests.factories import ModelProfileFactory
from tests.support.fake_civitai import fake_civitai_server, safetensors_bytes  # noqa: F401

pytestmark = pytest.mark.django_db


def oserror(code: int, path: str = "") -> OSError:
    return OSError(code, os.strerror(code), path)


class FailingFile:
    """A real file object whose ``write`` fails with ``code`` once ``allow`` bytes were
    written (ENOSPC: the disk filled up mid-write)."""

    def __init__(self, fh, *, code: int, allow: int = 0):
        self._fh, self._code, self._left = fh, code, allow

    def write(self, data):
        if len(data) > self._left:
            raise oserror(self._code, getattr(self._fh, "name", ""))
        self._left -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def files_under(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


@pytest.fixture
def library(settings, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    settings.LORA_ROOTS = [str(root)]
    settings.DOWNLOAD_PATH_TEMPLATE = ""
    library_roots_sync()
    return root


@pytest.fixture
def civitai(settings, fake_civitai_server):
    """The session's fake Civitai with the client settings of ``fake_civitai``, without its
    ``cache.clear()`` (the cache is the shared Redis when REDIS_URL is set)."""
    from loras.civitai import limiter

    fake_civitai_server.reset()
    settings.CIVITAI_BASE_URL = fake_civitai_server.base_url
    settings.CIVITAI_API_KEY = ""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.CIVITAI_BACKOFF_SECONDS = 0.01
    settings.CIVITAI_MAX_RETRIES = 2
    limiter.reset()
    yield fake_civitai_server
    fake_civitai_server.reset()
    limiter.reset()


@pytest.fixture
def staff_client(api_client, user):
    user.is_staff = True
    user.save()
    return api_client


@pytest.fixture
def lora_with_sidecar(library):
    data = safetensors_bytes(seed=3)
    (library / "style").mkdir()
    path = library / "style" / "ink.safetensors"
    path.write_bytes(data)
    (library / "style" / "ink.civitai.info").write_text('{"id": 1}')
    return lora_register(path=str(path)), data


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
@pytest.mark.parametrize("action", ["rename", "move"])
def test_move_or_rename_failing_on_a_sidecar_changes_nothing(
        staff_client, library, lora_with_sidecar, monkeypatch, code, action):
    """The LoRA file moves, then its sidecar fails: the file goes back, the row is unchanged."""
    lora, data = lora_with_sidecar
    real_link = os.link

    def link(src, dst, **kwargs):
        if str(src).endswith(".civitai.info") and "style" in str(src):
            raise oserror(code, dst)
        return real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", link)
    body = {"name": "renamed"} if action == "rename" else {"folder": "elsewhere"}
    resp = staff_client.post(f"/api/loras/{lora.pk}/{action}/", body, format="json")

    assert resp.status_code == 400, resp.content
    assert resp.json()["code"] == "move_failed"
    assert os.strerror(code) in resp.json()["message"]
    assert (library / "style" / "ink.safetensors").read_bytes() == data
    assert files_under(library) == ["style/ink.civitai.info", "style/ink.safetensors"]
    lora.refresh_from_db()
    assert lora.relative_path == "style/ink.safetensors" and lora.name == "ink"


def test_download_with_a_full_disk_fails_clearly_and_keeps_no_lora(
        civitai, library, user, monkeypatch):
    data = safetensors_bytes(seed=9, floats=256 * 1024)  # 1 MiB
    civitai.add_version(version_id=77, model_id=770, data=data,
                             file_name="dl_77.safetensors")
    download = download_create(user=user, model_version_id=77, folder="", enqueue=False)

    def full_disk_open(path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)
        return FailingFile(fh, code=errno.ENOSPC, allow=300_000) if "b" in mode and \
            str(path).endswith(".part") and ("w" in mode or "a" in mode) else fh

    monkeypatch.setattr(services_downloads, "open", full_disk_open, raising=False)
    job = download_run(download_id=download.pk)

    assert job.status == Job.Status.FAILED
    assert job.error_code == "storage_error"
    assert "No space left on device" in job.error_message
    assert not (library / "dl_77.safetensors").exists()
    assert not LoraModel.objects.filter(file_name="dl_77.safetensors").exists()
    # What was written stays as the .part the next run resumes from; never a visible LoRA.
    assert [f for f in files_under(library) if f.endswith(".safetensors")] == []
    assert len((library / "dl_77.safetensors.part").read_bytes()) <= 300_000

    monkeypatch.undo()
    again = download_create(user=user, model_version_id=77, folder="", enqueue=False)
    job = download_run(download_id=again.pk)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert (library / "dl_77.safetensors").read_bytes() == data


@pytest.mark.parametrize("failing", ["png", "thumbnail"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_image_save_failure_fails_the_job_and_leaves_no_file(
        settings, user, monkeypatch, failing, code):
    """The storage writes to a temporary file then renames it: a failing write of the PNG or
    of its thumbnail (the second file) fails the job with ``storage_error``; no image row, no
    PNG, no thumbnail, no temporary file stays."""
    from core import storage

    ModelProfileFactory(slug="fake")
    request = generation_create(user=user, params={"prompt": "a lamp", "model": "fake",
                                                   "n": 2}, enqueue=False)
    real_fdopen = storage.os.fdopen
    # Files are written in order png 1, thumbnail 1, png 2, thumbnail 2: fail one of the
    # second image's, so the first image's files must be removed too.
    fail_at = 3 if failing == "png" else 4
    seen = []

    def fdopen(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)
        seen.append(fh.name)
        return FailingFile(fh, code=code) if len(seen) == fail_at else fh

    monkeypatch.setattr(storage.os, "fdopen", fdopen)
    job = generation_run(request_id=request.pk)

    assert job.status == Job.Status.FAILED
    assert job.error_code == "storage_error"
    assert os.strerror(code) in job.error_message
    assert not Image.objects.filter(request=request).exists()
    assert len(seen) == fail_at
    assert files_under(settings.MEDIA_ROOT) == []  # folders may stay, files may not
