"""The provider contract: what every image engine (local diffusers, remote APIs, fake) implements.

Providers are plain Python and never touch the ORM. The images app turns a ``GenerationRequest``
row into a :class:`GenerationSpec`, calls :meth:`ImageProvider.generate` with a
:class:`ProgressSink`, and stores the returned :class:`GeneratedImage` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # Pillow is cheap, but keep the contract import-light.
    from PIL.Image import Image as PILImage


class ProviderError(Exception):
    """A generation failed for a reason the user should read.

    Args:
        code: short machine-readable reason, e.g. ``"lora_incompatible"``, ``"model_not_found"``.
        message: one sentence for a person.
        retryable: True for transient failures (rate limits, timeouts); the job may be retried.
    """

    def __init__(self, code: str, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class ProviderUnavailable(ProviderError):
    """The backend is not installed or not configured (HTTP 503 ``provider_unavailable``)."""

    def __init__(self, message: str):
        super().__init__("provider_unavailable", message)


class GenerationCancelled(Exception):
    """Raised by a provider when the sink asked it to stop between steps."""


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; requests are checked against this before they are queued.

    Sizes are in pixels. ``max_batch`` is the largest ``n`` (images per request).
    """

    txt2img: bool = True
    img2img: bool = False
    inpaint: bool = False
    upscale: bool = False
    negative_prompt: bool = True
    seed: bool = True
    guidance: bool = True
    steps: bool = True
    loras: bool = False
    max_width: int = 2048
    max_height: int = 2048
    max_batch: int = 8

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA to apply: absolute ``path`` of a .safetensors file, its ``sha256`` (64 hex,
    the adapter cache key), display ``name`` and ``weight`` (usually 0..2)."""

    path: str
    sha256: str
    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class ModelSpec:
    """Which model to run: ``pipeline_type`` (``sd``, ``sdxl``, ``flux`` or the provider's own),
    ``model`` (local path or remote model id) and provider-specific ``options``."""

    pipeline_type: str
    model: str
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationSpec:
    """A txt2img request in provider terms.

    ``width``/``height`` in pixels (multiples of 8), ``steps`` denoising steps, ``guidance_scale``
    the CFG scale, ``seed`` the seed of the first image (image ``i`` uses ``seed + i``, as A1111
    does), ``n`` the number of images.
    """

    model: ModelSpec
    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    guidance_scale: float = 7.0
    seed: int = 0
    n: int = 1
    loras: tuple[LoraSpec, ...] = ()


@dataclass
class GeneratedImage:
    """One output image. ``info`` carries what the provider knows about how it was made
    (e.g. ``{"sampler": "Euler", "model_hash": "..."}``) and ends up in the PNG parameters."""

    image: "PILImage"
    seed: int
    info: dict[str, Any] = field(default_factory=dict)


class ProgressSink(Protocol):
    """Where a provider reports progress. Implemented by ``jobs.progress.ProgressReporter``."""

    def step(self, step: int, total_steps: int, message: str = "") -> None:
        """Report that ``step`` of ``total_steps`` denoising steps are done."""

    def should_cancel(self) -> bool:
        """True when the user asked to cancel; the provider then stops and raises
        :class:`GenerationCancelled`."""


class NullSink:
    """A sink that ignores progress and never cancels (for direct calls and benchmarks)."""

    def step(self, step: int, total_steps: int, message: str = "") -> None:  # noqa: D102
        pass

    def should_cancel(self) -> bool:  # noqa: D102
        return False


class ImageProvider:
    """Base class of every image engine.

    Subclasses set ``capabilities`` and implement :meth:`generate`; they receive their settings
    ``OPTIONS`` as keyword arguments and must raise ``ImproperlyConfigured`` for unknown ones.
    """

    name: str = ""
    capabilities: Capabilities = Capabilities()
    pipeline_types: tuple[str, ...] = ()

    def __init__(self, **options: Any):
        if options:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"{type(self).__name__} takes no options, got {sorted(options)}"
            )

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """Run txt2img and return ``spec.n`` images.

        Raises:
            ProviderError: the engine refused or failed (the job fails with its code/message).
            GenerationCancelled: ``sink.should_cancel()`` became true between steps.
        """
        raise NotImplementedError

    def warm_up(self) -> None:
        """Do slow one-time setup (heavy imports) before the first job; default: nothing.

        Called in a background thread when a worker that serves this provider starts.
        """

    def health(self) -> dict[str, Any]:
        """Return ``{"configured": bool, "reachable": bool, "detail": str}``."""
        return {"configured": True, "reachable": True, "detail": ""}

    def models(self) -> list[dict[str, Any]]:
        """Models this engine can serve, as ``[{"id": str, "name": str, "pipeline_type": str}]``."""
        return []
