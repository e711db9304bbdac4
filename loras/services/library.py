"""Library operations on LoRA files: patch, preview, rename, move, trash, restore, exclude.

Safety rules (docs/architecture.md#files-and-safety):

- a LoRA file and its sidecars (``loras.sidecars``) move together, per file atomically: every
  target is checked first, then each file is moved without ever overwriting (a hard link then
  an unlink on one filesystem, which fails if the target exists; copy to a temporary file +
  fsync + link + unlink across filesystems);
- if a move fails mid-way, the files already moved go back; the DB row is updated in a
  transaction only after the disk moves succeeded, and if that update fails the files go back;
- deleting moves the files into ``settings.LORA_TRASH_DIR/<root id>/<relative path>``
  (a ``~N`` suffix on the stem when taken) with a :class:`TrashEntry` to restore them;
- every path from a request goes through ``loras.paths``;
- a LoRA whose file or any sidecar has a real path outside its root (a symlinked folder or
  file pointing elsewhere) is never changed on disk: :func:`lora_files_guard` (the one guard,
  ``loras.paths.real_path_in_root``) answers 400 ``outside_root`` before anything moves. The
  moves act on the guarded paths (folders resolved), so a symlink is moved, never its target.

Permissions: the API lets library managers call these (staff or ``loras.manage_library``,
``loras.permissions``); roots are staff-only (``loras.api.views``).
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import tempfile
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from core.exceptions import ApplicationError
from core.storage import fsync_dir

from ..files import write_atomic
from ..models import LibraryRoot, LoraModel, TrashEntry
from ..paths import normalize_relative, real_path_in_root, resolve_in_root
from ..sidecars import PREVIEW_SUFFIXES, SIDECAR_SUFFIXES, sidecar_suffixes, stem_of

PREVIEW_MAX_BYTES = 20 * 1024 * 1024  # bytes, upload or URL
PREVIEW_FETCH_TIMEOUT = 20.0  # seconds per connect/read
NAME_MAX_LENGTH = 200  # characters of a file stem


# ----------------------------------------------------------------------------- file moves
def _copy_no_overwrite(src: str, dst: str) -> None:
    """Copy ``src`` to a temporary file next to ``dst``, fsync, link it to ``dst`` (fails if
    taken), then unlink ``src``."""
    fd, tmp = tempfile.mkstemp(prefix=".atelier-", suffix=".part", dir=os.path.dirname(dst))
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 8 * 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(src, tmp)
        os.link(tmp, dst)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    os.unlink(src)


def file_move_no_overwrite(src: str, dst: str) -> None:
    """Move the file ``src`` to ``dst`` (absolute paths), never replacing an existing ``dst``.

    Raises:
        FileExistsError: ``dst`` exists (nothing changed).
        OSError: other failures (nothing changed, or ``src`` still in place).
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            _copy_no_overwrite(src, dst)
            return
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # No hard links on this filesystem: check, then rename (a small race, documented).
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)
    fsync_dir(os.path.dirname(dst))


@dataclass
class _Move:
    src: str
    dst: str


def _moves_apply(moves: list[_Move], *, conflict_code: str) -> None:
    """Move every pair, all or nothing: targets checked first; on a failure the files already
    moved go back.

    Raises:
        ApplicationError: 409 ``conflict_code`` when a target exists; 400 ``move_failed`` on an
            OS error (everything rolled back).
    """
    taken = [m.dst for m in moves if os.path.lexists(m.dst)]
    if taken:
        raise ApplicationError(conflict_code, f"{os.path.basename(taken[0])} already exists "
                               "at the target; nothing was changed.", status=409)
    done: list[_Move] = []
    try:
        for move in moves:
            os.makedirs(os.path.dirname(move.dst), exist_ok=True)
            file_move_no_overwrite(move.src, move.dst)
            done.append(move)
    except OSError as exc:
        _moves_undo(done)
        if isinstance(exc, FileExistsError):
            raise ApplicationError(conflict_code, "A target appeared while moving; nothing was "
                                   "changed.", status=409) from None
        raise ApplicationError("move_failed", f"Could not move {os.path.basename(move.src)}: "
                               f"{exc.strerror or exc}; nothing was changed.") from None


