"""Upscaling on the ``diffusers_local`` provider with a configured diffusers upscale pipeline.

A model profile with pipeline type ``sd-upscale`` names a local diffusers folder holding a
``StableDiffusionUpscalePipeline`` (x4, the layout of ``stabilityai/stable-diffusion-x4-upscaler``);
``sd-latent-upscale`` one holding a ``StableDiffusionLatentUpscalePipeline`` (x2, the layout of
``stabilityai/sd-x2-latent-upscaler``). It is loaded offline and cached exactly like the generation
pipelines (see :mod:`providers.diffusers_local`); this module checks the request and runs it.

Factors 2 and 4. ``sd-upscale`` runs once: ``factor`` 4 is its output, ``factor`` 2 its x4
output shrunk to 2x with Lanczos (more detail than a 2x resample of the source, at the cost of
the x4 run). ``sd-latent-upscale`` runs once for 2 and twice (2x of 2x) for 4. A source whose
sides are not multiples of the type's ``size_multiple`` (8 and 64 pixels: the UNets halve the
resolution several times) is first resized with Lanczos to the next multiples, and the output is
resized to exactly ``factor`` times the source size.

Profile options (``ModelProfile.options``): ``steps`` (denoising steps, default 20),
``guidance_scale`` (default 1.0: no classifier-free guidance, which would double the cost;
the pipeline's own default is 9.0 with a prompt), ``noise_level`` (noise added to the source,
0..``max_noise_level`` of the model, default 20 as in diffusers; ``sd-upscale`` only),
``prompt`` and ``negative_prompt`` (default empty), ``seed`` (default 0).
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
            not an upscale type (``sd-upscale``, ``sd-latent-upscale``); ``invalid_request``
            for a factor other than 2 or 4, or a source smaller than 8x8 pixels.
    """
    model = spec.model
    ptype = getattr(model, "pipeline_type", "")
    if model is None or ptype not in dp.UPSCALE_TYPES:
        raise ProviderError(
            "unsupported_pipeline",
            "The diffusers_local provider upscales only with a model profile of pipeline type "
            f"{' or '.join(dp.UPSCALE_TYPES)} (a diffusers upscale pipeline folder); "
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
        sink: gets ``step(i, steps * passes)`` after every denoising step and is asked
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
    import inspect

    import torch
    from PIL import Image

    from .diffusers_local import _is_oom, _model_name

    kind = dp.PIPELINE_KINDS[spec.model.pipeline_type]
    opts = _options(spec.model.options or {},
                    int(getattr(pipe.config, "max_noise_level", 350) or 350))
    if num_threads and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    out = spec.image.convert("RGB")
    target = (out.width * int(spec.factor), out.height * int(spec.factor))
    m = kind.size_multiple
    run_size = (-(-out.width // m) * m, -(-out.height // m) * m)
    if run_size != out.size:
        out = out.resize(run_size, Image.Resampling.LANCZOS)
    passes = 1
    while kind.upscale_factor ** passes < int(spec.factor):
        passes += 1
    steps, total, done = opts["steps"], opts["steps"] * passes, 0

    def on_step(step_index, timestep, latents):
        sink.step(min(done + step_index + 1, total), total)
        if sink.should_cancel():
            raise GenerationCancelled()

    accepted = inspect.signature(pipe.__call__).parameters
    for _ in range(passes):
        kwargs = dict(
            prompt=opts["prompt"], negative_prompt=opts["negative"] or None, image=out,
            num_inference_steps=steps, guidance_scale=opts["guidance"],
            noise_level=opts["noise"],
            generator=torch.Generator(device="cpu").manual_seed(opts["seed"]),
            output_type="pil", callback=on_step, callback_steps=1,
        )
        try:
            out = pipe(**{k: v for k, v in kwargs.items() if k in accepted}).images[0]
        except GenerationCancelled:
            raise
        except Exception as exc:
            if _is_oom(exc):
                raise ProviderError(
                    "out_of_memory",
                    f"Out of memory upscaling a {spec.image.width}x{spec.image.height} image "
                    f"x{spec.factor}.") from exc
            raise
        done += steps
    if out.size != target:
        out = out.resize(target, Image.Resampling.LANCZOS)
    info = {"upscaler": spec.upscaler or spec.model.pipeline_type, "factor": int(spec.factor),
            "model": _model_name(spec.model.model)}
    return GeneratedImage(image=out, seed=opts["seed"], info=info)
