"""A1111 prompt syntax for LoRAs: ``<lora:NAME:WEIGHT>``.

Source: docs/protocols.md#a1111-lora-prompt-syntax.

WEIGHT defaults to 1.0. The extended forms ``<lora:NAME:TE:UNET[:DYN]>`` take TE as the weight
(we apply one weight per adapter). ``<lyco:...>`` is an alias.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

LORA_TAG = re.compile(r"<(?:lora|lyco):([^:>]+)(?::([^>]*))?>", re.IGNORECASE)


@dataclass(frozen=True)
class PromptLora:
    """A LoRA named in a prompt: ``name`` as written, ``weight`` (float)."""

    name: str
    weight: float


class PromptSyntaxError(ValueError):
    """A ``<lora:...>`` tag whose weight is not a finite number."""


def parse_prompt_loras(prompt: str) -> tuple[str, list[PromptLora]]:
    """Split ``prompt`` into the text without LoRA tags and the LoRAs it names.

    >>> parse_prompt_loras("a cat <lora:ink:0.8>, night")
    ('a cat, night', [PromptLora(name='ink', weight=0.8)])

    Raises:
        PromptSyntaxError: a weight that is not a finite number, e.g. ``<lora:ink:abc>``,
            ``<lora:ink:inf>``, ``<lora:ink:nan>`` or ``<lora:ink:1e999>`` (Python's ``float``
            reads all three; no engine can apply them).
    """
    loras: list[PromptLora] = []
    for match in LORA_TAG.finditer(prompt):
        name = match.group(1).strip()
        args = [a.strip() for a in (match.group(2) or "").split(":") if a.strip()]
        weight = 1.0
        for arg in args[:1]:
            value = arg.split("=", 1)[1] if "=" in arg else arg
            try:
                weight = float(value)
            except ValueError:
                raise PromptSyntaxError(
                    f"LoRA tag {match.group(0)!r}: weight {value!r} is not a number."
                ) from None
            if not math.isfinite(weight):
                raise PromptSyntaxError(
                    f"LoRA tag {match.group(0)!r}: weight {value!r} is not a finite number.")
        loras.append(PromptLora(name=name, weight=weight))
    text = LORA_TAG.sub("", prompt)
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",\s*,", ",", text)
    text = re.sub(r"\s{2,}", " ", text).strip(" ,")
    return text, loras
