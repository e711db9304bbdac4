"""Denoising passes of the ``diffusers_local`` provider: one pipeline call with progress,
previews and cancel; the prompt conditioning; and A1111's hires fix as two passes in one job.

The prompt goes through :func:`providers.prompt_embeds.encode_prompts` (A1111 attention syntax,
long prompts, clip skip) on SD/SDXL pipelines; other pipelines (Flux) get the plain text.

Hires fix (docs/samplers.md#hires-fix): the txt2img pass runs at the base size (``output_type=
"latent"`` for the latent upscalers, pictures for the others), the result is enlarged
(:mod:`providers.hires`), then the img2img pipeline made from the same modules (``from_pipe``)
runs the second pass. Progress counts both passes as diffusers runs them: the sink sees
``step(i, total)`` with ``i`` = 1..total once each, ``total`` = the first pass's timesteps + the
second pass's (``int(steps * strength)`` for first-order samplers).

torch is imported inside the functions.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from . import diffusers_pipelines as dp
from . import hires as hr
from .base import GenerationCancelled, GenerationSpec, ProgressSink, ProviderError
from .diffusers_util import _is_oom

logger = logging.getLogger(__name__)


def prompt_kwargs(pipe: Any, spec: GenerationSpec) -> dict[str, Any]:
    """The conditioning keyword arguments of ``pipe(...)`` for ``spec``'s prompts.

    Raises:
        ProviderError: ``invalid_request`` for a clip skip beyond the text encoder's layers or a
            prompt the attention parser refuses.
    """
    from .prompt_embeds import encode_prompts, prompt_embeds_supported

    if prompt_embeds_supported(pipe):
        try:
            return encode_prompts(pipe, spec.prompt, spec.negative_prompt or "",
                                  clip_skip=int(spec.clip_skip or 1))
        except ValueError as exc:  # clip skip too deep, PromptSyntaxError
            raise ProviderError("invalid_request", str(exc)) from exc
    # Flux/SD3: text only. diffusers' own clip_skip= is not used (with transformers 5 it fails
    # on CLIPTextModel without .text_model), and these encoders are not CLIP-only anyway.
    from images.prompt import prompt_plain_text

    negative = prompt_plain_text(spec.negative_prompt) if spec.negative_prompt else None
    return {"prompt": prompt_plain_text(spec.prompt), "negative_prompt": negative}


class Progress:
    """The ``callback_on_step_end`` of one or more passes reporting to one sink.

    ``total`` 0: the pass's own timestep count (``pipeline._num_timesteps``); otherwise the sum
    over all passes, with ``offset`` the steps of the passes before the current one.
    """

    def __init__(self, sink: ProgressSink, *, every: int, pipeline_type: str, total: int = 0):
        self.sink = sink
        self.every = every
        self.send_preview = getattr(sink, "preview", None) if every else None
        self.pipeline_type = pipeline_type
        self.total = total
        self.offset = 0
        self.cancelled = False

    def __call__(self, pipeline, step_index, timestep, callback_kwargs):
        own = int(getattr(pipeline, "_num_timesteps", 0) or 1)
        total = self.total or own
        done = min(self.offset + min(step_index + 1, own), total)
        if self.send_preview is not None and done % self.every == 0 and done < total:
            data_url = dp.latent_preview(callback_kwargs.get("latents"), self.pipeline_type)
            if data_url:
                self.send_preview(data_url)
        self.sink.step(done, total)
        if self.sink.should_cancel():
            self.cancelled = True
            pipeline._interrupt = True  # the denoising loop skips the remaining steps
        return callback_kwargs


def generators(spec: GenerationSpec) -> list:
    """CPU generators seeded ``seed + i`` (image ``i``), as A1111 seeds a batch."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(spec.seed + i) for i in range(spec.n)]


