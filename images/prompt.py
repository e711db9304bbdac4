"""A1111 prompt syntax: attention weights, ``BREAK`` and extra-network tags (``<lora:...>``).

Sources: docs/prompt-syntax.md (facts from AUTOMATIC1111/stable-diffusion-webui
``modules/prompt_parser.py`` ``parse_prompt_attention``, ``modules/extra_networks.py`` and
``extensions-builtin/Lora/extra_networks_lora.py``); docs/protocols.md#a1111-lora-prompt-syntax.

- :func:`parse_prompt_attention` splits a prompt into ``(text, weight)`` pairs exactly as A1111
  does: ``(x)`` x1.1, ``(x:1.3)`` x1.3, ``[x]`` x(1/1.1), nesting multiplies, unbalanced brackets
  close at the end, ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal, ``BREAK`` is the pair
  ``("BREAK", -1.0)``.
- :func:`parse_prompt_loras` removes every ``<type:args>`` tag and returns the LoRAs: ``lora`` and
  ``lyco`` tags are LoRAs; any other type (``<hypernet:...>``) is a :class:`PromptSyntaxError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

#: Any extra-network tag as A1111 matches it (``<`` word ``:`` anything but ``>`` ``>``), plus
#: the empty form ``<lora:>`` that A1111 would leave in the text (we reject it).
EXTRA_NETWORK_TAG = re.compile(r"<(\w+):([^>]*)>")
#: ``lora`` / ``lyco`` tags only (kept for callers that strip LoRA tags from display text).
LORA_TAG = re.compile(r"<(?:lora|lyco):([^:>]+)(?::([^>]*))?>", re.IGNORECASE)
#: Network types that are LoRAs (A1111 registers ``lyco`` as an alias of ``lora``).
LORA_TYPES = ("lora", "lyco")
#: The largest |weight| accepted in a LoRA tag. A1111 sets no bound; slider LoRAs are used up to
#: about +-8, and beyond 10 any LoRA saturates the image (docs/prompt-syntax.md#lora-tags).
LORA_WEIGHT_MAX = 10.0
#: Named LoRA tag arguments (A1111: ``te=``, ``unet=``, ``dyn=``).
LORA_NAMED = ("te", "unet", "dyn")

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
#: The marker weight of a ``BREAK`` pair (A1111 uses -1).
BREAK_WEIGHT = -1.0
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_WEIGHT_CLOSE = re.compile(r":([+-]?[.\d]+)\)")
_PLAIN = re.compile(r"[^\\()\[\]:]+")
_LITERAL_AFTER_BACKSLASH = "()[]\\"
_SINGLE = {"(": "open_round", "[": "open_square", ")": "close_round", "]": "close_square",
           ":": "text"}  # a ":" not starting a ":N)" is text


class PromptSyntaxError(ValueError):
    """A prompt A1111 would fail on or silently misread: a bad ``<lora:...>`` tag (weight not a
    finite number or out of range, too many arguments, empty name), an unknown extra-network type
    (``<hypernet:...>``), or an attention weight that is not a number (``(x:1.2.3)``).
    ``str(exc)`` names the tag or text."""


# ----------------------------------------------------------------------------- attention
def _scan(text: str):
    """Yield A1111's attention tokens of ``text`` as ``(kind, value)``.

    Kinds: ``literal`` (value = the character after a backslash, or '' for a lone backslash),
    ``open_round``, ``open_square``, ``weight_close`` (value = the number text of ``:N)``),
    ``close_round``, ``close_square``, ``text`` (a run of plain characters or a lone ``:``).
    """
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt and nxt in _LITERAL_AFTER_BACKSLASH:
                yield "literal", nxt
                i += 2
            else:
                yield "literal", ""
                i += 1
        elif ch == ":" and (m := _WEIGHT_CLOSE.match(text, i)):
            yield "weight_close", m.group(0)
            i = m.end()
        elif ch in _SINGLE:
            yield _SINGLE[ch], ch
            i += 1
        else:
            m = _PLAIN.match(text, i)
            yield "text", m.group(0)
            i = m.end()


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split ``text`` into ``[(text, weight)]`` as A1111's ``parse_prompt_attention`` does.

    Runs of equal weight are merged; an empty prompt is ``[("", 1.0)]``; ``BREAK`` (a whole word,
    with the whitespace around it) outside any bracket is ``("BREAK", -1.0)`` (inside brackets its
    weight is multiplied like any text, and A1111 then reads it as the word "BREAK").
    A ``:N)`` with no ``(`` open, a ``)`` or ``]`` with nothing open, and a lone ``:`` are text.

    >>> parse_prompt_attention("an (important) word")
    [('an ', 1.0), ('important', 1.1), (' word', 1.0)]

    Raises:
        PromptSyntaxError: the number of a ``(x:N)`` is not a number (``(x:1.2.3)``, ``(x:.)``);
            A1111 fails the generation on it.
    """
    res: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in res[start:]:
            item[1] *= factor

    for kind, value in _scan(text):
        if kind == "literal":
            res.append([value, 1.0])
        elif kind == "open_round":
            round_open.append(len(res))
        elif kind == "open_square":
            square_open.append(len(res))
        elif kind == "weight_close" and round_open:
            number = value[1:-1]
            try:
                factor = float(number)
            except ValueError:
                raise PromptSyntaxError(
                    f"Attention weight {value!r}: {number!r} is not a number.") from None
            multiply(round_open.pop(), factor)
        elif kind == "close_round" and round_open:
            multiply(round_open.pop(), ROUND_MULTIPLIER)
        elif kind == "close_square" and square_open:
            multiply(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            for i, part in enumerate(_BREAK.split(value)):
                if i:
                    res.append(["BREAK", BREAK_WEIGHT])
                res.append([part, 1.0])
    for start in round_open:
        multiply(start, ROUND_MULTIPLIER)
    for start in square_open:
        multiply(start, SQUARE_MULTIPLIER)
    if not res:
        return [("", 1.0)]
    merged: list[list] = [res[0]]
    for item in res[1:]:
        if item[1] == merged[-1][1]:
            merged[-1][0] += item[0]
        else:
            merged.append(item)
    return [(t, w) for t, w in merged]


def is_break(text: str, weight: float) -> bool:
    """Whether a pair of :func:`parse_prompt_attention` is a chunk break (A1111's test)."""
    return text == "BREAK" and weight == BREAK_WEIGHT


def prompt_plain_text(prompt: str) -> str:
    """The text of ``prompt`` without attention syntax (weights dropped, ``BREAK`` as ", "), for
    engines that take plain text only (e.g. Flux's T5 in diffusers).

    Raises:
        PromptSyntaxError: see :func:`parse_prompt_attention`.
    """
    parts = [", " if is_break(t, w) else t for t, w in parse_prompt_attention(prompt)]
    return re.sub(r"[ \t]{2,}", " ", "".join(parts)).strip()


_AND = re.compile(r"\bAND\b")
_SIGNED_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _top_level(text: str, start: int) -> tuple[str, int] | None:
    """The text of the ``[...]`` group opening at ``start`` with nested groups blanked out, and
    the index of its closing ``]``; None when it is never closed. Escaped characters count as
    text."""
    depth, out, i = 0, [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            out.append("x" if depth == 0 else "")
            i += 2
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return ("".join(out), i) if ch == "]" else None
            depth -= 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return None


def prompt_check_supported(prompt: str, *, negative: bool = False) -> None:
    """Refuse the A1111 syntax that is not attention: composable prompts (``a AND b``), prompt
    editing (``[a:b:0.5]``, ``[a:10]``, also ``[word:1.2]``, which A1111 reads as "add word after
    step 1", not as a weight) and alternation (``[a|b]``). Atelier would read them as plain text
    and make another image than A1111 (docs/prompt-syntax.md#attention-syntax). ``negative``:
    A1111 splits only the prompt on ``AND``, the negative prompt keeps it as text.

    Raises:
        PromptSyntaxError: naming the part, with what to write instead for ``[word:N]``.
    """
    if not negative and _AND.search(prompt):
        raise PromptSyntaxError("Composable prompts ('AND', upper case) are not supported; "
                                "write 'and' for the word.")
    i = 0
    while (i := prompt.find("[", i)) != -1:
        if i and prompt[i - 1] == "\\" and (i < 2 or prompt[i - 2] != "\\"):
            i += 1
            continue
        found = _top_level(prompt, i)
        if found is None:
            break
        inner, end = found
        group = prompt[i:end + 1]
        if "|" in inner:
            raise PromptSyntaxError(f"Alternation {group!r} ([a|b]) is not supported.")
        parts = inner.split(":")
        if len(parts) >= 2 and _SIGNED_NUMBER.fullmatch(parts[-1]):
            word, number = group[1:-1].rsplit(":", 1)
            hint = f" For a weight write ({word}:{number.strip()})." if len(parts) == 2 else ""
            raise PromptSyntaxError(f"Prompt editing {group!r} ([from:to:when]) is not "
                                    f"supported.{hint}")
        i += 1


# ----------------------------------------------------------------------------- LoRA tags
@dataclass(frozen=True)
class PromptLora:
    """A LoRA named in a prompt.

    ``name`` as written (A1111's "mentioned name"); ``weight``: the UNet weight; ``te_weight``:
    the text-encoder weight when the tag gives two (``<lora:N:TE:UNET>``, ``unet=``), else None
    (one weight for both, as A1111 applies ``<lora:N:W>``); ``dyn``: A1111's ``dyn`` rank limit
    (read and checked, not applied: diffusers has no dynamic rank); ``tag``: the tag as written.
    """

    name: str
    weight: float
    te_weight: float | None = None
    dyn: int | None = field(default=None, compare=False, repr=False)
    tag: str = field(default="", compare=False, repr=False)


def _tag_weight(tag: str, label: str, value: str) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise PromptSyntaxError(f"LoRA tag {tag!r}: {label} {value!r} is not a number.") from None
    if not math.isfinite(weight):
        raise PromptSyntaxError(f"LoRA tag {tag!r}: {label} {value!r} is not a finite number.")
    if abs(weight) > LORA_WEIGHT_MAX:
        raise PromptSyntaxError(f"LoRA tag {tag!r}: {label} {value} is outside "
                                f"-{LORA_WEIGHT_MAX:g}..{LORA_WEIGHT_MAX:g}.")
    return weight


def parse_lora_tag(tag: str, args: str) -> PromptLora:
    """One ``<lora:args>`` tag read as A1111 reads it: ``args`` split on ``:``; an item with
    ``=`` is named (``te``, ``unet``, ``dyn``), the others positional: NAME, TE weight (1.0),
    UNET weight (= TE), DYN (an integer).

    Raises:
        PromptSyntaxError: empty name, more than 4 positional items, an unknown or repeated named
            item, a weight that is not a finite number within +-``LORA_WEIGHT_MAX``, a DYN that is
            not an integer.
    """
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in args.split(":"):
        key, eq, value = item.partition("=")
        if not eq:
            positional.append(item.strip())
            continue
        key = key.strip()
        if key not in LORA_NAMED:
            raise PromptSyntaxError(f"LoRA tag {tag!r}: unknown argument {key!r} (A1111 reads "
                                    "te=, unet= and dyn=).")
        if key in named:
            raise PromptSyntaxError(f"LoRA tag {tag!r}: {key}= given twice.")
        named[key] = value.strip()
    if not positional or not positional[0]:
        raise PromptSyntaxError(f"LoRA tag {tag!r} names no LoRA: write <lora:NAME:WEIGHT>.")
    if len(positional) > 4:
        raise PromptSyntaxError(f"LoRA tag {tag!r} has {len(positional) - 1} values after the "
                                "name; A1111 reads at most 3 (TE weight, UNet weight, dyn).")
    name = positional[0]
    te_text = named.get("te", positional[1] if len(positional) > 1 else "1.0")
    unet_text = named.get("unet", positional[2] if len(positional) > 2 else None)
    two = unet_text is not None or "te" in named
    te = _tag_weight(tag, "TE weight" if two else "weight", te_text)
    unet = te if unet_text is None else _tag_weight(tag, "UNet weight", unet_text)
    dyn_text = named.get("dyn", positional[3] if len(positional) > 3 else None)
    dyn = None
    if dyn_text is not None:
        try:
            dyn = int(dyn_text)
        except ValueError:
            raise PromptSyntaxError(f"LoRA tag {tag!r}: dyn {dyn_text!r} is not an integer.") \
                from None
    return PromptLora(name=name, weight=unet, te_weight=None if unet_text is None else te,
                      dyn=dyn, tag=tag)


def parse_prompt_loras(prompt: str) -> tuple[str, list[PromptLora]]:
    """Split ``prompt`` into its text without extra-network tags and the LoRAs it names.

    Tags are removed as A1111 removes them (replaced by nothing); then only whitespace that CLIP
    tokenization ignores is tidied (a space before a comma, runs of spaces, the ends), so the text
    encodes as A1111's would.

    >>> parse_prompt_loras("a cat <lora:ink:0.8>, night")
    ('a cat, night', [PromptLora(name='ink', weight=0.8, te_weight=None)])

    Raises:
        PromptSyntaxError: naming the tag: a tag type other than ``lora``/``lyco``
            (``<hypernet:x:1>``, ``<LORA:x>``: A1111 types are lower case), or a bad LoRA tag
            (see :func:`parse_lora_tag`), e.g. ``<lora:>``, ``<lora:x:inf>``,
            ``<lora:x:1:2:3:4>``.
    """
    loras: list[PromptLora] = []
    for match in EXTRA_NETWORK_TAG.finditer(prompt):
        tag, kind, args = match.group(0), match.group(1), match.group(2)
        if kind not in LORA_TYPES:
            hint = (" (hypernetworks are not supported)" if kind.lower() == "hypernet" else
                    " (network types are lower case: <lora:...>)" if kind.lower() in LORA_TYPES
                    else "")
            raise PromptSyntaxError(f"Tag {tag!r}: unknown extra network type {kind!r}{hint}; "
                                    "only <lora:...> and <lyco:...> are applied.")
        loras.append(parse_lora_tag(tag, args))
    text = EXTRA_NETWORK_TAG.sub("", prompt)
    text = re.sub(r"[ \t]+,", ",", text)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return text, loras