def _moves_undo(done: list[_Move]) -> None:
    for move in reversed(done):
        try:
            file_move_no_overwrite(move.dst, move.src)
        except OSError:  # pragma: no cover - leave it where it is rather than lose it
            pass


@dataclass
class LoraFiles:
    """A LoRA's file and its existing sidecars as the guard located them (absolute paths,
    folders resolved): ``sidecars`` is ``[(suffix, path)]`` in suffix order."""

    path: str
    sidecars: list[tuple[str, str]]


def lora_files_guard(*, lora: LoraModel, known_only: bool = False) -> LoraFiles:
    """The file and sidecars of ``lora`` that a mutation may touch, each checked by
    :func:`loras.paths.real_path_in_root` against the LoRA's root (``known_only``: the known
    sidecar suffixes only, without listing the folder: a plan).

    Raises:
        ApplicationError: 400 ``outside_root`` when the real path of the file or of any
            sidecar leaves the root (nothing is touched).
    """
    root_path = lora.root.path
    path = real_path_in_root(root_path, lora.abs_path)
    stem = stem_of(path)
    return LoraFiles(path, [(suffix, real_path_in_root(root_path, stem + suffix))
                            for suffix in sidecar_suffixes(path, known_only=known_only)])


def _relocate(*, lora: LoraModel, root: LibraryRoot, relative_path: str, conflict_code: str,
              extra_update=None) -> LoraModel:
    """Move ``lora``'s file and sidecars to ``relative_path`` in ``root`` and update its row.

    Raises:
        ApplicationError: 400 ``outside_root`` (source or target), 404 ``file_missing``,
            409 ``conflict_code``, 400 ``move_failed``.
    """
    files = lora_files_guard(lora=lora)
    src = files.path
    if not os.path.isfile(src):
        raise ApplicationError("file_missing", "The LoRA file is not on disk; rescan first.",
                               status=404)
    dst = resolve_in_root(root.path, relative_path)
    relative_path = normalize_relative(relative_path)
    if os.path.normcase(dst) == os.path.normcase(src):
        return lora
    if LoraModel.objects.filter(root=root, relative_path=relative_path).exclude(
            status=LoraModel.Status.TRASHED).exclude(pk=lora.pk).exists():
        raise ApplicationError(conflict_code, f"Another LoRA is registered at {relative_path}.",
                               status=409)
    dst_stem = stem_of(dst)
    moves = [_Move(src, dst)] + [_Move(path, dst_stem + s) for s, path in files.sidecars]
    strays = [dst_stem + s for s in SIDECAR_SUFFIXES if os.path.lexists(dst_stem + s)]
    if strays:  # it would become this LoRA's sidecar: a conflict too
        raise ApplicationError(conflict_code, f"{os.path.basename(strays[0])} already exists "
                               "at the target; nothing was changed.", status=409)
    _moves_apply(moves, conflict_code=conflict_code)
    old_rel_stem = os.path.splitext(lora.relative_path)[0]
    new_rel_stem = os.path.splitext(relative_path)[0]
    try:
        with transaction.atomic():
            folder, _, file_name = relative_path.rpartition("/")
            lora.root = root
            lora.relative_path = relative_path
            lora.folder = folder
            lora.file_name = file_name
            if lora.preview and lora.preview.startswith(old_rel_stem) and \
                    lora.preview[len(old_rel_stem):] in PREVIEW_SUFFIXES:
                lora.preview = new_rel_stem + lora.preview[len(old_rel_stem):]
            if extra_update:
                extra_update(lora)
            lora.save()
    except Exception:
        _moves_undo(moves)
        lora.refresh_from_db()
        raise
    return lora


