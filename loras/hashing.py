"""Model file hashes, computed in one read of the file.

Facts (docs/protocols.md#model-hashes, from civitai/model-scanner HashTask.cs and A1111
modules/hashes.py):
- SHA256: whole file. AutoV2: its first 10 hex.
- AutoV3: SHA-256 of the bytes after the safetensors header (offset 8 + N to the end), where N is
  the first 8 bytes read as an unsigned little-endian integer.

How the file is read (the scanner hashes whole libraries, often larger than RAM):
- one pass, in chunks of ``LORA_HASH_CHUNK_BYTES`` read with ``readinto`` into one reusable
  buffer (no allocation per chunk); both digests are fed from the same bytes;
- ``hashlib`` releases the GIL on large buffers, so a thread pool hashes files in parallel,
  and the two digests of a large chunk are computed at the same time on two threads;
- ``posix_fadvise(SEQUENTIAL)`` at open, ``WILLNEED`` on the next chunk before hashing the
  current one (the disk reads while the CPU hashes), ``DONTNEED`` after each chunk and at the
  end (where the OS has it), so a scan does not push the user's working set out of the page
  cache;
- measured on a 2-core VM (bench/scan.py): 1 MiB chunks hash ~1.4x faster than 8 MiB ones from
  a cold cache (the chunk stays in the CPU caches between the read and the two digests).
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

CHUNK = 8 * 1024 * 1024  # bytes per read, when settings are not loaded
MIN_CHUNK = 64 * 1024  # bytes
_FADVISE = hasattr(os, "posix_fadvise")
SPLIT_MIN_BYTES = 256 * 1024  # chunks whose two digests are computed on two threads
_HELPER: ThreadPoolExecutor | None = None
_HELPER_LOCK = threading.Lock()


@dataclass(frozen=True)
class FileHashes:
    """Lower-case hex digests; ``autov3`` is empty for files that are not safetensors (shorter
    than 8 bytes, or whose header claims more bytes than the file has).

    ``size`` is the number of bytes read; ``head`` holds up to ``keep_head`` first bytes of the
    file (taken from the first chunk, so the header costs no second read).
    """

    sha256: str
    autov3: str
    size: int
    head: bytes = b""

    @property
    def autov2(self) -> str:
        return self.sha256[:10]


def _helper() -> ThreadPoolExecutor:
    """Process-wide threads that compute a chunk's AutoV3 digest while the caller computes
    its SHA-256 (so one file uses two cores)."""
    global _HELPER
    if _HELPER is None:
        with _HELPER_LOCK:
            if _HELPER is None:
                _HELPER = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                             thread_name_prefix="autov3")
    return _HELPER


def _default_chunk() -> int:
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:  # no Django (plain script)
        return CHUNK
    try:
        return int(settings.LORA_HASH_CHUNK_BYTES)
    except (ImproperlyConfigured, AttributeError):  # settings not configured (plain script)
        return CHUNK


def file_hashes(path: str, *, chunk_bytes: int | None = None, keep_head: int = 0,
                drop_cache: bool = True) -> FileHashes:
    """Hash ``path`` once, returning SHA-256 and AutoV3 (and optionally its first bytes).

    Args:
        path: the file.
        chunk_bytes: bytes per read (default ``settings.LORA_HASH_CHUNK_BYTES``, at least 64 KiB).
        keep_head: keep up to this many first bytes in ``FileHashes.head`` (at most one chunk).
        drop_cache: advise the kernel to drop each chunk from the page cache once hashed.

    Raises:
        OSError: the file cannot be read.
    """
    chunk = max(MIN_CHUNK, chunk_bytes or _default_chunk())
    whole = hashlib.sha256()
    tensors = hashlib.sha256()
    view = memoryview(bytearray(chunk))  # one buffer: it stays in the CPU caches
    offset = 0
    data_start: int | None = None  # file offset of the tensor bytes (8 + N)
    head = b""
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        if _FADVISE and drop_cache:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while True:
            n = fh.readinto(view)
            if not n:
                break
            if _FADVISE and drop_cache:  # the kernel reads the next chunk while this one hashes
                os.posix_fadvise(fd, offset + n, chunk, os.POSIX_FADV_WILLNEED)
            data = view[:n]
            if offset == 0:
                if n >= 8:
                    data_start = 8 + struct.unpack_from("<Q", data, 0)[0]
                if keep_head:
                    head = bytes(data[:keep_head])
            tail = (data[max(0, data_start - offset):]
                    if data_start is not None and offset + n > data_start else None)
            if tail is not None and len(tail) >= SPLIT_MIN_BYTES:
                # The two digests of a large chunk run on two cores (hashlib drops the GIL).
                other = _helper().submit(tensors.update, tail)
                whole.update(data)
                other.result()
            else:
                whole.update(data)
                if tail is not None:
                    tensors.update(tail)
            if _FADVISE and drop_cache:
                os.posix_fadvise(fd, offset, n, os.POSIX_FADV_DONTNEED)
            offset += n
        if _FADVISE and drop_cache:  # pages the kernel read ahead past a chunk's range
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    valid = data_start is not None and data_start <= offset
    return FileHashes(sha256=whole.hexdigest(), autov3=tensors.hexdigest() if valid else "",
                      size=offset, head=head)
