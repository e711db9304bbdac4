"""File storage that never leaves a half-written file visible."""

from __future__ import annotations

import os
import tempfile

from django.core.files.storage import FileSystemStorage


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
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return str(name).replace("\\", "/")
