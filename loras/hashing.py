"""Model file hashes, computed in one read of the file.

Facts (PROTOCOLS.md section 8, from civitai/model-scanner HashTask.cs and A1111 modules/hashes.py):
- SHA256: whole file. AutoV2: its first 10 hex.
- AutoV3: SHA-256 of the bytes after the safetensors header (offset 8 + N to the end), where N is
  the first 8 bytes read as an unsigned little-endian integer.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

CHUNK = 8 * 1024 * 1024  # bytes per read


@dataclass(frozen=True)
class FileHashes:
    """Lower-case hex digests; ``autov3`` is empty for files that are not safetensors."""

    sha256: str
    autov3: str
    size: int

    @property
    def autov2(self) -> str:
        return self.sha256[:10]


def file_hashes(path: str) -> FileHashes:
    """Hash ``path`` once, returning SHA-256 and AutoV3.

    Raises:
        OSError: the file cannot be read.
    """
    whole = hashlib.sha256()
    tensors = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        head = fh.read(8)
        whole.update(head)
        size += len(head)
        header_len = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        skip = header_len if header_len is not None else 0
        valid = header_len is not None
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            whole.update(chunk)
            size += len(chunk)
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            tensors.update(chunk[skip:])
            skip = 0
        if skip:  # the header claims more bytes than the file has
            valid = False
    return FileHashes(sha256=whole.hexdigest(), autov3=tensors.hexdigest() if valid else "",
                      size=size)