# ----------------------------------------------------------------------------- rename / move
def lora_name_validate(name: str) -> str:
    """A safe file stem from ``name`` (a trailing ``.safetensors`` is dropped).

    Raises:
        ApplicationError: 400 ``invalid_name`` (empty, too long, '/', '\\', NUL, '..', leading
            dot, control characters).
    """
    name = (name or "").strip()
    if name.lower().endswith(".safetensors"):
        name = name[: -len(".safetensors")]
    if (not name or len(name) > NAME_MAX_LENGTH or any(c in name for c in "/\\\x00")
            or name.startswith(".") or ".." in name or any(ord(c) < 32 for c in name)):
        raise ApplicationError("invalid_name", "A name is a file name without '/', '\\', '..', "
                               f"a leading dot or control characters, at most {NAME_MAX_LENGTH} "
                               "characters.", fields={"name": ["Invalid file name."]})
    return name


def lora_rename(*, lora: LoraModel, name: str) -> LoraModel:
    """Rename ``lora``'s file (new stem ``name``, same folder and extension) and every sidecar.

    Raises:
        ApplicationError: 400 ``invalid_name``; 409 ``name_taken`` when the file or a sidecar
            target exists (nothing changed); 404 ``file_missing``.
    """
    name = lora_name_validate(name)
    ext = os.path.splitext(lora.file_name)[1] or ".safetensors"
    target = posixpath.join(lora.folder, name + ext) if lora.folder else name + ext

    def set_name(row):
        row.name = name

    return _relocate(lora=lora, root=lora.root, relative_path=target, conflict_code="name_taken",
                     extra_update=set_name)


def lora_move(*, lora: LoraModel, folder: str, root: LibraryRoot | None = None) -> LoraModel:
    """Move ``lora`` (file + sidecars) into ``folder`` (relative to ``root``, default its own
    root; created if missing).

    Raises:
        ApplicationError: 400 ``invalid_path``; 409 ``path_taken``; 404 ``file_missing``.
    """
    root = root or lora.root
    folder = normalize_relative(folder)
    resolve_in_root(root.path, folder)
    target = posixpath.join(folder, lora.file_name) if folder else lora.file_name
    return _relocate(lora=lora, root=root, relative_path=target, conflict_code="path_taken")


def _bulk(ids: list[int], action) -> list[dict]:
    results = []
    loras = {lo.pk: lo for lo in LoraModel.objects.filter(pk__in=ids).select_related("root")}
    for pk in ids:
        lora = loras.get(pk)
        if lora is None:
            results.append({"id": pk, "ok": False, "code": "not_found",
                            "message": "No such LoRA."})
            continue
        try:
            action(lora)
            results.append({"id": pk, "ok": True})
        except ApplicationError as exc:
            results.append({"id": pk, "ok": False, "code": exc.code, "message": exc.message})
    return results


def lora_bulk_move(*, ids: list[int], folder: str, root: LibraryRoot | None = None) -> list[dict]:
    """Move each LoRA of ``ids`` into ``folder``; one result per id
    ``{id, ok, code?, message?}`` (a conflict on one file does not stop the others).

    Raises:
        ApplicationError: 400 ``invalid_path`` for a bad folder (before anything moves).
    """
    folder = normalize_relative(folder)
    if root is not None:
        resolve_in_root(root.path, folder)

    def move(lora):
        if lora.status != LoraModel.Status.PRESENT:
            raise ApplicationError("not_present", f"The LoRA is {lora.status}.", status=409)
        lora_move(lora=lora, folder=folder, root=root)
    return _bulk(ids, move)


# ----------------------------------------------------------------------------- trash
def _trash_dir() -> str:
    return os.path.abspath(str(settings.LORA_TRASH_DIR))


