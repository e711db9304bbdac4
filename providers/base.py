"""The provider contract: what every image engine (local diffusers, remote APIs, fake) implements.

Providers are plain Python and never touch the ORM. The images app turns a ``GenerationRequest``
row into a :class:`GenerationSpec`, calls :meth:`ImageProvider.generate` with a
:class:`ProgressSink`, and stores the returned :class:`GeneratedImage` objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    # False when the engine picks the output size itself (an aspect ratio or a fixed size list,
    # e.g. Gemini and OpenAI): the result may differ from the asked width/height.
    exact_size: bool = True
    # Rewrites prompts with a text model (ImageProvider.enhance_prompt).
    prompt_enhance: bool = False

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
    civitai_model_id: int | None = None
    civitai_version_id: int | None = None
    #: Text-encoder weight of ``<lora:NAME:TE:UNET>`` (A1111 ``te_multiplier``); None: same as
    #: ``weight``, which is then the UNet weight.
    te_weight: float | None = None
    #: The name A1111 resolves the LoRA by (``ss_output_name`` alias or file stem); written to
    #: the infotext as ``<lora:alias:w>``. Empty: ``name``.
    alias: str = ""

    @property
    def air(self) -> str | None:
        """The AIR id ``civitai:<modelId>@<versionId>`` (Runware), or None without Civitai ids."""
        if self.civitai_model_id and self.civitai_version_id:
            return f"civitai:{self.civitai_model_id}@{self.civitai_version_id}"
        return None


@dataclass(frozen=True)
class EmbeddingSpec:
    """A textual inversion embedding named in a prompt: ``name`` (the word that calls it, the
    file stem), absolute ``path`` of its ``.safetensors`` file, ``sha256`` (64 hex, the load
    cache key; its first 12 go to the infotext's ``TI hashes``). docs/checkpoints.md."""

    name: str
    path: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """Which model to run: ``pipeline_type`` (``sd``, ``sdxl``, ``flux`` or the provider's own),
    ``model`` (local path or remote model id) and provider-specific ``options``."""

    pipeline_type: str
    model: str
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HiresSpec:
    """A1111's hires fix: txt2img at the base size, then img2img at ``scale`` times it.

    ``upscaler`` is ``"Latent"`` (latent space, nearest-exact), ``"Lanczos"`` (pixel space) or a
    configured upscale profile slug; ``steps`` the second-pass steps (0: the first pass's
    ``steps``), ``denoising_strength`` 0..1 of the second pass. Source: A1111
    ``modules/processing.py`` (StableDiffusionProcessingTxt2Img, ``enable_hr``).
    """

    scale: float = 2.0
    upscaler: str = "Latent"
    steps: int = 0
    denoising_strength: float = 0.7


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
    #: A1111 sampler label (``"Euler a"``, ``"DPM++ 2M"``...); ``""``: the model's own scheduler.
    sampler: str = ""
    #: A1111 schedule type label (``"Automatic"``, ``"Karras"``, ``"Exponential"``,
    #: ``"SGM Uniform"``); ``""`` means Automatic.
    scheduler: str = ""
    #: A1111 numbering: 1 uses the last CLIP layer (no skip), 2 the one before it, ...
    clip_skip: int = 1
    #: A VAE to use instead of the model's: a ``.safetensors`` file or a diffusers folder path.
    vae: str = ""
    #: Hires fix (txt2img only); None: one pass.
    hires: HiresSpec | None = None
    #: Textual inversion embeddings the prompts name (loaded before they are encoded).
    embeddings: tuple[EmbeddingSpec, ...] = ()


@dataclass(frozen=True)
class EditSpec(GenerationSpec):
    """An img2img or inpaint request: every :class:`GenerationSpec` field plus the source.

    ``init_image`` is the source picture (PIL, RGB), ``mask`` an optional PIL mask of the same
    size where white pixels are repainted (inpaint) and black kept, ``strength`` the denoising
    strength 0..1 (0 keeps the source, 1 ignores it). ``width``/``height`` default to the source
    size when the caller passes 0.
    """

    init_image: Any = None
    mask: Any = None
    strength: float = 0.75

    @property
    def kind(self) -> str:
        """``"inpaint"`` when a mask is given, else ``"img2img"``."""
        return "inpaint" if self.mask is not None else "img2img"


@dataclass(frozen=True)
class UpscaleSpec:
    """An upscale request: ``image`` (PIL), integer ``factor`` (2 or 4), the optional ``model``
    the provider should use and ``upscaler`` (a provider-specific upscaler name, ``""`` for the
    provider's default, e.g. SD.Next's ``"R-ESRGAN 4x+"``)."""

    image: Any
    factor: int = 2
    model: ModelSpec | None = None
    upscaler: str = ""


@dataclass
class GeneratedImage:
    """One output image. ``info`` carries what the provider knows about how it was made
    (e.g. ``{"sampler": "Euler", "model_hash": "..."}``) and ends up in the PNG parameters."""

    image: PILImage
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
    # Pipeline types that only upscale (e.g. diffusers ``sd-upscale``): txt2img and edit
    # requests on such a profile are refused before queuing.
    upscale_only_pipeline_types: tuple[str, ...] = ()

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

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """Run img2img (``spec.mask is None``) or inpaint and return ``spec.n`` images.

        Raises:
            ProviderError: ``unsupported`` when the engine cannot edit; otherwise as generate().
            GenerationCancelled: as in :meth:`generate`.
        """
        raise ProviderError("unsupported", f"Provider {self.name!r} cannot edit images.")

    def upscale(self, spec: UpscaleSpec, sink: ProgressSink) -> GeneratedImage:
        """Upscale ``spec.image`` by ``spec.factor`` and return one image.

        Raises:
            ProviderError: ``unsupported`` when the engine cannot upscale; otherwise as generate().
        """
        raise ProviderError("unsupported", f"Provider {self.name!r} cannot upscale images.")

    def enhance_prompt(self, prompt: str, *, instructions: str = "") -> str:
        """Rewrite ``prompt`` into a richer image prompt with a text model.

        Raises:
            ProviderError: ``unsupported`` when the engine has no text model.
        """
        raise ProviderError("unsupported", f"Provider {self.name!r} cannot rewrite prompts.")

    def supports(self, kind: str) -> bool:
        """True when the capability flag ``kind`` (``txt2img``, ``img2img``, ``inpaint``,
        ``upscale``, ``loras``, ...) is declared; unknown names are False."""
        return bool(getattr(self.capabilities, kind, False))

    def warm_up(self) -> None:
        """Do slow one-time setup (heavy imports) before the first job; default: nothing.

        Called in a background thread when a worker that serves this provider starts.
        """

    def health(self) -> dict[str, Any]:
        """Return ``{"configured": bool, "reachable": bool, "latency_ms": float | None,
        "detail": str}``; remote providers make one cheap authenticated call (with a timeout)."""
        return {"configured": True, "reachable": True, "latency_ms": 0.0, "detail": ""}

    def is_configured(self) -> bool:
        """False when a required setting (API key, base URL) is missing; then every call raises
        :class:`ProviderUnavailable`. Local providers are always configured."""
        return True

    def models(self) -> list[dict[str, Any]]:
        """Models this engine can serve, as ``[{"id": str, "name": str, "pipeline_type": str}]``."""
        return []
