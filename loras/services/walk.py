"""The walk of a library root: every ``.safetensors`` file under it, with its sidecars, how it
is reached (through a symlink or not) and whether its real path leaves the root (see
``loras.services.scan`` for what the scan does with them, and
docs/architecture.md#files-and-safety).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from ..models import LibraryRoot
from ..paths import is_outside_root, path_is_inside
from ..sidecars import INFO_SUFFIXES, PREVIEW_SUFFIXES


@dataclass
class FoundFile:
    """A ``.safetensors`` file met by the walk; ``relative`` is '/'-separated inside ``root``."""

    root: LibraryRoot
    relative: str
    path: str
    size: int  # bytes
    mtime: float  # seconds since the epoch
    inode: int
    has_info: bool  # a .civitai.info / .metadata.json sidecar is next to it
    has_preview: bool
    sidecar_mtime: float = 0.0  # newest mtime of its sidecars (seconds; 0 without any)
    real: str = ""  # its real path (symlinks resolved); "" when not known (one-file records)
    via_symlink: bool = False  # its path goes through a symlinked folder or is a symlink
    outside_root: bool = False  # the real path leaves the root: listed, never changed
    device: int = 0  # st_dev of the file (symlinks followed); with inode, its identity


@dataclass
class Walk:
    files: list[FoundFile]
    loops: list[dict]  # {"root", "path", "target"}: a folder already visited (symlink loop)
    unreadable: list[dict]  # {"root", "path", "error"}


def _is_alias_folder(root_real: str, path: str) -> tuple[bool, str]:
    """(whether the symlinked folder ``path`` points to a folder the walk reaches anyway at its
    real path inside the root, its real path); hidden real folders are not walked, so a link
    to one is followed."""
    target = os.path.realpath(path)
    if not path_is_inside(root_real, target):
        return False, target
    rel = os.path.relpath(target, root_real)
    return not any(part.startswith(".") for part in rel.split(os.sep) if part != "."), target


def library_walk(*, root: LibraryRoot) -> Walk:
    """Every ``*.safetensors`` file (any case) under ``root``, following folder symlinks.

    A symlinked folder pointing inside the root is not entered (the walk meets that folder at
    its real path) and is reported in ``loops``; so is a folder whose (st_dev, st_ino) was
    already visited (a symlink loop, or a second link to one outside folder). Files met
    through a symlink get their real path and ``outside_root`` when it leaves the root.
    Folders that cannot be listed go to ``unreadable``. Hidden folders (name starting with
    '.') are skipped. Never raises for file-system errors.
    """
    result = Walk(files=[], loops=[], unreadable=[])
    try:
        st = os.stat(root.path)
        root_real = os.path.realpath(root.path)
    except OSError as exc:
        result.unreadable.append({"root": root.pk, "path": "", "error": exc.strerror or str(exc)})
        return result
    visited = {(st.st_dev, st.st_ino)}
    resolve = functools.lru_cache(maxsize=1024)(os.path.realpath)  # folders of linked files
    stack = [(root.path, "", False)]  # (folder, relative folder, reached through a symlink)
    while stack:
        folder, rel, via_link = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            result.unreadable.append({"root": root.pk, "path": rel,
                                      "error": exc.strerror or str(exc)})
            continue
        names = {entry.name for entry in entries}
        subfolders = []
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                child.encode("utf-8")
            except UnicodeEncodeError:  # a name that is not UTF-8 cannot be stored or shown
                result.unreadable.append({
                    "root": root.pk, "path": child.encode("utf-8", "replace").decode(),
                    "error": "File name is not valid UTF-8."})
                continue
            try:
                if entry.is_dir():
                    if entry.name.startswith("."):
                        continue
                    is_link = entry.is_symlink()
                    if is_link and _is_alias_folder(root_real, entry.path)[0]:
                        result.loops.append({"root": root.pk, "path": child,
                                             "target": _link_target(entry.path)})
                        continue
                    est = entry.stat()
                    key = (est.st_dev, est.st_ino)
                    if key in visited:
                        result.loops.append({"root": root.pk, "path": child,
                                             "target": _link_target(entry.path)})
                        continue
                    visited.add(key)
                    subfolders.append((entry.path, child, via_link or is_link))
                elif entry.name.lower().endswith(".safetensors") and entry.is_file():
                    est = entry.stat()
                    stem = entry.name[:-len(".safetensors")]
                    infos = [stem + s for s in INFO_SUFFIXES if stem + s in names]
                    previews = [stem + s for s in PREVIEW_SUFFIXES if stem + s in names]
                    linked = via_link or entry.is_symlink()
                    result.files.append(FoundFile(
                        root=root, relative=child, path=entry.path, size=est.st_size,
                        mtime=est.st_mtime, inode=est.st_ino, device=est.st_dev,
                        has_info=bool(infos),
                        has_preview=bool(previews),
                        sidecar_mtime=_newest_mtime(folder, infos + previews),
                        real=(os.path.realpath(entry.path) if linked
                              else os.path.join(root_real, *child.split("/"))),
                        via_symlink=linked,
                        outside_root=linked and is_outside_root(root_real, entry.path,
                                                                resolve=resolve)))
            except OSError as exc:
                result.unreadable.append({"root": root.pk, "path": child,
                                          "error": exc.strerror or str(exc)})
        stack.extend(reversed(subfolders))
    return result


def _newest_mtime(folder: str, names: list[str]) -> float:
    newest = 0.0
    for name in names:
        try:
            newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime)
        except OSError:
            pass
    return newest


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""