def _trash_target(root: LibraryRoot, relative_path: str, suffixes: list[str]) -> str:
    """A relative path in the trash for ``relative_path`` whose file and sidecars are free."""
    base = _trash_dir()
    stem, ext = os.path.splitext(f"{root.pk}/{relative_path}")
    for n in range(0, 10_000):
        candidate = f"{stem}{f'~{n}' if n else ''}"
        paths = [candidate + ext] + [candidate + s for s in suffixes]
        if not any(os.path.lexists(os.path.join(base, *p.split("/"))) for p in paths):
            return candidate + ext
    raise ApplicationError("trash_full", "No free name in the trash.", status=409)


def _in_trash(trash_rel: str) -> str:
    """The absolute path of ``trash_rel`` (relative to the trash folder), guarded."""
    trash = _trash_dir()
    return real_path_in_root(trash, os.path.join(trash, *trash_rel.split("/")))


def lora_trash(*, lora: LoraModel) -> TrashEntry:
    """Move ``lora``'s file and sidecars into the trash, record a TrashEntry, mark it trashed.

    Raises:
        ApplicationError: 409 ``already_trashed``; 400 ``outside_root``; 404 ``file_missing``;
            400 ``move_failed``.
    """
    if lora.status == LoraModel.Status.TRASHED:
        raise ApplicationError("already_trashed", "The LoRA is already in the trash.", status=409)
    files = lora_files_guard(lora=lora)
    if not os.path.isfile(files.path):
        raise ApplicationError("file_missing", "The LoRA file is not on disk.", status=404)
    suffixes = [suffix for suffix, _ in files.sidecars]
    trash_rel = _trash_target(lora.root, lora.relative_path, suffixes)
    trash_abs = _in_trash(trash_rel)
    trash_abs_stem = stem_of(trash_abs)
    rel_stem = os.path.splitext(lora.relative_path)[0]
    trash_rel_stem = os.path.splitext(trash_rel)[0]
    moves = [_Move(files.path, trash_abs)]
    moves += [_Move(path, trash_abs_stem + s) for s, path in files.sidecars]
    _moves_apply(moves, conflict_code="trash_conflict")
    try:
        with transaction.atomic():
            entry = TrashEntry.objects.create(
                lora=lora, root=lora.root, original_relative_path=lora.relative_path,
                trash_path=trash_rel,
                sidecars=[{"original": rel_stem + s, "trash": trash_rel_stem + s}
                          for s in suffixes])
            lora.status = LoraModel.Status.TRASHED
            lora.save(update_fields=["status", "updated_at"])
    except Exception:
        _moves_undo(moves)
        raise
    return entry


def lora_restore(*, lora: LoraModel) -> LoraModel:
    """Move a trashed LoRA's file and sidecars back to their original paths; status present.

    Raises:
        ApplicationError: 409 ``not_trashed``; 409 ``path_taken`` when the original path (or a
            sidecar's) is now occupied on disk or by another LoRA (nothing overwritten);
            400 ``outside_root`` when a symlink now takes an original path out of the root;
            404 ``trash_missing`` when the trashed file is gone.
    """
    entry = lora.trash_entries.filter(restored_at__isnull=True).first()
    if lora.status != LoraModel.Status.TRASHED or entry is None:
        raise ApplicationError("not_trashed", "The LoRA is not in the trash.", status=409)
    root = entry.root
    src = _in_trash(entry.trash_path)
    if not os.path.isfile(src):
        raise ApplicationError("trash_missing", "The trashed file is gone.", status=404)
    if LoraModel.objects.filter(root=root, relative_path=entry.original_relative_path).exclude(
            status=LoraModel.Status.TRASHED).exists():
        raise ApplicationError("path_taken", "Another LoRA now lives at "
                               f"{entry.original_relative_path}.", status=409)
    moves = [_Move(src, resolve_in_root(root.path, entry.original_relative_path))]
    for side in entry.sidecars:
        side_src = _in_trash(side["trash"])
        if os.path.isfile(side_src):
            moves.append(_Move(side_src, resolve_in_root(root.path, side["original"])))
    _moves_apply(moves, conflict_code="path_taken")
    try:
        with transaction.atomic():
            entry.restored_at = timezone.now()
            entry.save(update_fields=["restored_at"])
            lora.root = root
            lora.relative_path = entry.original_relative_path
            lora.folder, _, lora.file_name = entry.original_relative_path.rpartition("/")
            lora.status = LoraModel.Status.PRESENT
            lora.save()
    except Exception:
        _moves_undo(moves)
        raise
    return lora