def call(pipe: Any, kwargs: dict[str, Any], progress: Progress, spec: GenerationSpec,
         *, width: int, height: int):
    """Run ``pipe`` with the keyword arguments it accepts; return its output.

    Raises:
        ProviderError: ``out_of_memory``. GenerationCancelled: the sink asked to stop.
    """
    accepted = inspect.signature(pipe.__call__).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    kwargs["callback_on_step_end"] = progress
    try:
        result = pipe(**kwargs)
    except Exception as exc:
        if _is_oom(exc):
            raise ProviderError(
                "out_of_memory",
                f"Out of memory generating {spec.n} image(s) of {width}x{height}.",
            ) from exc
        raise
    if progress.cancelled:
        raise GenerationCancelled()
    return result


def count_timesteps(scheduler: Any, steps: int, strength: float | None = None) -> int:
    """The denoising steps diffusers runs for ``steps`` with ``scheduler`` (second-order
    samplers run about twice as many), and for img2img at ``strength`` (diffusers
    ``get_timesteps``: the last ``int(steps * strength)`` steps, times the solver order)."""
    first_order = steps if strength is None else min(steps, int(steps * strength))
    try:
        scratch = type(scheduler).from_config(scheduler.config)
        scratch.set_timesteps(steps, device="cpu")
        timesteps = scratch.timesteps
    except Exception:  # noqa: BLE001 - e.g. flow matching needs ``mu``: first order there
        return first_order
    if strength is None:
        return len(timesteps)
    t_start = max(steps - first_order, 0)
    return len(timesteps[t_start * getattr(scratch, "order", 1):])


def hires_run(pipe: Any, img2img: Any, spec: GenerationSpec, sink: ProgressSink,
              prompt_kw: dict[str, Any], *, every: int) -> list:
    """A1111's hires fix: txt2img at ``spec.width x spec.height``, enlarge, img2img.

    Args:
        pipe: the txt2img pipeline (sampler and VAE set); img2img: its ``from_pipe`` variant
            with its own scheduler of the same sampler.
        prompt_kw: :func:`prompt_kwargs` (computed once, used by both passes).

    Returns:
        PIL images of :func:`providers.hires.hires_size`.

    Raises:
        ProviderError: ``invalid_request`` (unknown upscaler, a latent upscaler on Flux, a second
            pass of 0 steps), ``out_of_memory``. GenerationCancelled.
    """
    spec_hr = spec.hires
    try:
        upscaler = hr.hires_upscaler(spec_hr.upscaler)
    except ValueError as exc:
        raise ProviderError("invalid_request", str(exc)) from exc
    latent = upscaler in hr.LATENT_UPSCALERS
    if latent and spec.model.pipeline_type == "flux":
        raise ProviderError("invalid_request", "Latent hires upscalers need SD/SDXL latents; "
                            "use Lanczos with Flux.")
    size = hr.hires_size(spec.width, spec.height, spec_hr.scale)
    steps2, _ = hr.hires_steps(spec.steps, spec_hr.steps, spec_hr.denoising_strength)
    strength = float(spec_hr.denoising_strength)
    n1 = count_timesteps(pipe.scheduler, spec.steps)
    n2 = count_timesteps(img2img.scheduler, steps2, strength)
    if n2 < 1:
        raise ProviderError("invalid_request", f"The hires pass would run no step: {steps2} "
                            f"steps x denoising strength {strength} is below 1.")
    progress = Progress(sink, every=every, pipeline_type=spec.model.pipeline_type,
                        total=n1 + n2)
    base = dict(prompt_kw, guidance_scale=spec.guidance_scale)
    first = call(pipe, dict(base, width=spec.width, height=spec.height,
                            num_inference_steps=spec.steps, num_images_per_prompt=spec.n,
                            generator=generators(spec),
                            output_type="latent" if latent else "pil"),
                 progress, spec, width=spec.width, height=spec.height)
    if latent:
        image = hr.upscale_latents(first.images, size, upscaler,
                                   factor=int(getattr(pipe, "vae_scale_factor", 8)))
    else:
        image = hr.upscale_images(list(first.images), size, upscaler)
    progress.offset = n1
    second = call(img2img, dict(base, image=image, strength=strength, width=size[0],
                                height=size[1], num_inference_steps=steps2,
                                num_images_per_prompt=spec.n, generator=generators(spec),
                                output_type="pil"),
                  progress, spec, width=size[0], height=size[1])
    return list(second.images)
