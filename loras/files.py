"""Writing files into library folders: atomically, with the mode a user's tools expect.

``tempfile.mkstemp`` creates files 0600; a preview or sidecar kept at that mode is unreadable
to the other tools and users sharing the folder (A1111 run as another user, a Samba share).
Every file Atelier writes into a library folder is therefore chmod-ed to ``0666 & ~umask``
(0644 under the usual umask 022) before it is moved into place (docs/library.md#sidecars).
"""

from __future__ import annotations

import os
import tempfile

from core.storage import fsync_dir


def process_umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it (Linux), else by
    setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` would give a new file."""
    return 0o666 & ~process_umask()


def temp_file(folder: str, *, prefix: str = ".atelier-", suffix: str = ".part") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``folder`` with the file's mode set to :func:`new_file_mode`."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, new_file_mode())
    except OSError:  # pragma: no cover - a filesystem without modes (FAT): keep going
        pass
    return fd, path


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (absolute) through a temporary file in the same folder
    (fsynced, mode :func:`new_file_mode`) and ``os.replace``: readers see the old or the new
    file, never half of one.

    Raises:
        OSError: the folder is not writable, the disk is full... (no temporary file is left).
    """
    folder = os.path.dirname(path)
    fd, tmp = temp_file(folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(folder)
