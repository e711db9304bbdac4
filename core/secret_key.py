"""A per-install ``SECRET_KEY``: generated once, kept in the state folder, readable only by
its owner. Imported by the settings, so it uses nothing of Django's configuration."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def install_secret_key(var_dir: Path, name: str = "secret_key") -> str:
    """The key stored in ``var_dir/name``; on first use a new 50-character random key is
    written there with mode 0600 (created exclusively, so two processes starting together end
    up with the same key).

    Raises:
        OSError: the folder is not writable, or the file is unreadable.
    """
    path = Path(var_dir) / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        # An empty file (a crash between create and write): replace it.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)
    return key
