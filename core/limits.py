"""Per-request cost limits checked before any work starts: pixels and file counts.

Settings (see README "Limits"):
- ``REQUEST_MAX_PIXELS``: pixels one request may ask for or upload in total (output
  ``width * height * n`` of a generation; the sum of ``width * height`` of uploaded images).
- ``REQUEST_MAX_FILES``: files one request may upload or name.

Image sizes come from the file header (Pillow's lazy ``Image.open`` reads no pixel data), so
refusing 50 uploads of 64 MP each costs a few header reads, not 3 GP of decoding.
"""

from __future__ import annotations

import os

from django.conf import settings

from .exceptions import ApplicationError


def pixels_check(pixels: int, *, field: str) -> None:
    """Refuse a request costing more than ``REQUEST_MAX_PIXELS`` pixels.

    Args:
        pixels: the request's total, in pixels.
        field: the request field to name in the error.

    Raises:
        ApplicationError: 400 ``too_many_pixels``.
    """
    limit = settings.REQUEST_MAX_PIXELS
    if pixels > limit:
        raise ApplicationError(
            "too_many_pixels",
            f"This request asks for {pixels} pixels; at most {limit} per request.",
            fields={field: [f"At most {limit} pixels per request (width x height x images)."]})


def files_check(count: int, *, field: str) -> None:
    """Refuse a request with more than ``REQUEST_MAX_FILES`` files.

    Raises:
        ApplicationError: 400 ``too_many_files``.
    """
    limit = settings.REQUEST_MAX_FILES
    if count > limit:
        raise ApplicationError("too_many_files", f"At most {limit} files per request.",
                               fields={field: [f"At most {limit} files per request."]})


def image_header_pixels(source) -> int:
    """``width * height`` of an image from its header, without decoding it; 0 when the bytes
    are not an image Pillow knows (the caller's own validation refuses those later).

    Args:
        source: a path (``str``/``os.PathLike``) or a seekable binary file (an
            ``UploadedFile``); a file is rewound to where it was.

    Raises:
        PIL.Image.DecompressionBombError: the header claims more than twice Pillow's
            ``MAX_IMAGE_PIXELS``.
    """
    from PIL import Image, UnidentifiedImageError

    position = None if isinstance(source, (str, os.PathLike)) else source.tell()
    try:
        with Image.open(source) as probe:
            return probe.width * probe.height
    except (UnidentifiedImageError, OSError, ValueError):
        return 0
    finally:
        if position is not None:
            source.seek(position)


def uploads_check(sources: list, *, field: str, other_files: int = 0) -> None:
    """The file-count cap, then the pixel budget over the headers of ``sources`` (uploaded
    files or already-checked paths), before anything is decoded.

    Args:
        sources: what to measure.
        field: the request field to name in errors.
        other_files: files of the same request that count towards ``REQUEST_MAX_FILES`` only.

    Raises:
        ApplicationError: 400 ``too_many_files`` or ``too_many_pixels``.
    """
    from PIL import Image

    files_check(len(sources) + other_files, field=field)
    total = 0
    for source in sources:
        try:
            total += image_header_pixels(source)
        except Image.DecompressionBombError:
            # Past Pillow's MAX_IMAGE_PIXELS bomb limit: refused as the decoder would.
            raise ApplicationError("image_too_large", f"{field}: an image's header claims more "
                                   "pixels than any image may have (a decompression bomb?).",
                                   fields={field: ["Image too large."]}) from None
        pixels_check(total, field=field)
