"""Local generation with Hugging Face diffusers (SD 1.x/2.x, SDXL, Flux), fully offline.

txt2img, img2img and inpaint share one loaded pipeline per model (``from_pipe``); a model is a
diffusers folder or a single ``.safetensors`` checkpoint plus a config folder (see
:mod:`providers.diffusers_pipelines`).

Facts this module relies on were measured and are written down in
docs/offline-models.md: no model hub is reachable, so pipelines are only ever
loaded with ``from_pretrained(<local folder>, local_files_only=True)``; importing torch + diffusers
costs about 3.4 s, so they are imported inside methods, never when this module is imported;
``load_lora_weights`` takes about 65 ms and ``set_adapters`` about 3 ms, so LoRAs are loaded once
per pipeline as named adapters and switched per request; a LoRA for another architecture raises
``RuntimeError ... size mismatch``, a file without LoRA keys ``ValueError: Invalid LoRA checkpoint``
and a file that is not safetensors ``OSError``, and the pipeline stays usable after each.

Process-wide state: an LRU of loaded pipelines keyed by ``(pipeline_type, realpath)``. Each cached
pipeline has its own lock, so one generation runs at a time per pipeline; different pipelines may
run concurrently (in practice a Celery ``gpu`` worker runs one job at a time).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import diffusers_passes as passes
from . import diffusers_pipelines as dp
from . import diffusers_upscale as du
from .base import (
    Capabilities,
    EditSpec,
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    ImageProvider,
    ProgressSink,
    ProviderError,
    UpscaleSpec,
)
from .diffusers_util import (  # noqa: F401 - re-exported: tests and callers import them here
    SAMPLER_NAMES,
    _int_option,
    _is_oom,
    _model_name,
    _short_reason,
    adapter_name_for,
    lora_component_weights,
    resolve_device,
    sampler_name,
)
from .samplers import sampler_check, scheduler_for, scheduler_seed
from .vae import apply_vae

logger = logging.getLogger(__name__)

#: ``model_index.json`` classes that ``StableDiffusionPipeline`` can load (SD 1.x/2.x layout).
SD_PIPELINE_CLASSES = dp.PIPELINE_KINDS["sd"].folder

_VALID_DEVICES = ("auto", "cpu", "cuda", "mps")


# ----------------------------------------------------------------------------- the cache
@dataclass
class _Entry:
    """One cached pipeline. ``lock`` serialises loading, LoRA switching and generation on it."""

    key: tuple[str, str]
    device: str = ""
    pipe: Any = None
    nbytes: int = 0
    #: "img2img"/"inpaint" -> pipeline sharing ``pipe``'s modules (made on first use).
    variants: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: adapter name -> LoRA sha256, least recently used first.
    adapters: OrderedDict = field(default_factory=OrderedDict)
    #: Where the pipeline was loaded from (the VAE override reads its VAE config there).
    source: Any = None
    #: The scheduler and VAE the model came with (each request gets a fresh scheduler).
    base_scheduler: Any = None
    base_vae: Any = None
    #: (pipeline kind, sampler label, schedule type) -> scheduler made for it, reused (making
    #: one costs 1-3 ms, DPMSolverSDEScheduler about 100 ms: it computes 1000 timesteps).
    schedulers: dict = field(default_factory=dict)
    #: The VAE override in use ("" = the model's) and the loaded overrides (LRU).
    vae_path: str = ""
    vaes: OrderedDict = field(default_factory=OrderedDict)


_cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
_cache_lock = threading.Lock()
# diffusers' lazy module is not safe to import from two threads at once (a warm-up thread and
# a first job raced into "cannot import name 'StableDiffusionPipeline'"): import under a lock.
_import_lock = dp.IMPORT_LOCK


def _sd_pipeline_class():
    """``diffusers.StableDiffusionPipeline``, imported once under a lock (about 3 s)."""
    return dp.diffusers_class("StableDiffusionPipeline")


def clear_pipeline_cache() -> None:
    """Forget every loaded pipeline (and its adapters) in this process. For tests."""
    with _cache_lock:
        _cache.clear()


def _free_device_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- provider
class DiffusersProvider(ImageProvider):
    """txt2img, img2img and inpaint on local SD 1.x/2.x, SDXL and Flux models, with LoRA stacks.

    Options (``settings.IMAGE_PROVIDERS["diffusers_local"]["OPTIONS"]``):
        device: ``"auto"`` (cuda, else mps, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
            ``"mps"``. float16 (bfloat16 for Flux) on cuda/mps, float32 on cpu.
        max_cached_pipelines: how many loaded pipelines this process keeps (LRU, >= 1). The cache
            is process-wide; the bound applied is that of the provider inserting a pipeline.
        max_cache_bytes: also evict least recently used pipelines while the parameters of all
            cached ones exceed this many bytes (0: no memory bound). The pipeline just loaded is
            always kept.
        num_threads: torch intra-op CPU threads (``torch.set_num_threads``, process-wide), set
            before each generation; 0/None leaves torch's default (one per core). On a small
            shared CPU box, 1 avoids OpenMP oversubscription: measured on 2 busy cores, a 64x64
            4-step image took 2.6-6.2 s with 2 threads and 0.28-0.36 s with 1.
        preview_every: put a preview image (``sink.preview(data_url)``, a small WebP made from
            the latents without the VAE) every this many steps; 0 turns previews off. A model
            profile's ``options["preview_every"]`` overrides it.

    Raises:
        django.core.exceptions.ImproperlyConfigured: unknown or invalid options.
    """

    name = "diffusers_local"
    pipeline_types = tuple(dp.PIPELINE_KINDS)
    upscale_only_pipeline_types = dp.UPSCALE_TYPES
    capabilities = Capabilities(img2img=True, inpaint=True, upscale=True, loras=True,
                                max_width=2048, max_height=2048, max_batch=8)

    #: LoRA adapters kept loaded per pipeline; the least recently used is deleted beyond this.
    max_loaded_adapters = 16
    #: VAE overrides kept loaded per pipeline (least recently used dropped beyond this).
    max_loaded_vaes = 2

    def __init__(
        self,
        *,
        device: str = "auto",
        max_cached_pipelines: int = 2,
        max_cache_bytes: int = 0,
        num_threads: int | None = None,
        preview_every: int = 0,
        **unknown: Any,
    ):
        from django.core.exceptions import ImproperlyConfigured

        if unknown:
            raise ImproperlyConfigured(
                f"DiffusersProvider got unknown options {sorted(unknown)}; it takes 'device', "
                "'max_cached_pipelines', 'max_cache_bytes', 'num_threads' and 'preview_every'."
            )
        device = str(device or "auto").strip().lower()
        base, _, index = device.partition(":")
        if base not in _VALID_DEVICES or (index and (base != "cuda" or not index.isdigit())):
            raise ImproperlyConfigured(
                f"DiffusersProvider device must be auto, cpu, cuda, cuda:N or mps, got {device!r}."
            )
        max_cached = _int_option(max_cached_pipelines, default=0)
        if max_cached < 1:
            raise ImproperlyConfigured(
                f"DiffusersProvider max_cached_pipelines must be an integer >= 1, "
                f"got {max_cached_pipelines!r}."
            )
        for label, value in (("num_threads", num_threads), ("max_cache_bytes", max_cache_bytes),
                             ("preview_every", preview_every)):
            if _int_option(value, default=-1) < 0:
                raise ImproperlyConfigured(
                    f"DiffusersProvider {label} must be an integer >= 0, got {value!r}.")
        self.device_option = device
        self.num_threads = _int_option(num_threads, default=0)
        self.max_cached_pipelines = max_cached
        self.max_cache_bytes = _int_option(max_cache_bytes, default=0)
        self.preview_every = _int_option(preview_every, default=0)
        self._device: str | None = None

    # ------------------------------------------------------------------ public API
    @property
    def device(self) -> str:
        """The torch device pipelines run on (resolved on first use; imports torch)."""
        if self._device is None:
            self._device = resolve_device(self.device_option)
        return self._device

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """Run txt2img and return ``spec.n`` images; image ``i`` uses seed ``spec.seed + i``.

        Args:
            spec: ``spec.model.model`` is a local diffusers folder (``model_index.json`` inside)
                or a ``.safetensors`` checkpoint (config folder in ``spec.model.options["config"]``
                or shipped in ``providers/configs/<type>``); ``width``/``height`` in pixels
                (multiples of 8), ``steps`` denoising steps, ``loras`` applied as peft adapters
                with their weights.
            sink: gets ``step(i, spec.steps)`` after each denoising step (i = 1..steps) and is
                asked ``should_cancel()`` before the run and after every step; with previews on,
                ``sink.preview(data_url)`` (when the sink has it) every K steps.

        Raises:
            ProviderError: ``unsupported_pipeline`` (type not sd/sdxl/flux, or the folder holds
                another pipeline class), ``model_not_found`` (no such folder or file / no
                model_index.json), ``model_load_failed``, ``invalid_request`` (size not a
                multiple of 8, n < 1), ``lora_not_found`` (file missing), ``lora_incompatible``
                (the LoRA does not load into this model; the pipeline stays usable),
                ``out_of_memory``.
            GenerationCancelled: the sink asked to stop (before the start or between steps).
        """
        self._check_request(spec)
        return self._generate(spec, sink, kind="txt2img", call_kwargs={})

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """img2img (``spec.mask`` None) or inpaint on the same cached model as txt2img.

        The img2img/inpaint pipeline is made once per cached model with ``from_pipe`` and shares
        its modules and LoRA adapters. ``init_image`` (and ``mask``) are resized to
        ``width x height``; a width/height of 0 takes the source size rounded down to a multiple
        of 8. ``strength`` 0..1: the run does ``int(steps * strength)`` denoising steps (at least
        1), and progress counts those. In ``mask``, white pixels are repainted, black kept.

        Raises:
            ProviderError: as :meth:`generate`, and ``invalid_request`` without an init image
                or with strength outside (0, 1].
            GenerationCancelled: as :meth:`generate`.
        """
        if spec.init_image is None:
            raise ProviderError("invalid_request", "img2img/inpaint needs an init image.")
        if not 0.0 < float(spec.strength) <= 1.0:
            raise ProviderError("invalid_request",
                                f"Denoising strength must be in (0, 1], got {spec.strength}.")
        width = spec.width or (spec.init_image.width // 8 * 8)
        height = spec.height or (spec.init_image.height // 8 * 8)
        spec = dataclasses.replace(spec, width=width, height=height)
        self._check_request(spec)
        from PIL import Image

        kwargs: dict[str, Any] = {
            "image": spec.init_image.convert("RGB").resize((width, height),
                                                           Image.Resampling.LANCZOS),
            "strength": float(spec.strength),
        }
        if spec.mask is not None:
            kwargs["mask_image"] = spec.mask.convert("L").resize((width, height),
                                                                 Image.Resampling.NEAREST)
        return self._generate(spec, sink, kind=spec.kind, call_kwargs=kwargs)

    def upscale(self, spec: UpscaleSpec, sink: ProgressSink) -> GeneratedImage:
        """Upscale with the profile's ``sd-upscale`` pipeline, loaded and cached like the others
        (factors, options, errors: :func:`providers.diffusers_upscale.run_upscale`); raises
        ProviderError ``unsupported_pipeline`` for a profile of another pipeline type."""
        du.check_upscale_request(spec)
        ptype = spec.model.pipeline_type
        source = dp.locate_model(spec.model.model, ptype, spec.model.options or {})
        if sink.should_cancel():
            raise GenerationCancelled()
        entry = self._entry(ptype, source.path)
        with entry.lock:
            pipe = self._ensure_loaded(entry, source)
            if sink.should_cancel():
                raise GenerationCancelled()
            return du.run_upscale(pipe, spec, sink, num_threads=self.num_threads)

    def warm_up(self) -> None:
        """Import torch and diffusers and resolve the device (3-4 s on a small CPU box), so the
        first job of a fresh worker does not pay for it."""
        _sd_pipeline_class()
        _ = self.device

    def models(self) -> list[dict[str, Any]]:
        """Models under ``settings.MODELS_DIR``: diffusers folders (``model_index.json`` of a
        known class) and ``.safetensors`` checkpoints whose tensor names say SD/SDXL/Flux
        (header only, no weights read), as ``[{"id": <absolute path>, "name": <file or folder
        name>, "pipeline_type": "sd" | "sdxl" | "flux"}]``."""
        from django.conf import settings

        return dp.models_in(Path(getattr(settings, "MODELS_DIR", "") or ""))

    def health(self) -> dict[str, Any]:
        """``{"configured": True, "reachable": <torch+diffusers import>, "latency_ms": 0.0,
        "detail": "device=..."}``. Imports torch and diffusers on first call (a few seconds)."""
        try:
            _sd_pipeline_class()
            device = self.device
        except Exception as exc:  # noqa: BLE001 - ImportError or a broken CUDA install: reported
            return {"configured": True, "reachable": False, "latency_ms": None,
                    "detail": f"diffusers/torch unavailable: {_short_reason(exc)}"}
        return {"configured": True, "reachable": True, "latency_ms": 0.0,
                "detail": f"device={device}"}

    def cache_info(self) -> dict[str, Any]:
        """The real cache state: ``{"pipelines": [(pipeline_type, realpath), ...] (LRU first),
        "adapters": {key: [adapter names]}, "bytes": {key: parameter bytes}}``."""
        with _cache_lock:
            entries = list(_cache.values())
        loaded = [e for e in entries if e.pipe is not None]
        return {
            "pipelines": [e.key for e in loaded],
            "adapters": {e.key: list(e.adapters) for e in loaded},
            "bytes": {e.key: e.nbytes for e in loaded},
        }

    def cached_pipeline(self, model: str, pipeline_type: str = "sd", kind: str = "txt2img") -> Any:
        """The loaded pipeline for ``model`` (folder or file path), or None. For tests and the
        benchmark; ``kind`` "img2img"/"inpaint" gives the variant made by ``from_pipe``."""
        key = (pipeline_type, os.path.realpath(model))
        with _cache_lock:
            entry = _cache.get(key)
        if entry is None:
            return None
        return entry.pipe if kind == "txt2img" else entry.variants.get(kind)

    # ------------------------------------------------------------------ internals
    def _check_request(self, spec: GenerationSpec) -> None:
        if spec.model.pipeline_type not in self.pipeline_types:
            raise ProviderError(
                "unsupported_pipeline",
                "The diffusers_local provider runs pipeline types "
                f"{', '.join(self.pipeline_types)};"
                f" got {spec.model.pipeline_type!r}.",
            )
        if spec.model.pipeline_type in dp.UPSCALE_TYPES:
            raise ProviderError("unsupported_pipeline", f"Model {_model_name(spec.model.model)!r}"
                                f" ({spec.model.pipeline_type}) only upscales, via /api/upscale/.")
        if spec.width % 8 or spec.height % 8 or spec.width < 8 or spec.height < 8:
            raise ProviderError(
                "invalid_request",
                f"Width and height must be positive multiples of 8 pixels, got "
                f"{spec.width}x{spec.height}.",
            )
        if spec.n < 1 or spec.steps < 1:
            raise ProviderError("invalid_request", "n and steps must be at least 1.")
        if not 1 <= int(spec.clip_skip or 1) <= 12:
            raise ProviderError("invalid_request",
                                f"Clip skip must be 1..12 (A1111 numbering), got {spec.clip_skip}.")
        try:
            sampler_check(spec.sampler, spec.scheduler)
        except ValueError as exc:
            raise ProviderError("invalid_request", str(exc)) from exc

    def _generate(self, spec: GenerationSpec, sink: ProgressSink, *, kind: str,
                  call_kwargs: dict[str, Any]) -> list[GeneratedImage]:
        source = dp.locate_model(spec.model.model, spec.model.pipeline_type,
                                 spec.model.options or {})
        if sink.should_cancel():
            raise GenerationCancelled()
        entry = self._entry(spec.model.pipeline_type, source.path)
        with entry.lock:
            pipe = self._ensure_loaded(entry, source)
            self._apply_loras(entry, spec)
            img2img = None
            if kind == "txt2img" and spec.hires is not None:
                img2img = self._variant(entry, "img2img")
            elif kind != "txt2img":
                pipe = self._variant(entry, kind)
            info = self._configure(entry, pipe, spec, kind)
            if spec.embeddings:  # textual inversion, loaded before the prompts are encoded
                from .textual_inversion import embeddings_apply

                spec, info["ti_hashes"] = embeddings_apply(entry.pipe, spec)
            if img2img is not None:  # the hires pass samples as the first one (A1111)
                self._configure(entry, img2img, spec, "img2img")
            if sink.should_cancel():
                raise GenerationCancelled()
            return self._run(pipe, spec, sink, call_kwargs, info=info, img2img=img2img)

    @staticmethod
    def _variant(entry: _Entry, kind: str) -> Any:
        """The img2img/inpaint pipeline sharing ``entry.pipe``'s modules (made once)."""
        if kind not in entry.variants:
            entry.variants[kind] = dp.variant_pipeline(entry.pipe, entry.key[0], kind)
        return entry.variants[kind]

    def _entry(self, pipeline_type: str, model_path: str) -> _Entry:
        """Get or create the cache entry (most recently used); evict beyond the bound."""
        key = (pipeline_type, model_path)
        with _cache_lock:
            entry = _cache.get(key)
            if entry is None:
                entry = _cache[key] = _Entry(key=key)
            _cache.move_to_end(key)
            evicted = 0
            while len(_cache) > self.max_cached_pipelines:
                old_key, _ = _cache.popitem(last=False)
                evicted += 1
                logger.info("Evicted pipeline %s from the cache", old_key)
        if evicted:
            _free_device_memory()
        return entry

    def _evict_for_memory(self, keep: _Entry) -> None:
        """Drop least recently used pipelines while the cache holds more than
        ``max_cache_bytes`` of parameters (never ``keep``)."""
        if not self.max_cache_bytes:
            return
        evicted = 0
        with _cache_lock:
            while sum(e.nbytes for e in _cache.values()) > self.max_cache_bytes:
                victim = next((k for k, e in _cache.items() if e is not keep), None)
                if victim is None:
                    break
                del _cache[victim]
                evicted += 1
                logger.info("Evicted pipeline %s (cache over %d bytes)", victim,
                            self.max_cache_bytes)
        if evicted:
            _free_device_memory()

    def _ensure_loaded(self, entry: _Entry, source: dp.ModelSource) -> Any:
        """Load the pipeline into ``entry`` (caller holds ``entry.lock``)."""
        device = self.device
        if entry.pipe is not None and entry.device == device:
            return entry.pipe
        what = "checkpoint" if source.single_file else "diffusers folder"
        try:
            pipe = dp.load_pipeline(source, entry.key[0], device)
        except Exception as exc:
            with _cache_lock:
                if _cache.get(entry.key) is entry:
                    del _cache[entry.key]
            if _is_oom(exc):
                raise ProviderError("out_of_memory",
                                    f"Out of memory loading {source.path}.") from exc
            raise ProviderError(
                "model_load_failed",
                f"Cannot load the {what} {source.path}: {_short_reason(exc)}",
            ) from exc
        entry.pipe, entry.device, entry.source = pipe, device, source
        entry.nbytes = dp.pipeline_bytes(pipe)
        entry.variants.clear()
        entry.adapters.clear()
        entry.base_scheduler, entry.base_vae = pipe.scheduler, pipe.vae
        entry.schedulers.clear()
        entry.vae_path = ""
        entry.vaes.clear()
        logger.info("Loaded %s %s on %s (%d MB)", what, source.path, device, entry.nbytes >> 20)
        self._evict_for_memory(keep=entry)
        return pipe

    def _apply_loras(self, entry: _Entry, spec: GenerationSpec) -> None:
        """Make exactly ``spec.loras`` active with their weights (caller holds ``entry.lock``).

        Each LoRA is loaded once per pipeline as adapter ``lora_<sha256[:16]>``; repeated LoRAs
        (same sha256) have their weights added. With no LoRAs, adapters are disabled so the output
        is exactly the base model's.
        """
        pipe = entry.pipe
        # adapter -> [UNet weight, text-encoder weight]; A1111 <lora:N:TE:UNET> sets both.
        wanted: OrderedDict[str, list[float]] = OrderedDict()
        split = False
        for lora in spec.loras:
            name = adapter_name_for(lora.sha256)
            if name not in entry.adapters:
                self._load_lora(entry, lora, name)
            entry.adapters.move_to_end(name)
            te = float(lora.weight if lora.te_weight is None else lora.te_weight)
            split = split or lora.te_weight is not None
            unet_w, te_w = wanted.get(name, (0.0, 0.0))
            wanted[name] = [unet_w + float(lora.weight), te_w + te]

        # disable_lora/enable_lora are called every time rather than tracked: they take about a
        # millisecond, and diffusers re-activates adapters on its own after a failed load.
        if not wanted:
            if entry.adapters:
                pipe.disable_lora()
            return
        pipe.enable_lora()
        if split:
            weights = lora_component_weights(pipe, wanted)
        else:
            weights = [unet_w for unet_w, _ in wanted.values()]
        pipe.set_adapters(list(wanted), adapter_weights=weights)
        self._trim_adapters(entry, keep=set(wanted))

    def _load_lora(self, entry: _Entry, lora: Any, name: str) -> None:
        pipe = entry.pipe
        if not os.path.isfile(lora.path):
            raise ProviderError("lora_not_found", f"LoRA '{lora.name}': no file at {lora.path}.")
        try:
            pipe.load_lora_weights(lora.path, adapter_name=name)
        except (RuntimeError, ValueError, OSError, KeyError) as exc:
            self._drop_partial_adapter(pipe, name)
            if _is_oom(exc):
                raise ProviderError(
                    "out_of_memory", f"Out of memory loading LoRA '{lora.name}'.") from exc
            raise ProviderError(
                "lora_incompatible",
                f"LoRA '{lora.name}' does not fit model "
                f"{os.path.basename(entry.key[1])} ({entry.key[0]}): {_short_reason(exc)}",
            ) from exc
        entry.adapters[name] = lora.sha256
        # load_lora_weights activates the new adapter; the caller sets the wanted set right after.
        logger.info("Loaded LoRA %s (%s) into %s", lora.name, name, entry.key[1])

    @staticmethod
    def _drop_partial_adapter(pipe: Any, name: str) -> None:
        """Remove adapter ``name`` if a failed load left it registered in any component."""
        try:
            registered = {a for names in pipe.get_list_adapters().values() for a in names}
        except (ValueError, AttributeError):  # no PEFT backend, or no LoRA support at all
            return
        if name in registered:
            try:
                pipe.delete_adapters(name)
            except Exception:  # pragma: no cover - best effort
                logger.exception("Could not delete the partial adapter %s", name)

    def _trim_adapters(self, entry: _Entry, keep: set[str]) -> None:
        while len(entry.adapters) > self.max_loaded_adapters:
            oldest = next((n for n in entry.adapters if n not in keep), None)
            if oldest is None:
                return
            entry.pipe.delete_adapters(oldest)
            del entry.adapters[oldest]

    def _preview_every(self, spec: GenerationSpec) -> int:
        value = (spec.model.options or {}).get("preview_every", self.preview_every)
        return max(0, _int_option(value, default=0))

    def _configure(self, entry: _Entry, pipe: Any, spec: GenerationSpec,
                   kind: str = "txt2img") -> dict[str, str]:
        """Put the request's VAE on the cached pipeline and its variants, and the scheduler of
        its sampler on ``pipe`` (caller holds ``entry.lock``): one scheduler per pipeline kind,
        sampler and schedule type, made from the model's scheduler config on first use and
        reused (pipelines reset it in ``set_timesteps``; DPM++ SDE's noise is re-seeded with
        ``spec.seed``). Returns the ``info`` items ``sampler`` and ``scheduler`` (schedule type;
        absent for the model's own scheduler) that will run.

        Raises:
            ProviderError: ``invalid_request`` (unknown or unsupported sampler/schedule type),
                ``vae_load_failed`` (the VAE does not load).
        """
        apply_vae(entry, spec, max_loaded=self.max_loaded_vaes)
        if not spec.sampler:
            pipe.scheduler = entry.base_scheduler
            return {"sampler": sampler_name(entry.base_scheduler)}
        try:
            label, schedule = sampler_check(spec.sampler, spec.scheduler)
        except ValueError as exc:
            raise ProviderError("invalid_request", str(exc)) from exc
        key = (kind, label, schedule)
        if key not in entry.schedulers:
            entry.schedulers[key], _ = scheduler_for(entry.base_scheduler.config, label,
                                                     schedule)
        pipe.scheduler = scheduler_seed(entry.schedulers[key], label, spec.seed)
        return {"sampler": label, "scheduler": schedule}

    def _run(self, pipe: Any, spec: GenerationSpec, sink: ProgressSink,
             call_kwargs: dict[str, Any], *, info: dict[str, str],
             img2img: Any = None) -> list[GeneratedImage]:
        """One pass (or, with ``img2img`` and ``spec.hires``, the hires fix's two) on ``pipe``;
        ``info`` goes into every :class:`GeneratedImage` with the model name."""
        import torch

        if self.num_threads and torch.get_num_threads() != self.num_threads:
            torch.set_num_threads(self.num_threads)
        every = self._preview_every(spec)
        prompt_kw = passes.prompt_kwargs(pipe, spec)
        if img2img is not None and spec.hires is not None:
            images = passes.hires_run(pipe, img2img, spec, sink, prompt_kw, every=every)
        else:
            progress = passes.Progress(sink, every=every,
                                       pipeline_type=spec.model.pipeline_type)
            kwargs: dict[str, Any] = dict(
                prompt_kw, width=spec.width, height=spec.height, num_inference_steps=spec.steps,
                guidance_scale=spec.guidance_scale, num_images_per_prompt=spec.n,
                generator=passes.generators(spec), output_type="pil", **call_kwargs)
            images = passes.call(pipe, kwargs, progress, spec, width=spec.width,
                                 height=spec.height).images
        info = {**info, "model": _model_name(spec.model.model)}
        if spec.clip_skip and spec.clip_skip > 1:
            info["clip_skip"] = int(spec.clip_skip)
        return [
            GeneratedImage(image=img, seed=spec.seed + i, info=dict(info))
            for i, img in enumerate(images)
        ]