def lora_bulk_trash(*, ids: list[int]) -> list[dict]:
    """Trash each LoRA of ``ids``; one result per id ``{id, ok, code?, message?}``."""
    return _bulk(ids, lambda lora: lora_trash(lora=lora))


# ----------------------------------------------------------------------------- fields
def lora_set_excluded(*, lora: LoraModel, excluded: bool) -> LoraModel:
    """Exclude a LoRA from lists (and auto-organize) or include it again."""
    lora.excluded = bool(excluded)
    lora.save(update_fields=["excluded", "updated_at"])
    return lora


PATCHABLE = ("tags", "notes", "trigger_words", "preferred_weight", "nsfw_level", "usage_tips",
             "base_model")


def lora_update(*, lora: LoraModel, data: dict) -> LoraModel:
    """Write the user-editable shared fields present in ``data`` (validated by the API
    serializer): ``tags``/``trigger_words`` (lists of str), ``notes``, ``usage_tips`` (str),
    ``preferred_weight`` (float|None), ``nsfw_level`` (0..32), ``base_model`` (str, ≤ 50).

    What the user decides is remembered in ``user_overrides`` so that scans and Civitai
    refreshes respect it (docs/library.md#never-lose-what-the-user-or-the-file-said): a
    ``base_model`` the user set is kept ('' gives it back to the file and Civitai), and
    trigger words the user removed are not merged back. The A1111 ``<stem>.json`` sidecar is
    rewritten afterwards (``loras.services.sidecars``, when ``WRITE_SIDECARS``).
    (Favourites are per user: ``loras.favorites``.)"""
    fields = [f for f in PATCHABLE if f in data]
    overrides = dict(lora.user_overrides or {})
    if "trigger_words" in data:
        kept = set(data["trigger_words"])
        removed = [w for w in [*overrides.get("trigger_words_removed", []), *lora.trigger_words]
                   if w not in kept]
        overrides["trigger_words_removed"] = list(dict.fromkeys(removed))
    if "base_model" in data and (data["base_model"] != lora.base_model
                                 or not data["base_model"]):
        overrides["base_model"] = bool(data["base_model"])  # unchanged: no decision taken
    for field in fields:
        setattr(lora, field, data[field])
    if overrides != (lora.user_overrides or {}):
        lora.user_overrides = overrides
        fields.append("user_overrides")
    if fields:
        lora.save(update_fields=[*fields, "updated_at"])
        from .sidecars import sidecars_write

        sidecars_write(lora=lora)
    return lora


# ----------------------------------------------------------------------------- preview
def lora_preview_file(*, lora: LoraModel) -> str:
    """Absolute path of ``lora``'s preview image.

    Raises:
        ApplicationError: 404 ``no_preview`` when none is set or the file is gone.
    """
    if lora.preview:
        try:
            path = resolve_in_root(lora.root.path, lora.preview)
        except ApplicationError:
            path = ""
        if path and os.path.isfile(path):
            return path
    raise ApplicationError("no_preview", "This LoRA has no preview image.", status=404)


