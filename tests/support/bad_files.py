"""A corpus of malformed files for the bad-input tests: images that are not what they claim,
truncated or bomb-sized images, and corrupt ``.safetensors`` files.

``bad_images()``: ``name -> (filename, bytes)`` (names in ``BAD_IMAGE_NAMES``); every upload
endpoint must refuse each with a 4xx error body (``{"code", "message"}``) and store nothing.
``BAD_SAFETENSORS`` re-exports the writers of ``tests.support.lora_files.CORRUPT``
(``name -> writer(path)``).

Format facts: PNG signature and chunk layout (length, type, data, CRC-32) from the PNG spec
(RFC 2083); the safetensors layout (8-byte little-endian header length, JSON header, data) from
huggingface/safetensors' README.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image

from tests.support.lora_files import CORRUPT as BAD_SAFETENSORS  # noqa: F401

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` pixels (RGB, 8 bit) but whose data is
    tiny: what a decompression bomb or a lying header looks like to a decoder."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64) if idat is None else idat
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_bomb(side: int = 10000) -> bytes:
    """A real decompression bomb: ``side`` x ``side`` grey pixels (all zero), 100 megapixels
    (above Pillow's ``MAX_IMAGE_PIXELS``, 89 MP, the limit the app enforces) from ~100 KB."""
    block_rows = 500
    block = (b"\x00" + b"\x00" * side) * block_rows  # filter byte + 1 byte per pixel
    compressor = zlib.compressobj(6)
    parts = [compressor.compress(block) for _ in range(side // block_rows)]
    parts.append(compressor.compress((b"\x00" * (side + 1)) * (side % block_rows)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) \
        + _chunk(b"IEND", b"")


def good_png(size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def good_jpeg(size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (40, 40, 200)).save(buf, "JPEG")
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def bad_images() -> dict[str, tuple[str, bytes]]:
    """The image corpus (built once; the bomb takes a moment to compress)."""
    png = good_png()
    jpeg = good_jpeg()
    return {
        "zero_byte": ("empty.png", b""),
        "text_as_png": ("notes.png", b"just some text, not an image\n" * 4),
        "html_as_jpg": ("page.jpg", b"<!doctype html><html><body>hi</body></html>"),
        "svg_as_png": ("vector.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="9000" '
                                     b'height="9000"><rect width="9000" height="9000"/></svg>'),
        "safetensors_as_png": ("model.png", struct.pack("<Q", 2) + b"{}"),
        "exe_as_webp": ("tool.webp", b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00"),
        "truncated_png": ("cut.png", png[: len(png) // 2]),
        "truncated_jpeg": ("cut.jpg", jpeg[:40]),
        "png_signature_only": ("sig.png", PNG_SIGNATURE),
        "bad_crc_png": ("crc.png", png[:29] + b"\x00\x00\x00\x00" + png[33:]),
        "huge_dimensions": ("huge.png", png_header_only(100_000, 100_000)),
        "zero_dimensions": ("zero.png", png_header_only(0, 0)),
        "decompression_bomb": ("bomb.png", png_bomb()),
    }


BAD_IMAGE_NAMES = ["zero_byte", "text_as_png", "html_as_jpg", "svg_as_png", "safetensors_as_png",
                   "exe_as_webp", "truncated_png", "truncated_jpeg", "png_signature_only",
                   "bad_crc_png", "huge_dimensions", "zero_dimensions", "decompression_bomb"]
