"""Trigger words from every source, merged so that none is lost
(docs/library.md#never-lose-what-the-user-or-the-file-said).

A LoRA's trigger words come from the file (``ss_tag_frequency`` / ``modelspec.trigger_phrase``),
sidecars (A1111 ``activation text``, ``trainedWords`` of a ``.civitai.info``), Civitai and the
user. Every merge keeps the words already there, in their order, and appends the new ones; a
word the user removed (``user_overrides["trigger_words_removed"]``) is not appended again.
"""

from __future__ import annotations

import re

MAX_WORDS = 100  # a LoRA with more "trigger words" is listing its whole dataset
_COMMA = re.compile(r"\s*,\s*")  # A1111 splits "activation text" the same way


def split_activation_text(text) -> list[str]:
    """A1111's ``activation text`` (one string, comma-separated) as a list of words."""
    if not isinstance(text, str):
        return []
    return [w.strip()[:200] for w in _COMMA.split(text) if w.strip()]


def trigger_words_merge(existing, *sources, removed=()) -> list[str]:
    """``existing`` followed by every word of ``sources`` (lists of str, in order) that is not
    already there (compared case-insensitively, whitespace trimmed) and not in ``removed``;
    at most ``MAX_WORDS``."""
    gone = {str(w).strip().lower() for w in removed or ()}
    out: list[str] = []
    seen: set[str] = set()
    for index, words in enumerate((existing or [], *sources)):
        for word in words or []:
            if not isinstance(word, str) or not word.strip():
                continue
            key = word.strip().lower()
            if key in seen or (index > 0 and key in gone):
                continue
            seen.add(key)
            out.append(word.strip())
    return out[:MAX_WORDS]


def trigger_words_add_declared(current, declared, *, guess=(), removed=()) -> list[str]:
    """Merge ``declared`` words (Civitai's ``trainedWords``, a sidecar's activation text: what
    the author says triggers the LoRA) into ``current``. When every current word is one of the
    file's own frequency ``guess`` (``ss_tag_frequency``), the declared words go first so the
    page shows them first; otherwise the current order stays. Nothing is dropped either way."""
    gone = {str(w).strip().lower() for w in removed or ()}
    declared = [w for w in declared or [] if isinstance(w, str) and w.strip().lower() not in gone]
    guessed = {str(w).strip().lower() for w in guess or ()}
    if current and all(str(w).strip().lower() in guessed for w in current):
        return trigger_words_merge(declared, current)
    return trigger_words_merge(current, declared, removed=removed)


def removed_words(lora) -> list[str]:
    """The words the user removed from ``lora`` (a LoraModel)."""
    return list((lora.user_overrides or {}).get("trigger_words_removed") or [])