def _image_reencode(data: bytes) -> tuple[bytes, str]:
    """Verify ``data`` with Pillow and re-encode it; returns (bytes, extension).

    PNG and WebP stay PNG/WebP; everything else becomes JPEG. Images over
    ``PIL.Image.MAX_IMAGE_PIXELS`` pixels are refused (a decompression-bomb guard).

    Raises:
        ApplicationError: 400 ``invalid_image`` or ``image_too_large``.
    """
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if limit and probe.width * probe.height > limit:
                    raise Image.DecompressionBombError("too many pixels")
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                img.load()
                ext = {"PNG": "png", "WEBP": "webp"}.get(fmt, "jpg")
                if ext == "jpg" and img.mode not in ("RGB", "L"):
                    img = img.convert("RGB")
                out = io.BytesIO()
                img.save(out, format={"png": "PNG", "webp": "WEBP", "jpg": "JPEG"}[ext],
                         **({"quality": 92} if ext != "png" else {}))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApplicationError("image_too_large", "The image has too many pixels "
                               f"(limit {limit}).") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ApplicationError("invalid_image", "The file is not a readable image.",
                               fields={"file": ["Not a readable image."]}) from None
    return out.getvalue(), ext


def _preview_store(*, lora: LoraModel, data: bytes) -> LoraModel:
    """Write ``data`` (image bytes) as ``<stem>.preview.<ext>`` atomically, then point the row
    at it. An existing ``<stem>.preview.*`` of the same extension is replaced only once the new
    file is complete; other previews are left on disk untouched."""
    if len(data) > PREVIEW_MAX_BYTES:
        raise ApplicationError("image_too_large", f"Images are limited to {PREVIEW_MAX_BYTES} "
                               "bytes.")
    lora_files_guard(lora=lora)
    encoded, ext = _image_reencode(data)
    stem_rel = os.path.splitext(lora.relative_path)[0]
    target_rel = f"{stem_rel}.preview.{ext}"
    target = resolve_in_root(lora.root.path, target_rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    write_atomic(target, encoded)  # 0666 & ~umask, not mkstemp's 0600 (loras.files)
    lora.preview = target_rel
    lora.save(update_fields=["preview", "updated_at"])
    return lora


def lora_preview_upload(*, lora: LoraModel, upload) -> LoraModel:
    """Replace the preview with an uploaded image (a Django ``UploadedFile``), ≤ 20 MB.

    Raises:
        ApplicationError: 400 ``outside_root`` / ``image_too_large`` / ``invalid_image``.
    """
    lora_files_guard(lora=lora)
    if upload.size > PREVIEW_MAX_BYTES:
        raise ApplicationError("image_too_large", f"Images are limited to {PREVIEW_MAX_BYTES} "
                               "bytes.")
    return _preview_store(lora=lora, data=upload.read())


def lora_preview_from_url(*, lora: LoraModel, url: str) -> LoraModel:
    """Replace the preview with the image at ``url`` (allowed hosts only, every redirect hop
    checked; ≤ 20 MB; timeout ``PREVIEW_FETCH_TIMEOUT`` seconds).

    Raises:
        ApplicationError: 400 ``outside_root`` / ``url_not_allowed`` / ``fetch_failed`` /
            ``image_too_large`` / ``invalid_image``.
    """
    import requests

    from ..outbound import outbound_get

    lora_files_guard(lora=lora)  # before anything is fetched
    try:
        with requests.Session() as session:
            response = outbound_get(session, url, timeout=PREVIEW_FETCH_TIMEOUT)
            with response:
                if response.status_code != 200:
                    raise ApplicationError("fetch_failed", f"The URL answered HTTP "
                                           f"{response.status_code}.")
                chunks, total = [], 0
                for chunk in response.iter_content(64 * 1024):
                    total += len(chunk)
                    if total > PREVIEW_MAX_BYTES:
                        raise ApplicationError("image_too_large", "Images are limited to "
                                               f"{PREVIEW_MAX_BYTES} bytes.")
                    chunks.append(chunk)
    except requests.RequestException as exc:
        raise ApplicationError("fetch_failed", f"Could not fetch the image: {exc}.") from None
    return _preview_store(lora=lora, data=b"".join(chunks))
