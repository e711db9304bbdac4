"""Absolute server paths out of text shown to users who are not staff.

A job error, a provider message or a model profile may carry a path such as
``/srv/atelier/var/models/sd15/unet/model.safetensors: invalid header``; a non-staff user needs
the file's name, not the layout of the server. :func:`redact_paths` keeps the last component.
"""

from __future__ import annotations

import re

# A POSIX path of two or more components, not part of a URL ("http://h/a/b") or a relative
# path ("a/b"): the first slash follows neither a word character, ".", ":", "/", "~" nor "-".
_POSIX = re.compile(r"(?<![\w.:/~\-])(?:/[^\s/'\"`,;:()<>\[\]{}|]+){2,}/?")
# A Windows path with a drive letter: C:\Users\me\model.safetensors
_WINDOWS = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\s\\'\"`,;:()<>\[\]{}|]+\\?)+")


def _last(match: re.Match) -> str:
    parts = [p for p in re.split(r"[\\/]", match.group(0)) if p]
    return parts[-1] if parts else match.group(0)


def redact_paths(text: str) -> str:
    """``text`` with every absolute file path replaced by its last component
    (``"/srv/models/a.safetensors: bad"`` -> ``"a.safetensors: bad"``). Non-strings (``None``)
    come back unchanged; URLs and relative paths are kept.
    """
    if not isinstance(text, str) or ("/" not in text and "\\" not in text):
        return text
    return _WINDOWS.sub(_last, _POSIX.sub(_last, text))


def redact_paths_in(value):
    """:func:`redact_paths` applied to every string inside ``value`` (dicts, lists, tuples;
    keys are kept)."""
    if isinstance(value, str):
        return redact_paths(value)
    if isinstance(value, dict):
        return {key: redact_paths_in(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_paths_in(item) for item in value]
    return value


def viewer_is_staff(context) -> bool:
    """Whether a DRF serializer ``context``'s request user is staff (no request: not staff)."""
    user = getattr(context.get("request"), "user", None) if context else None
    return bool(getattr(user, "is_staff", False))
