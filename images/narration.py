"""Text-to-speech behind a small interface; the default engine is espeak-ng.

``espeak-ng -w out.wav -v <voice> -s <words per minute> "text"`` writes a 16-bit mono RIFF/WAVE
file (22050 Hz) — see espeak-ng(1). When the binary is not on ``PATH`` (or the configured
``NARRATION_ESPEAK_PATH`` does not exist) the engine is unavailable and callers answer 503
``tts_unavailable``: Atelier never writes a placeholder sound.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from core.exceptions import ApplicationError


class TTSEngine:
    """Interface: ``name``, ``available()``, ``synthesize(text) -> (bytes, extension)``."""

    name = "base"

    def available(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def synthesize(self, text: str) -> tuple[bytes, str]:  # pragma: no cover - interface
        raise NotImplementedError


class EspeakEngine(TTSEngine):
    """espeak-ng through a subprocess; WAV output, ``timeout`` seconds at most."""

    name = "espeak-ng"

    def __init__(self, binary: str | None = None, voice: str | None = None,
                 speed_wpm: int | None = None, timeout: float = 60.0):
        self.binary = binary or getattr(settings, "NARRATION_ESPEAK_PATH", "") or "espeak-ng"
        self.voice = voice or getattr(settings, "NARRATION_VOICE", "en")
        self.speed_wpm = speed_wpm or getattr(settings, "NARRATION_SPEED_WPM", 160)
        self.timeout = timeout

    def _path(self) -> str | None:
        return shutil.which(self.binary)

    def available(self) -> bool:
        return self._path() is not None

    def synthesize(self, text: str) -> tuple[bytes, str]:
        """The WAV bytes of ``text`` read aloud.

        Raises:
            ApplicationError: 503 ``tts_unavailable`` (no binary), 400 ``invalid`` (empty text),
                503 ``tts_failed`` (espeak-ng failed or wrote nothing).
        """
        binary = self._path()
        if binary is None:
            raise ApplicationError("tts_unavailable",
                                   "Text-to-speech is not installed (espeak-ng).", status=503)
        text = " ".join(text.split())
        if not text:
            raise ApplicationError("invalid", "Nothing to narrate.")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            try:
                proc = subprocess.run(
                    [binary, "-v", self.voice, "-s", str(self.speed_wpm), "-w", str(out),
                     "--", text],
                    capture_output=True, timeout=self.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ApplicationError("tts_failed", f"espeak-ng failed: {exc}",
                                       status=503) from None
            if proc.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
                err = proc.stderr.decode(errors="replace").strip()[:300]
                raise ApplicationError("tts_failed", f"espeak-ng produced no audio. {err}",
                                       status=503)
            return out.read_bytes(), "wav"


def get_engine() -> TTSEngine:
    """The engine named by ``settings.NARRATION_ENGINE`` (dotted path)."""
    return import_string(getattr(settings, "NARRATION_ENGINE",
                                 "images.narration.EspeakEngine"))()


def narration_text(image) -> str:
    """What to read for ``image``: caption, else alt text, else title, else the prompt with
    ``<lora:...>`` tags removed; at most ``NARRATION_MAX_CHARS`` characters."""
    from .prompt import PromptSyntaxError, parse_prompt_loras

    text = image.caption or image.alt_text or image.title
    if not text:
        try:
            text = parse_prompt_loras(image.prompt)[0]
        except PromptSyntaxError:
            text = image.prompt
    return text[: getattr(settings, "NARRATION_MAX_CHARS", 1000)]
