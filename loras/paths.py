"""Paths inside library roots. Every path from a request goes through :func:`resolve_in_root`."""

from __future__ import annotations

import os
import posixpath

from core.exceptions import ApplicationError


def normalize_relative(path: str) -> str:
    """A clean ``'/'``-separated relative path, or 400 ``invalid_path``.

    Refuses absolute paths, ``..`` components, Windows separators and drive letters, NUL bytes
    and empty names.
    """
    if not isinstance(path, str) or "\x00" in path or "\\" in path:
        raise ApplicationError("invalid_path", "Paths use '/' and may not contain NUL or '\\'.")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ApplicationError("invalid_path", "Paths must be relative to a library root.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ApplicationError("invalid_path", "Paths may not leave their library root ('..').")
    return "/".join(parts)


def resolve_in_root(root_path: str, relative: str) -> str:
    """The absolute path of ``relative`` inside ``root_path``, symlinks resolved.

    Raises:
        ApplicationError: 400 ``invalid_path`` when the result is outside the root.
    """
    rel = normalize_relative(relative)
    root_real = os.path.realpath(root_path)
    full = os.path.realpath(os.path.join(root_real, *rel.split("/"))) if rel else root_real
    if full != root_real and not full.startswith(root_real + os.sep):
        raise ApplicationError("invalid_path", "The path leaves its library root.")
    return full


def relative_to_root(root_path: str, absolute: str) -> str | None:
    """``absolute`` as a ``'/'``-separated path relative to ``root_path``; None if outside."""
    root_real = os.path.realpath(root_path)
    full = os.path.abspath(absolute)
    if full != root_real and not full.startswith(root_real + os.sep):
        full = os.path.realpath(absolute)
        if not full.startswith(root_real + os.sep):
            return None
    return posixpath.join(*os.path.relpath(full, root_real).split(os.sep))
