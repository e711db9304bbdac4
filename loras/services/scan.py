"""The library scan: walk every root, hash what changed, read headers, adopt sidecars.

Incremental: a row whose (size, mtime, inode) matches the file is not re-read. Changed and new
files are hashed once each (``loras.hashing.file_hashes``: SHA-256 + AutoV3 in one pass) by a
thread pool of ``LORA_SCAN_WORKERS``; the database is written from the calling thread only.
A new path whose SHA-256 equals a missing row is that row, moved: the row follows the file and
keeps its user data. Vanished files are marked missing, never deleted.

Symlinks (docs/architecture.md#files-and-safety): a file whose real path leaves its root (a
symlinked folder or file pointing elsewhere, e.g. a big drive linked into the library) is
listed, reported in ``outside_root`` and never changed on disk (``loras.paths``). A file
reachable by two paths is one entry (its device + inode), at its real path when the walk meets
it there: a symlinked folder pointing inside its own root is not entered (reported in
``loops``), and of the paths left to the same (device, inode), in any root, one is kept
(``aliases`` lists the others): symlinks and hard links alike.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from jobs.kernel import JobCanceled, JobRun, job_run
from jobs.models import Job
from jobs.progress import ProgressReporter
from jobs.services import job_create_exclusive

from ..adopt import sidecars_adopt
from ..hashing import FileHashes, file_hashes
from ..metadata import (
    HeaderError,
    LoraInfo,
    alpha_from_tensors,
    header_info,
    header_read,
    trigger_words_from_metadata,
)
from ..models import LibraryRoot, LoraModel
from ..sidecars import INFO_SUFFIXES
from ..tasks_scan import lora_scan as lora_scan_task
from ..triggers import removed_words, trigger_words_add_declared, trigger_words_merge
from . import library_roots_sync
from .walk import FoundFile, library_walk

JOB_KIND = "lora_scan"
HEAD_BYTES = 1024 * 1024  # first bytes kept by the hasher so most headers need no second read
REPORT_LIST_MAX = 1000  # entries kept per list in a scan report
ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, current path)


def _identity(item: FoundFile) -> tuple:
    """What makes two paths one file: (device, inode) when the walk stat-ed it, else the real
    path."""
    if item.device or item.inode:
        return ("inode", item.device, item.inode)
    return ("path", item.real or item.path)


def _dedupe(found: list[FoundFile], report: _Report) -> list[FoundFile]:
    """One entry per file (device + inode: symlinks and hard links to one file are one entry):
    a file inside its root before one outside, the path with no symlink before one through a
    symlink, then by root id and relative path. The others are reported in ``aliases`` as
    ``{root, path, same_as: {root, path}}``."""
    def rank(item: FoundFile):
        return item.outside_root, item.via_symlink, item.root.pk, item.relative

    by_real: dict[tuple, list[FoundFile]] = {}
    for item in found:
        by_real.setdefault(_identity(item), []).append(item)
    kept, aliases = [], []
    for items in by_real.values():
        items.sort(key=rank)
        kept.append(items[0])
        aliases += [{"root": i.root.pk, "path": i.relative,
                     "same_as": {"root": items[0].root.pk, "path": items[0].relative}}
                    for i in items[1:]]
    report.extend("aliases", aliases)
    report.extend("outside_root", [{"root": i.root.pk, "path": i.relative}
                                   for i in kept if i.outside_root])
    keep = {id(i) for i in kept}
    return [i for i in found if id(i) in keep]


def _hash_one(found: FoundFile, chunk_bytes: int) -> tuple[FoundFile, FileHashes | None, str]:
    """Runs in a pool thread: hashes, or the read error."""
    try:
        return found, file_hashes(found.path, chunk_bytes=chunk_bytes, keep_head=HEAD_BYTES), ""
    except OSError as exc:
        return found, None, f"Cannot read the file: {exc.strerror or exc}."


def _header(found: FoundFile, hashes: FileHashes) -> tuple[LoraInfo | None, str]:
    """(info, error) of the header; the file is only reopened for headers over HEAD_BYTES."""
    try:
        header = header_read(found.path, head=hashes.head)
    except HeaderError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"Cannot read the header: {exc.strerror or exc}."
    n = int.from_bytes(hashes.head[:8], "little") if len(hashes.head) >= 8 else 0
    info = header_info(header, data_bytes=hashes.size - 8 - n)
    if info.network_alpha is None and not info.problem:
        try:
            info.network_alpha = alpha_from_tensors(header, path=found.path, head=hashes.head)
        except (OSError, ValueError, struct.error):
            pass
    return info, info.problem


def _apply_adopted(lora: LoraModel, adopted: dict, *, header_words: list[str]) -> None:
    """Merge sidecar values into ``lora`` without overwriting what the user or Civitai set:
    Civitai ids/JSON, tags, notes, description, tips, weight and preview only fill blanks;
    Civitai's base model replaces a header guess (not a value a Civitai lookup already set, nor
    one the user set), A1111's ``sd version`` only fills an empty one; trigger words are merged
    (``loras.triggers``: none is dropped, none the user removed comes back).
    ``header_words``: the file's own frequency guess (merged by ``_apply_file``); declared
    words go before it."""
    had_civitai = bool(lora.civitai_version_id)
    user_base = bool((lora.user_overrides or {}).get("base_model"))
    if not had_civitai and adopted.get("civitai_version_id"):
        lora.civitai_version_id = adopted["civitai_version_id"]
        lora.civitai_model_id = adopted.get("civitai_model_id")
        lora.civitai = adopted.get("civitai") or {}
    if adopted.get("base_model") and not user_base and (not had_civitai or not lora.base_model):
        lora.base_model = adopted["base_model"]
    if adopted.get("base_model_hint") and not lora.base_model:
        lora.base_model = adopted["base_model_hint"]
    if adopted.get("trigger_words"):
        lora.trigger_words = trigger_words_add_declared(
            lora.trigger_words, adopted["trigger_words"], guess=header_words,
            removed=removed_words(lora))
    for name in ("tags", "notes", "usage_tips", "description"):
        if adopted.get(name) and not getattr(lora, name):
            setattr(lora, name, adopted[name])
    if adopted.get("nsfw_level") and not lora.nsfw_level:
        lora.nsfw_level = adopted["nsfw_level"]
    if adopted.get("preferred_weight") is not None and lora.preferred_weight is None:
        lora.preferred_weight = adopted["preferred_weight"]
    if adopted.get("favorite"):
        lora.favorite = True
    if adopted.get("preview") and (not lora.preview or not os.path.isfile(
            os.path.join(lora.root.path, *lora.preview.split("/")))):
        lora.preview = adopted["preview"]


def _apply_file(lora: LoraModel, found: FoundFile, hashes: FileHashes | None,
                info: LoraInfo | None, error: str) -> None:
    """Write what the file itself says into ``lora`` (location, stat, hashes, header)."""
    folder, _, file_name = found.relative.rpartition("/")
    lora.root = found.root
    lora.relative_path = found.relative
    lora.folder = folder
    lora.file_name = file_name
    lora.status = LoraModel.Status.PRESENT
    lora.missing_since = None
    lora.size, lora.mtime, lora.inode = found.size, found.mtime, found.inode
    if hashes is not None:
        lora.sha256, lora.autov3 = hashes.sha256, hashes.autov3
    lora.scan_error = error[:5000]
    if lora.preview and not os.path.isfile(os.path.join(found.root.path,
                                                        *lora.preview.split("/"))):
        lora.preview = ""  # a moved file whose preview stayed behind, or was deleted
    if info is not None:
        lora.header_metadata = info.metadata
        lora.network_module = info.network_module
        lora.network_rank = info.network_rank
        lora.network_alpha = info.network_alpha
        if info.base_model and not lora.civitai_version_id and not (
                lora.user_overrides or {}).get("base_model"):
            lora.base_model = info.base_model[:50]
        if info.trigger_words:
            lora.trigger_words = trigger_words_merge(lora.trigger_words, info.trigger_words,
                                                     removed=removed_words(lora))


class _Report:
    """The scan report (``job.result``); paths are relative to their root, with its id."""

    def __init__(self, roots: list[LibraryRoot]):
        self.data = {"roots": [{"id": r.pk, "name": r.name} for r in roots], "files_seen": 0,
                     "new": 0, "updated": 0, "unchanged": 0, "moved": 0, "missing": 0,
                     "reappeared": 0, "errors": [], "errors_total": 0, "loops": [],
                     "unreadable": [], "aliases": [], "outside_root": [], "canceled": False,
                     "seconds": 0.0}

    def error(self, found_or_root, path: str, message: str) -> None:
        self.data["errors_total"] += 1
        if len(self.data["errors"]) < REPORT_LIST_MAX:
            root_id = getattr(found_or_root, "pk", found_or_root)
            self.data["errors"].append({"root": root_id, "path": path, "error": message})

    def extend(self, key: str, items: list[dict]) -> None:
        room = REPORT_LIST_MAX - len(self.data[key])
        self.data[key].extend(items[:max(room, 0)])


class _MissingIndex:
    """Missing rows by SHA-256 (loaded once per scan): where a new path may have moved from."""

    def __init__(self):
        self.by_hash: dict[str, list[tuple]] = {}
        for pk, sha, name, _since in (LoraModel.objects.filter(status=LoraModel.Status.MISSING)
                                     .exclude(sha256="")
                                     .values_list("id", "sha256", "file_name", "missing_since")
                                     .order_by("-missing_since", "-id").iterator()):
            self.by_hash.setdefault(sha, []).append((pk, name))

    def claim(self, sha256: str, file_name: str) -> LoraModel | None:
        """The missing row with this SHA-256 (same file name first, then the latest missing),
        taken out of the index so no second file claims it."""
        rows = self.by_hash.get(sha256)
        if not rows:
            return None
        pick = next((r for r in rows if r[1] == file_name), rows[0])
        rows.remove(pick)
        return (LoraModel.objects.select_related("root")
                .filter(pk=pick[0], status=LoraModel.Status.MISSING).first())


class _Batch:
    """Groups row writes into transactions of at most ``size`` rows or ``seconds`` (SQLite
    commits are the cost of a first scan of many small files)."""

    def __init__(self, *, size: int = 200, seconds: float = 0.5):
        self.size, self.seconds = size, seconds
        self._atomic = None
        self._count = 0
        self._started = 0.0

    def open(self) -> None:
        if self._atomic is None:
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            self._count, self._started = 0, time.monotonic()

    def wrote(self) -> None:
        self._count += 1
        if self._count >= self.size or time.monotonic() - self._started >= self.seconds:
            self.close()

    def close(self, exc_info=(None, None, None)) -> None:
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(*exc_info)


def library_scan(*, job: Job | None = None, reporter: ProgressReporter | None = None,
                 roots: list[LibraryRoot] | None = None, workers: int | None = None,
                 progress: ProgressCallback | None = None) -> dict:
    """Scan ``roots`` (default: every enabled LibraryRoot, after ``library_roots_sync()``).

    Args:
        job: the running scan job, if any (only used for its ``reporter``).
        reporter: gets ``step(files done, files total, relative path)``; its ``should_cancel()``
            is checked between files (a canceled scan keeps what it wrote; report
            ``canceled: true``).
        workers: hashing threads (default ``settings.LORA_SCAN_WORKERS``).
        progress: optional ``callable(done, total, relative_path)`` (the CLI progress bar).

    Returns:
        ``{"roots": [{id, name}], "files_seen", "new", "updated", "unchanged", "moved",
        "missing", "reappeared", "errors": [{root, path, error}], "errors_total", "loops":
        [{root, path, target}], "unreadable": [{root, path, error}], "aliases": [{root, path,
        same_as: {root, path}}], "outside_root": [{root, path}], "canceled", "seconds"}``
        (``files_seen`` counts files after aliases are dropped; lists hold at most
        ``REPORT_LIST_MAX`` entries).
        Per-file problems (bad header, unreadable file, bad sidecar) are in ``errors`` and on
        the row's ``scan_error``; they never stop the scan.
    """
    started = time.monotonic()
    if reporter is None and job is not None:
        reporter = ProgressReporter(job)
    if roots is None:
        library_roots_sync()
        roots = list(LibraryRoot.objects.filter(enabled=True))
    workers = max(1, workers or settings.LORA_SCAN_WORKERS)
    report = _Report(roots)

    # 1. Walk every root.
    found: list[FoundFile] = []
    blind: dict[int, list[str]] = {}  # root id -> folders we could not list
    for root in roots:
        walk = library_walk(root=root)
        found.extend(walk.files)
        report.extend("loops", walk.loops)
        report.extend("unreadable", walk.unreadable)
        blind[root.pk] = [u["path"] for u in walk.unreadable]
    found = _dedupe(found, report)
    report.data["files_seen"] = len(found)

    # 2. Compare with the rows: unchanged, reappeared, to re-read.
    fields = ("id", "root_id", "relative_path", "status", "size", "mtime", "inode",
              "updated_at", "sha256")
    rows = {(r[1], r[2]): r for r in LoraModel.objects.filter(
        root__in=roots, status__in=[LoraModel.Status.PRESENT, LoraModel.Status.MISSING],
    ).values_list(*fields).iterator(chunk_size=5000)}
    todo: list[tuple[FoundFile, int | None]] = []
    reappeared, readopt = [], []
    for item in found:
        row = rows.pop((item.root.pk, item.relative), None)
        # Unchanged: same (size, mtime, inode), and hashed before (a read error is retried).
        if row and (row[4], row[5], row[6]) == (item.size, item.mtime, item.inode) and row[8]:
            report.data["unchanged"] += 1
            if row[3] == LoraModel.Status.MISSING:
                reappeared.append(row[0])
            if item.sidecar_mtime > row[7].timestamp():  # a sidecar came or changed since
                readopt.append((item, row[0]))
        else:
            todo.append((item, row[0] if row else None))
    now = timezone.now()
    for chunk in _chunks(reappeared):
        LoraModel.objects.filter(pk__in=chunk).update(status=LoraModel.Status.PRESENT,
                                                      missing_since=None, updated_at=now)
    report.data["reappeared"] = len(reappeared)
    for item, pk in readopt:
        _readopt(item, pk, report)

    # 3. Rows whose file vanished become missing (not under folders we could not list).
    vanished = [r[0] for (root_id, rel), r in rows.items()
                if r[3] == LoraModel.Status.PRESENT and not _under(rel, blind.get(root_id, []))]
    for chunk in _chunks(vanished):
        LoraModel.objects.filter(pk__in=chunk).update(status=LoraModel.Status.MISSING,
                                                      missing_since=now, updated_at=now)
    moved_ids: set[int] = set()
    missing_index = _MissingIndex()

    # 4. Hash and read what changed, in parallel; write from this thread, in batches.
    total, done = len(found), report.data["unchanged"]
    if reporter:
        reporter.step(done, total, f"{done} unchanged, {len(todo)} to read")
    if progress:
        progress(done, total, "")
    chunk_bytes = settings.LORA_HASH_CHUNK_BYTES
    row_ids = {id(item): pk for item, pk in todo}
    pending_items = iter(todo)
    batch = _Batch()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lora-hash") as pool:
        running = set()

        def submit_more():
            while len(running) < workers * 2:
                nxt = next(pending_items, None)
                if nxt is None:
                    return
                running.add(pool.submit(_hash_one, nxt[0], chunk_bytes))

        submit_more()
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.discard(future)
                    item, hashes, error = future.result()
                    batch.open()
                    outcome, pk = _record(item, row_ids[id(item)], hashes, error, report,
                                          missing_index)
                    if outcome == "moved":
                        moved_ids.add(pk)
                    done += 1
                    if reporter:
                        reporter.step(done, total, item.relative)
                    batch.wrote()
                    if progress:
                        progress(done, total, item.relative)
                if reporter and reporter.should_cancel():
                    report.data["canceled"] = True
                    for future in running:
                        future.cancel()
                    break
                submit_more()
        except BaseException:
            batch.close(sys.exc_info())
            raise
        batch.close()
    report.data["missing"] = len(set(vanished) - moved_ids)
    report.data["seconds"] = round(time.monotonic() - started, 3)
    return report.data


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _under(rel: str, folders: list[str]) -> bool:
    return any(f == "" or rel == f or rel.startswith(f + "/") for f in folders)


def _readopt(item: FoundFile, pk: int, report: _Report) -> None:
    """An unchanged file got a sidecar since the last scan: adopt it (no re-hash)."""
    lora = LoraModel.objects.select_related("root").get(pk=pk)
    adopted, problems = sidecars_adopt(path=item.path, root_path=item.root.path)
    for problem in problems:
        report.error(item.root, item.relative, problem)
    _apply_adopted(lora, adopted,
                   header_words=trigger_words_from_metadata(lora.header_metadata))
    lora.save()


def _record(item: FoundFile, pk: int | None, hashes: FileHashes | None, error: str,
            report: _Report, missing: _MissingIndex) -> tuple[str, int]:
    """Write one re-read file; returns ("new" | "updated" | "moved", row id), counted in
    ``report``."""
    info = None
    if hashes is not None and not error:
        if hashes.size == 0:
            error = "Empty file (0 bytes)."
        else:
            info, error = _header(item, hashes)
    outcome = "updated"
    lora = LoraModel.objects.select_related("root").filter(pk=pk).first() if pk else None
    if lora is None:  # new (or its row was deleted since the walk)
        lora = missing.claim(hashes.sha256, os.path.basename(item.path)) if hashes else None
        outcome = "moved" if lora else "new"
        if lora is None:
            lora = LoraModel(root=item.root)
        lora.name = os.path.basename(item.relative)[:-len(".safetensors")][:255]
    _apply_file(lora, item, hashes, info, error)
    problems = []
    if item.has_info or item.has_preview:  # the walk saw the folder's names
        adopted, problems = sidecars_adopt(path=item.path, root_path=item.root.path)
        _apply_adopted(lora, adopted, header_words=info.trigger_words if info else [])
    try:
        with transaction.atomic():
            lora.save()
    except IntegrityError as exc:  # another operation took this path meanwhile
        report.error(item.root, item.relative, f"Not recorded: {exc}")
        return "error", 0
    report.data[outcome] += 1
    if error:
        report.error(item.root, item.relative, error)
    for problem in problems:
        report.error(item.root, item.relative, problem)
    return outcome, lora.pk


def lora_file_record(*, root: LibraryRoot, path: str) -> LoraModel:
    """Read one file inside ``root`` exactly as a scan would (hashes, header, sidecars, moved
    rows) and return its row; used when a file arrives outside a scan (downloads, register).

    Raises:
        ApplicationError: 400 ``lora_unreadable`` when the row could not be recorded.
    """
    from ..paths import relative_to_root
    from ..sidecars import preview_path, sidecar_paths

    relative = relative_to_root(root.path, path)
    st = os.stat(path)
    found = FoundFile(root=root, relative=relative, path=path, size=st.st_size,
                      mtime=st.st_mtime, inode=st.st_ino, device=st.st_dev,
                      has_info=any(p.endswith(INFO_SUFFIXES) for p in sidecar_paths(path)),
                      has_preview=preview_path(path) is not None)
    _, hashes, error = _hash_one(found, settings.LORA_HASH_CHUNK_BYTES)
    pk = (LoraModel.objects.filter(root=root, relative_path=relative)
          .exclude(status=LoraModel.Status.TRASHED).values_list("pk", flat=True).first())
    report = _Report([root])
    _, pk = _record(found, pk, hashes, error, report, _MissingIndex())
    if not pk:
        raise ApplicationError("lora_unreadable", report.data["errors"][0]["error"]
                               if report.data["errors"] else f"Cannot record {relative}.")
    return LoraModel.objects.select_related("root").get(pk=pk)


def library_scan_start(*, user) -> Job:
    """Create a queued ``lora_scan`` Job and enqueue ``loras.lora_scan`` on queue "io" after
    commit.

    Raises:
        ApplicationError: 409 ``job_running`` when a scan job is already queued or running;
            503 ``broker_unavailable``.
    """
    # Enqueued in the creating transaction; a dead broker answers 503 broker_unavailable (#7).
    return job_create_exclusive(kind=JOB_KIND, user=user, what="A library scan",
                                message="Waiting to scan the library.", task=lora_scan_task,
                                queue="io")


def library_scan_run(*, job_id: str, listener: Callable[[int, int], None] | None = None) -> Job:
    """Run the scan job ``job_id`` through the job kernel: succeeded with the report as
    ``result``, canceled (partial report kept), or failed ``scan_failed``. ``listener(step,
    total)`` sees every file counted (a progress bar)."""

    def work(run: JobRun):
        report = library_scan(reporter=run.reporter)
        if report["canceled"]:
            raise JobCanceled("Scan canceled.", result=report)
        return report, _summary(report)

    return job_run(job_id=job_id, work=work, message="Scanning the library.",
                   fail_code="scan_failed", listener=listener)


def _summary(report: dict) -> str:
    return (f"{report['files_seen']} files: {report['new']} new, {report['updated']} updated, "
            f"{report['moved']} moved, {report['missing']} missing, "
            f"{report['errors_total']} errors in {report['seconds']} s")
