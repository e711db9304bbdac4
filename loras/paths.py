"""Paths inside library roots, and the one guard that keeps every file operation inside them.

- :func:`normalize_relative` checks the *shape* of a path from a request (400 ``invalid_path``).
- :func:`real_path_in_root` is the guard: it resolves symlinks (``os.path.realpath``) and
  refuses a path whose real location leaves its root's real path (400 ``outside_root``).
  Every mutation of a library or example-image file goes through it, for the file and for each
  sidecar, before anything is touched (docs/architecture.md#files-and-safety).
- :func:`resolve_in_root` is both, for a relative path from a request.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable

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


def path_is_inside(root_real: str, real: str) -> bool:
    """Whether the real path ``real`` is ``root_real`` or below it (both absolute and already
    resolved with ``os.path.realpath``)."""
    if real == root_real:
        return True
    return real.startswith(root_real if root_real.endswith(os.sep) else root_real + os.sep)


def real_path_in_root(root_path: str, path: str, *,
                      resolve: Callable[[str], str] = os.path.realpath) -> str:
    """The guard: ``path`` (absolute) located by its real folder, if it stays inside
    ``root_path``.

    Both the real path of ``path`` (every symlink resolved, the last component too) and the
    real path of its folder must be ``root_path``'s real path or below it: a file reached
    through a symlinked folder that points elsewhere, a file that is itself a symlink to
    elsewhere, and a symlink kept in a folder elsewhere are all refused. The path need not
    exist (a move target).

    Args:
        resolve: ``os.path.realpath`` or a memoized copy of it (a list page resolves the same
            root and folders many times).

    Returns:
        ``realpath(dirname(path)) + basename(path)``: the folder resolved, the last component
        kept, so an operation on the result acts on a symlink itself, never on its target (the
        root's real path when ``path`` is the root).

    Raises:
        ApplicationError: 400 ``outside_root`` (the message names no absolute path).
    """
    root_real = resolve(root_path)
    full = os.path.abspath(path)
    folder_real = resolve(os.path.dirname(full))
    located = os.path.join(folder_real, os.path.basename(full))
    # realpath(path) without a second walk: only a symlink in the last place changes it.
    target_real = os.path.realpath(located) if os.path.islink(located) else located
    if target_real == root_real:
        return root_real
    if not (path_is_inside(root_real, target_real) and path_is_inside(root_real, folder_real)):
        raise ApplicationError(
            "outside_root", f"{os.path.basename(full) or 'This path'} is reached through a "
            "symbolic link that leaves its library root; files outside a root are never "
            "changed.")
    return located


def is_outside_root(root_path: str, path: str, *,
                    resolve: Callable[[str], str] = os.path.realpath) -> bool:
    """Whether :func:`real_path_in_root` refuses ``path`` (the API's ``outside_root`` flag)."""
    try:
        real_path_in_root(root_path, path, resolve=resolve)
    except ApplicationError:
        return True
    return False


def resolve_in_root(root_path: str, relative: str) -> str:
    """The absolute path of ``relative`` inside ``root_path``, checked by
    :func:`real_path_in_root` (folders resolved, the last component kept).

    Raises:
        ApplicationError: 400 ``invalid_path`` (shape, see :func:`normalize_relative`);
            400 ``outside_root`` when a symlink takes it out of the root.
    """
    rel = normalize_relative(relative)
    root_real = os.path.realpath(root_path)
    if not rel:
        return root_real
    return real_path_in_root(root_real, os.path.join(root_real, *rel.split("/")))


def relative_to_root(root_path: str, absolute: str) -> str | None:
    """``absolute`` as a ``'/'``-separated path relative to ``root_path``; None if outside."""
    root_real = os.path.realpath(root_path)
    full = os.path.abspath(absolute)
    if not path_is_inside(root_real, full):
        full = os.path.realpath(absolute)
        if not path_is_inside(root_real, full):
            return None
    return posixpath.join(*os.path.relpath(full, root_real).split(os.sep))
