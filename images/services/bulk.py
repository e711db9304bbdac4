"""Bulk actions of the gallery on a user's own images: delete, move to a project, make
public/private, favourite, and a streamed ZIP of their PNG files.

Rules (every function): ``ids`` is a list of image ids, 1 to :data:`BULK_MAX` of them
(duplicates count once); every id must name an image of ``user`` — one id of someone else's
image (or of none) makes the whole call a 404 ``not_found`` that changes nothing, so the
existence of others' images is not revealed. Deletes go through
:func:`images.services.library.image_delete`, which removes the files after the commit.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction

from core.exceptions import ApplicationError

from ..models import Image, Project
from .library import image_delete

#: The most images one bulk call (and one ZIP) may name.
BULK_MAX = 500
#: Actions of :func:`images_bulk` and what they set.
BULK_ACTIONS = ("delete", "move", "publish", "unpublish", "favorite", "unfavorite")
_FLAGS = {"publish": ("is_public", True), "unpublish": ("is_public", False),
          "favorite": ("is_favorite", True), "unfavorite": ("is_favorite", False)}
#: Bytes read from a stored file per ZIP write (and per chunk handed to the response).
ZIP_CHUNK = 256 * 1024


def _clean_ids(ids) -> list[int]:
    """The distinct ids in order; 400 ``invalid`` when empty, 400 ``too_many`` past the cap."""
    seen: dict[int, None] = {}
    for raw in ids or []:
        try:
            seen.setdefault(int(raw), None)
        except (TypeError, ValueError):
            raise ApplicationError("invalid", "ids: a list of image ids (integers).",
                                   fields={"ids": ["A list of image ids (integers)."]}) from None
    out = list(seen)
    if not out:
        raise ApplicationError("invalid", "ids: name at least one image.",
                               fields={"ids": ["Name at least one image."]})
    if len(out) > BULK_MAX:
        msg = f"At most {BULK_MAX} images at once ({len(out)} given)."
        raise ApplicationError("too_many", f"ids: {msg}", fields={"ids": [msg]})
    return out


def _own_images(*, user, ids: list[int]):
    """``user``'s images named by ``ids`` (a queryset); 404 when any id is not one of them."""
    qs = Image.objects.filter(user_id=getattr(user, "pk", None), pk__in=ids)
    found = set(qs.values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise ApplicationError("not_found", f"No such image of yours: {shown}.", status=404)
    return qs


def images_bulk(*, user, action: str, ids, project: int | None = None) -> dict:
    """Apply ``action`` to ``user``'s images ``ids``, all or nothing.

    Args:
        action: one of :data:`BULK_ACTIONS`. ``move`` puts the images in ``project`` (the id of
            one of ``user``'s projects) or, with ``project=None``, in no project.
        ids: image ids (ints).

    Returns:
        ``{"action": str, "count": int, "ids": [int]}`` — the images changed (or deleted).

    Raises:
        ApplicationError: 400 ``invalid`` (unknown action, no ids), 400 ``too_many`` (over
            :data:`BULK_MAX`), 404 ``not_found`` (an id or the project is not ``user``'s).
    """
    if action not in BULK_ACTIONS:
        msg = f"Unknown action {action!r}; one of {', '.join(BULK_ACTIONS)}."
        raise ApplicationError("invalid", f"action: {msg}", fields={"action": [msg]})
    ids = _clean_ids(ids)
    qs = _own_images(user=user, ids=ids)
    with transaction.atomic():
        if action == "delete":
            for image in qs.select_for_update():
                image_delete(image=image, user=user)
        elif action == "move":
            target = None
            if project is not None:
                target = Project.objects.filter(pk=project, owner_id=user.pk).first()
                if target is None:
                    raise ApplicationError("not_found", "No such project of yours.", status=404)
            qs.update(project=target)
            if target is not None:
                target.save(update_fields=["updated_at"])  # projects list recent first
        else:
            field, value = _FLAGS[action]
            qs.update(**{field: value})
    return {"action": action, "count": len(ids), "ids": ids}


# ------------------------------------------------------------------ ZIP


@dataclass(frozen=True)
class ZipMember:
    """One file of a ZIP: its name in the archive, its storage and stored name, its time."""

    arcname: str
    storage: object
    name: str
    date_time: tuple


def _slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"<[^>]*>", " ", text or "")  # LoRA tags
    slug = re.sub(r"[^A-Za-z0-9]+", "-", words).strip("-").lower()
    return slug[:limit].rstrip("-") or "image"


def images_zip_plan(*, user, ids) -> list[ZipMember]:
    """What :func:`zip_stream` writes for ``user``'s images ``ids``: each image's PNG as
    ``<id>-<prompt words>.png``, in the order of ``ids``. Reads the database; the stream
    itself only reads files.

    Raises:
        ApplicationError: as :func:`images_bulk` (400 ``invalid``/``too_many``, 404).
    """
    ids = _clean_ids(ids)
    rows = {img.pk: img for img in _own_images(user=user, ids=ids)
            .only("id", "file", "prompt", "created_at")}
    out = []
    for pk in ids:
        img = rows[pk]
        ext = (img.file.name.rsplit(".", 1)[-1] if "." in img.file.name else "png").lower()
        stamp = img.created_at.timetuple()[:6]
        out.append(ZipMember(f"{pk}-{_slug(img.prompt)}.{ext}", img.file.storage,
                             img.file.name, max(stamp, (1980, 1, 1, 0, 0, 0))))
    return out


class _Sink:
    """A write-only file object whose bytes are taken out by :meth:`take` (ZipFile writes
    to it; it has no ``tell``/``seek``, so ZipFile writes data descriptors and never seeks)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def zip_stream(members: list[ZipMember]) -> Iterator[bytes]:
    """The ZIP archive of ``members`` as byte chunks of about :data:`ZIP_CHUNK`, written as
    it is read (memory stays near one chunk whatever the total). PNGs are stored, not
    deflated (they are compressed already). A file missing from storage is left out and
    named in ``MISSING.txt`` at the end of the archive.

    The format (local headers with data descriptors for an unseekable output) is Python's
    ``zipfile``: https://docs.python.org/3/library/zipfile.html; the archive's layout:
    docs/gallery.md#selecting-and-bulk-actions.
    """
    sink = _Sink()
    missing = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for m in members:
            try:
                handle = m.storage.open(m.name, "rb")
            except (FileNotFoundError, OSError):
                missing.append(m.arcname)
                continue
            with handle:
                info = zipfile.ZipInfo(m.arcname, date_time=m.date_time)
                info.compress_type = zipfile.ZIP_STORED
                try:
                    info.file_size = m.storage.size(m.name)
                except (OSError, NotImplementedError):
                    pass
                with zf.open(info, "w", force_zip64=info.file_size > 2**31) as dest:
                    while chunk := handle.read(ZIP_CHUNK):
                        dest.write(chunk)
                        if data := sink.take():
                            yield data
            if data := sink.take():
                yield data
        if missing:
            zf.writestr("MISSING.txt", "Files missing from storage, left out:\n"
                        + "\n".join(missing) + "\n")
    if data := sink.take():
        yield data
