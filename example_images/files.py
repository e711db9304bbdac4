"""Files of example images: the per-LoRA folder, atomic writes, and Pillow validation.

Layout: ``EXAMPLE_IMAGES_ROOT/<sha256>/<name>.<ext>`` where ``<sha256>`` is the LoRA's
whole-file SHA-256 (lower-case hex). Every path handed to or from the API is relative to the
root; :func:`example_path` resolves one with the library's guard
(``loras.paths.real_path_in_root``) and refuses anything outside the root (400), so every write
and delete below stays inside it.
"""

from __future__ import annotations

import glob
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from core.exceptions import ApplicationError
from core.storage import fsync_dir
from loras.paths import resolve_in_root

_SHA256 = re.compile(r"[0-9a-f]{64}")
FORMAT_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp",
                 "gif": "image/gif"}


def examples_root() -> str:
    """The absolute, symlink-resolved ``EXAMPLE_IMAGES_ROOT`` (created when missing)."""
    root = str(settings.EXAMPLE_IMAGES_ROOT)
    os.makedirs(root, exist_ok=True)
    return os.path.realpath(root)


def lora_folder(sha256: str) -> str:
    """The folder (relative to the root) of the LoRA whose sha256 is ``sha256``.

    Raises:
        ApplicationError: 400 ``lora_not_hashed`` when ``sha256`` is not 64 hex characters.
    """
    value = (sha256 or "").lower()
    if not _SHA256.fullmatch(value):
        raise ApplicationError("lora_not_hashed", "This LoRA has no SHA-256 yet; scan the "
                               "library first.")
    return value


def example_path(relative: str) -> str:
    """The absolute path of ``relative`` (a path inside the root; folders resolved, the last
    component kept, so a delete acts on a symlink itself).

    Raises:
        ApplicationError: 400 ``invalid_path`` for absolute paths, ``..`` or NUL; 400
            ``outside_root`` when a symlink (folder or file) leads out of the root.
    """
    return resolve_in_root(examples_root(), relative)


def existing_named(folder_rel: str, stem: str) -> str | None:
    """The relative path of a finished file ``<folder>/<stem>.<ext>`` if one exists."""
    folder = example_path(folder_rel)
    for found in sorted(glob.glob(os.path.join(glob.escape(folder), glob.escape(stem) + ".*"))):
        ext = found.rsplit(".", 1)[-1]
        if ext in CONTENT_TYPES and os.path.isfile(found):
            return f"{folder_rel}/{os.path.basename(found)}"
    return None


def write_atomic(relative: str, data: bytes) -> str:
    """Write ``data`` to ``relative`` (inside the root): temp file in the same folder, fsync,
    ``os.replace``, fsync of the folder. A crash leaves at most a hidden ``.tmp`` file; the temp
    file is removed on any failure. Returns the absolute path."""
    target = example_path(relative)
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(folder)
    return target


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@dataclass
class DecodedImage:
    """An image checked by Pillow: bytes to store, extension, size in pixels, and the A1111
    ``parameters`` text of a PNG (``''`` when none)."""

    data: bytes
    ext: str
    width: int
    height: int
    parameters: str = ""


def pixel_limit() -> int:
    """Largest width × height accepted: ``EXAMPLE_IMAGES_MAX_PIXELS`` and Pillow's
    ``Image.MAX_IMAGE_PIXELS``, whichever is smaller."""
    limits = [int(settings.EXAMPLE_IMAGES_MAX_PIXELS)]
    if Image.MAX_IMAGE_PIXELS:
        limits.append(int(Image.MAX_IMAGE_PIXELS))
    return min(limits)


def image_decode(data: bytes, *, optimize: bool = False, reencode: bool = False) -> DecodedImage:
    """Check ``data`` with Pillow (type sniffed from the bytes, never from a name or header).

    Args:
        data: the image bytes (at most ``EXAMPLE_IMAGES_MAX_BYTES``).
        optimize: shrink to ``EXAMPLE_IMAGES_OPTIMIZE_MAX_DIM`` pixels on the longest side and
            store as WebP (quality ``EXAMPLE_IMAGES_WEBP_QUALITY``).
        reencode: store a fresh encoding (uploads) instead of the original bytes; a PNG keeps
            its ``parameters`` text chunk.

    Raises:
        ApplicationError: 400 ``file_too_large`` (bytes), ``image_too_large`` (pixels, or a
            decompression bomb), ``invalid_image`` (not PNG/JPEG/WebP/GIF or unreadable).
    """
    if len(data) > settings.EXAMPLE_IMAGES_MAX_BYTES:
        raise ApplicationError("file_too_large", "Images are limited to "
                               f"{settings.EXAMPLE_IMAGES_MAX_BYTES} bytes.")
    limit = pixel_limit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                if fmt not in FORMAT_EXT:
                    raise ApplicationError("invalid_image", f"Unsupported image type {fmt}.",
                                           fields={"file": ["PNG, JPEG, WebP or GIF only."]})
                if probe.width * probe.height > limit:
                    raise Image.DecompressionBombError("too many pixels")
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                parameters = str(img.info.get("parameters") or "")
                width, height = img.size
                if not optimize and not reencode:
                    return DecodedImage(data, FORMAT_EXT[fmt], width, height, parameters)
                if optimize:
                    img = ImageOps.exif_transpose(img)
                    dim = int(settings.EXAMPLE_IMAGES_OPTIMIZE_MAX_DIM)
                    img.thumbnail((dim, dim))
                    if img.mode not in ("RGB", "RGBA"):
                        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
                    out = io.BytesIO()
                    img.save(out, format="WEBP",
                             quality=int(settings.EXAMPLE_IMAGES_WEBP_QUALITY))
                    return DecodedImage(out.getvalue(), "webp", img.width, img.height,
                                        parameters)
                ext = "png" if fmt in ("PNG", "GIF") else FORMAT_EXT[fmt]
                out = io.BytesIO()
                if ext == "png":
                    from PIL.PngImagePlugin import PngInfo

                    info = PngInfo()
                    if parameters:
                        info.add_text("parameters", parameters)
                    img.save(out, format="PNG", pnginfo=info)
                else:
                    if ext == "jpg" and img.mode not in ("RGB", "L"):
                        img = img.convert("RGB")
                    img.save(out, format={"jpg": "JPEG", "webp": "WEBP"}[ext], quality=92)
                return DecodedImage(out.getvalue(), ext, width, height, parameters)
    except ApplicationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApplicationError("image_too_large", f"The image has too many pixels (limit "
                               f"{limit}).", fields={"file": ["Too many pixels."]}) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ApplicationError("invalid_image", "The file is not a readable image.",
                               fields={"file": ["Not a readable image."]}) from None
