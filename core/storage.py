"""File storage that never leaves a half-written file visible."""

from __future__ import annotations

import os
import tempfile

from django.core.files.storage import FileSystemStorage


def fsync_dir(path: str) -> None:
    """fsync the folder ``path`` so a rename or new file in it survives a crash; errors (e.g.
    a file system that cannot fsync folders) are ignored."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFileSystemStorage(FileSystemStorage):
    """``FileSystemStorage`` whose saves go to a temporary file in the target folder, are
    fsynced, then ``os.replace``d into place; a crash mid-write leaves only a ``.tmp`` file
    that is never referenced."""

    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, exist_ok=True)
        name = self.get_available_name(name)
        full_path = self.path(name)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                if hasattr(content, "chunks"):
                    for chunk in content.chunks():
                        fh.write(chunk)
                else:
                    fh.write(content.read())
                fh.flush()
                os.fsync(fh.fileno())
            if self.file_permissions_mode is not None:
                os.chmod(tmp, self.file_permissions_mode)
            else:
                os.chmod(tmp, 0o644)
            os.replace(tmp, full_path)
            fsync_dir(directory)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return str(name).replace("\\", "/")
