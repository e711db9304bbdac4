"""Import, delete, set-as-preview and open-folder of example images.

Safety (docs/architecture.md#files-and-safety): uploads are size-limited, decoded by Pillow under
the pixel limit and re-encoded; server-side import paths must stay inside
``EXAMPLE_IMAGES_IMPORT_ROOTS`` after symlinks are resolved; a failed import leaves no file
behind; no answer ever holds an absolute path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Max

from core.exceptions import ApplicationError
from loras.models import LoraModel
from loras.paths import path_is_inside

from ..files import (
    DecodedImage,
    example_path,
    examples_root,
    image_decode,
    lora_folder,
    remove_quietly,
    write_atomic,
)
from ..models import ExampleImage

MAX_IMPORT_FILES = 50


def _parse_parameters(text: str) -> dict:
    """Prompt, negative prompt, seed, steps, sampler and CFG from A1111 ``parameters`` text
    (the format ``images.pngmeta.build_infotext`` writes); ``{}`` when there is none."""
    if not text:
        return {}
    lines = text.strip().split("\n")
    last = lines[-1] if lines and "Steps:" in lines[-1] else ""
    body = lines[:-1] if last else lines
    prompt, negative = [], []
    target = prompt
    for line in body:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:"):].strip()
        target.append(line)
    out: dict = {"prompt": "\n".join(prompt).strip(),
                 "negative_prompt": "\n".join(negative).strip()}
    for part in last.split(", "):
        key, _, value = part.partition(": ")
        try:
            if key == "Seed":
                out["seed"] = int(value)
            elif key == "Steps":
                out["steps"] = int(value)
            elif key == "CFG scale":
                out["cfg_scale"] = float(value)
            elif key == "Sampler":
                out["sampler"] = value[:100]
        except ValueError:
            continue
    return out


def import_path_resolve(path: str) -> str:
    """The real path of server-side file ``path`` (absolute, or relative to the first import
    root), which must be a regular file inside one of ``EXAMPLE_IMAGES_IMPORT_ROOTS``.

    Raises:
        ApplicationError: 400 ``invalid_path`` (NUL, ``..``, outside every root, symlink out,
            not a file, or no import root configured).
    """
    roots = [os.path.realpath(r) for r in settings.EXAMPLE_IMAGES_IMPORT_ROOTS]
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ApplicationError("invalid_path", "Give a file path without NUL characters.")
    if ".." in path.replace("\\", "/").split("/"):
        raise ApplicationError("invalid_path", "Paths may not contain '..'.")
    if not roots:
        raise ApplicationError("invalid_path", "Server-side import is off: no "
                               "EXAMPLE_IMAGES_IMPORT_ROOTS is configured.")
    full = os.path.realpath(path if os.path.isabs(path) else os.path.join(roots[0], path))
    if not any(path_is_inside(root, full) for root in roots):
        raise ApplicationError("invalid_path", "The path is outside the allowed import "
                               "folders.")
    if not os.path.isfile(full):
        raise ApplicationError("invalid_path", "No such file in the import folders.")
    return full


def _read_limited(fh) -> bytes:
    data = fh.read(settings.EXAMPLE_IMAGES_MAX_BYTES + 1)
    if len(data) > settings.EXAMPLE_IMAGES_MAX_BYTES:
        raise ApplicationError("file_too_large", "Images are limited to "
                               f"{settings.EXAMPLE_IMAGES_MAX_BYTES} bytes.",
                               fields={"files": ["File too large."]})
    return data


def example_import(*, lora: LoraModel, uploads: list | None = None,
                   paths: list[str] | None = None) -> list[ExampleImage]:
    """Add uploaded files (Django ``UploadedFile``s) and/or server-side files as example
    images of ``lora`` (source ``import``); PNG ``parameters`` fill prompt, seed, steps...

    All files are validated first; if any is refused nothing is stored, and a failure while
    writing removes the files already written (temp files are removed by ``write_atomic``).

    Raises:
        ApplicationError: 400 ``no_files`` / ``too_many_files`` / ``file_too_large`` /
            ``image_too_large`` / ``invalid_image`` / ``invalid_path`` / ``lora_not_hashed``.
    """
    uploads, paths = list(uploads or []), list(paths or [])
    if not uploads and not paths:
        raise ApplicationError("no_files", "Give files (multipart 'files') or server-side "
                               "'paths'.", fields={"files": ["No file given."]})
    if len(uploads) + len(paths) > MAX_IMPORT_FILES:
        raise ApplicationError("too_many_files", f"At most {MAX_IMPORT_FILES} files at once.")
    folder = lora_folder(lora.sha256)
    decoded: list[DecodedImage] = []
    for upload in uploads:
        if upload.size is not None and upload.size > settings.EXAMPLE_IMAGES_MAX_BYTES:
            raise ApplicationError("file_too_large", "Images are limited to "
                                   f"{settings.EXAMPLE_IMAGES_MAX_BYTES} bytes.",
                                   fields={"files": [f"{upload.name}: too large."]})
        upload.seek(0)
        decoded.append(image_decode(_read_limited(upload), reencode=True))
    for path in paths:
        with open(import_path_resolve(path), "rb") as fh:
            decoded.append(image_decode(_read_limited(fh), reencode=True))
    written: list[str] = []
    try:
        with transaction.atomic():
            start = (ExampleImage.objects.filter(lora=lora).aggregate(m=Max("order"))["m"]
                     or 0) + 1
            rows = []
            for i, image in enumerate(decoded):
                rel = f"{folder}/import-{uuid.uuid4().hex[:16]}.{image.ext}"
                written.append(write_atomic(rel, image.data))
                rows.append(ExampleImage.objects.create(
                    lora=lora, sha256=folder, file=rel, source=ExampleImage.Source.IMPORT,
                    width=image.width, height=image.height, size=len(image.data),
                    order=start + i, **_parse_parameters(image.parameters)))
    except BaseException:
        for path in written:
            remove_quietly(path)
        raise
    return rows


def example_store_generated(*, lora: LoraModel, image, weight: float) -> ExampleImage:
    """Copy a generated ``images.Image`` of ``lora`` in as an example image (source
    ``generated``) with its parameters; idempotent per image."""
    found = ExampleImage.objects.filter(lora=lora, generated_image=image).first()
    if found:
        return found
    folder = lora_folder(lora.sha256)
    with image.file.open("rb") as fh:
        decoded = image_decode(_read_limited(fh))
    rel = f"{folder}/generated-{image.pk}.{decoded.ext}"
    path = write_atomic(rel, decoded.data)
    try:
        start = (ExampleImage.objects.filter(lora=lora).aggregate(m=Max("order"))["m"] or 0) + 1
        return ExampleImage.objects.create(
            lora=lora, sha256=folder, file=rel, source=ExampleImage.Source.GENERATED,
            width=decoded.width, height=decoded.height, size=len(decoded.data),
            prompt=image.prompt, negative_prompt=image.negative_prompt, seed=image.seed,
            steps=image.steps, sampler=image.sampler, cfg_scale=image.guidance_scale,
            resources=[{"type": "lora", "name": lora.name, "weight": weight},
                       {"type": "model", "name": image.model_name}],
            meta={"lora_weight": weight, "model": image.model_name,
                  "provider": image.provider}, generated_image=image, order=start)
    except BaseException:
        remove_quietly(path)
        raise


def example_delete(*, image: ExampleImage) -> None:
    """Remove ``image``'s row and its file together: the file is moved aside, the row deleted,
    then the file removed (it is put back when the delete fails). A file another row
    still uses (two LoRA rows with the same hash) stays."""
    shared = ExampleImage.objects.filter(file=image.file).exclude(pk=image.pk).exists()
    try:
        path = example_path(image.file)
    except ApplicationError:
        path = ""
    aside = ""
    if path and not shared and os.path.isfile(path):
        aside = os.path.join(os.path.dirname(path), f".deleting-{uuid.uuid4().hex}.tmp")
        os.replace(path, aside)
    try:
        with transaction.atomic():
            image.delete()
    except BaseException:
        if aside:
            os.replace(aside, path)
        raise
    if aside:
        remove_quietly(aside)


def example_set_preview(*, image: ExampleImage) -> LoraModel:
    """Copy ``image`` as its LoRA's preview (``<stem>.preview.<ext>`` next to the file).

    Raises:
        ApplicationError: 404 ``file_missing``; 400 from ``loras`` preview validation.
    """
    from loras.services.library import lora_preview_upload

    path = example_path(image.file)
    if not os.path.isfile(path):
        raise ApplicationError("file_missing", "The image file is missing.", status=404)
    with open(path, "rb") as fh:
        upload = SimpleUploadedFile(os.path.basename(path), fh.read())
    return lora_preview_upload(lora=image.lora, upload=upload)


def example_folder_display(folder: str) -> str:
    """Where example folder ``folder`` (relative to ``EXAMPLE_IMAGES_ROOT``) is, as a path a
    person can find: relative to the enabled LoRA library root that holds the examples root
    (prefixed with the library root's name), else to the examples root's parent (e.g.
    ``example_images/<sha256>``). Never an absolute path (the API shows no server layout)."""
    from loras.models import LibraryRoot

    root = examples_root()
    full = os.path.join(root, folder)
    for lib in LibraryRoot.objects.filter(enabled=True).order_by("path"):
        base = os.path.realpath(lib.path)
        if path_is_inside(base, root):
            name = lib.name or os.path.basename(base) or base
            return f"{name}/{os.path.relpath(full, base)}".replace(os.sep, "/")
    return f"{os.path.basename(root)}/{folder}".replace(os.sep, "/")


def example_open_folder(*, lora: LoraModel, local_request: bool) -> dict:
    """The LoRA's folder, ``{"folder": relative to the examples root (the LoRA's SHA-256),
    "path": :func:`example_folder_display`, "images": example images stored in it, "exists",
    "opened"}``; opened with the desktop file manager only when ``EXAMPLE_IMAGES_OPEN_FOLDER``
    is on and the request comes from this machine (``local_request``)."""
    folder = lora_folder(lora.sha256)
    path = example_path(folder)
    exists = os.path.isdir(path)
    opened = False
    if exists and local_request and settings.EXAMPLE_IMAGES_OPEN_FOLDER:
        opener = ({"darwin": "open", "win32": "explorer"}.get(sys.platform) or "xdg-open")
        if shutil.which(opener):
            subprocess.Popen([opener, path], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            opened = True
    images = ExampleImage.objects.filter(lora=lora, file__startswith=f"{folder}/").count()
    return {"folder": folder, "path": example_folder_display(folder), "images": images,
            "exists": exists, "opened": opened}
