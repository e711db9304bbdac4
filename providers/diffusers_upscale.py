"""Upscaling on the ``diffusers_local`` provider with a configured diffusers upscale pipeline.

A model profile with pipeline type ``sd-upscale`` names a local diffusers folder holding a
``StableDiffusionUpscalePipeline`` (the layout of ``stabilityai/stable-diffusion-x4-upscaler``).
It is loaded offline and cached exactly like the generation pipelines (see
:mod:`providers.diffusers_local`); this module checks the request and runs the pipeline.

Factors: the pipeline enlarges 4x. ``factor`` 4 returns its output; ``factor`` 2 runs the x4
pipeline and shrinks the result to 2x with Lanczos (more detail than a 2x resample of the
source, at the cost of the x4 run). A source whose sides are not multiples of 8 pixels is first
resized (Lanczos) to the next multiples of 8 -- the UNet halves the resolution three times --
and the output is resized to exactly ``factor`` times the source size.

Profile options (``ModelProfile.options``): ``steps`` (denoising steps, default 20),
``guidance_scale`` (default 1.0: no classifier-free guidance, which would double the cost;
the pipeline's own default is 9.0 with a prompt), ``noise_level`` (noise added to the source,
0..``max_noise_level`` of the model, default 20 as in diffusers), ``prompt`` and
``negative_prompt`` (default empty), ``seed`` (default 0).

``sd-latent-upscale`` (``StableDiffusionLatentUpscalePipeline``, x2) is not implemented.
"""

from __future__ import annotations

from typing import Any

from . import diffusers_pipelines as dp
from .base import GeneratedImage, GenerationCancelled, ProgressSink, ProviderError, UpscaleSpec

#: Factors an ``sd-upscale`` profile serves.
FACTORS = (2, 4)


def check_upscale_request(spec: UpscaleSpec) -> None:
    """Raise unless ``spec`` can run on a diffusers upscale pipeline.

    Raises:
        ProviderError: ``unsupported_pipeline`` when there is no model or its pipeline type is
            not an upscale type (``sd-upscale``); ``invalid_request`` for a factor other than
            2 or 4, or a source smaller than 8x8 pixels.
    """
    model = spec.model
    ptype = getattr(model, "pipeline_type", "")
    if model is None or ptype not in dp.UPSCALE_TYPES:
        raise ProviderError(
            "unsupported_pipeline",
            "The diffusers_local provider upscales only with a model profile of pipeline type "
            f"{', '.join(dp.UPSCALE_TYPES)} (a diffusers StableDiffusionUpscalePipeline folder); "
            f"got {ptype or 'no model'!r}. Use the 'lanczos' upscaler or an upscale profile.",
        )
    if int(spec.factor) not in FACTORS:
        raise ProviderError("invalid_request",
                            f"Upscale factor must be one of {FACTORS}, got {spec.factor}.")
    if spec.image is None or spec.image.width < 8 or spec.image.height < 8:
        raise ProviderError("invalid_request", "The source image must be at least 8x8 pixels.")


def _options(options: dict[str, Any], max_noise_level: int) -> dict[str, Any]:
    try:
        steps = int(options.get("steps") or 20)
        guidance = float(options.get("guidance_scale") or 1.0)
        noise = int(options.get("noise_level", 20))
        seed = int(options.get("seed") or 0)
    except (TypeError, ValueError) as exc:
        raise ProviderError("invalid_request", f"Bad upscale profile option: {exc}") from exc
    if steps < 1 or not 0 <= noise <= max_noise_level:
        raise ProviderError(
            "invalid_request",
            f"Upscale profile options need steps >= 1 and 0 <= noise_level <= {max_noise_level};"
            f" got steps={steps}, noise_level={noise}.")
    return {"steps": steps, "guidance": guidance, "noise": noise, "seed": seed,
            "prompt": str(options.get("prompt") or ""),
            "negative": str(options.get("negative_prompt") or "")}


def run_upscale(pipe: Any, spec: UpscaleSpec, sink: ProgressSink, *,
                num_threads: int = 0) -> GeneratedImage:
    """Upscale ``spec.image`` by ``spec.factor`` with the loaded upscale ``pipe``.

    Args:
        pipe: a ``StableDiffusionUpscalePipeline`` (the caller holds its cache lock).
        spec: checked by :func:`check_upscale_request`; options from ``spec.model.options``.
        sink: gets ``step(i, steps)`` after every denoising step and is asked
            ``should_cancel()`` after each (the old ``callback`` API of this pipeline has no
            interrupt flag, so cancelling raises out of the callback).
        num_threads: torch CPU threads to set first (0: leave as is).

    Returns:
        One image of exactly ``(width * factor, height * factor)`` pixels, RGB, seed = the
        ``seed`` option, ``info`` with ``upscaler``, ``factor`` and ``model``.

    Raises:
        ProviderError: ``invalid_request`` (bad options), ``out_of_memory``.
        GenerationCancelled: the sink asked to stop.
    """
    import torch
    from PIL import Image

    from .diffusers_local import _is_oom, _model_name

    opts = _options(spec.model.options or {},
                    int(getattr(pipe.config, "max_noise_level", 350) or 350))
    if num_threads and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    source = spec.image.convert("RGB")
    target = (source.width * int(spec.factor), source.height * int(spec.factor))
    run_size = (-(-source.width // 8) * 8, -(-source.height // 8) * 8)
    if run_size != source.size:
        source = source.resize(run_size, Image.Resampling.LANCZOS)
    steps = opts["steps"]

    def on_step(step_index, timestep, latents):
        sink.step(min(step_index + 1, steps), steps)
        if sink.should_cancel():
            raise GenerationCancelled()

    try:
        result = pipe(
            prompt=opts["prompt"], negative_prompt=opts["negative"] or None, image=source,
            num_inference_steps=steps, guidance_scale=opts["guidance"],
            noise_level=opts["noise"],
            generator=torch.Generator(device="cpu").manual_seed(opts["seed"]),
            output_type="pil", callback=on_step, callback_steps=1,
        )
    except GenerationCancelled:
        raise
    except Exception as exc:
        if _is_oom(exc):
            raise ProviderError(
                "out_of_memory",
                f"Out of memory upscaling a {spec.image.width}x{spec.image.height} image "
                f"x{spec.factor}.") from exc
        raise
    out = result.images[0]
    if out.size != target:
        out = out.resize(target, Image.Resampling.LANCZOS)
    info = {"upscaler": spec.upscaler or spec.model.pipeline_type, "factor": int(spec.factor),
            "model": _model_name(spec.model.model)}
    return GeneratedImage(image=out, seed=opts["seed"], info=info)
