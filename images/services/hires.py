"""Hires fix with an upscale model profile as the upscaler (A1111's model upscalers such as
ESRGAN; docs/samplers.md#hires-fix), as one job.

The latent and PIL upscalers run inside the provider (``providers.diffusers_passes``). With an
upscale profile (pipeline type ``sd-upscale`` / ``sd-latent-upscale``) the service strings the
passes together: txt2img at the base size, each image enlarged by the upscale profile's
provider at its native factor and resized to the hires size with Lanczos (as A1111 resizes an
upscaler's output to the target), then img2img on the generation model (the provider's cached
``from_pipe`` variant) with the hires steps and denoising strength and the image's own seed.
Progress counts every pass in one bar: first pass, then per image one upscale step and the
second pass.
"""

from __future__ import annotations

import dataclasses

from providers import hires as hr
from providers import registry
from providers.base import (
    EditSpec,
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    ModelSpec,
    ProgressSink,
    ProviderError,
    UpscaleSpec,
)


def hires_upscale_profiles() -> list:
    """Model profiles that only upscale (their provider lists the pipeline type as
    upscale-only), by slug."""
    from providers.models import ModelProfile

    found = []
    for profile in ModelProfile.objects.order_by("slug"):
        try:
            provider = registry.get(profile.provider)
        except ProviderError:
            continue
        if profile.pipeline_type in getattr(provider, "upscale_only_pipeline_types", ()):
            found.append(profile)
    return found


def hires_upscale_profile(slug: str):
    """The upscale profile named ``slug``, or None."""
    return next((p for p in hires_upscale_profiles() if p.slug == slug), None)


class _PassSink:
    """Reports the steps of several provider calls as one run 1..total. ``total`` is the
    forecast; when a pass reports more steps than forecast (second-order samplers), the total
    grows by the difference, so the step count never goes back."""

    def __init__(self, sink: ProgressSink, total: int):
        self.sink, self.total, self.offset = sink, total, 0
        self._forecast = 0  # steps forecast for the current pass
        self._seen = 0

    def start(self, forecast: int) -> _PassSink:
        """Begin the next pass, forecast to report ``forecast`` steps (a pass that reports
        fewer, e.g. an upscaler without progress, still moves the count by its forecast)."""
        self.offset += max(self._seen, self._forecast)
        self._forecast, self._seen = forecast, 0
        return self

    def step(self, step: int, total_steps: int, message: str = "") -> None:
        if total_steps > self._forecast:
            self.total += total_steps - self._forecast
            self._forecast = total_steps
        self._seen = max(self._seen, step)
        self.sink.step(min(self.offset + step, self.total), self.total, message)

    def preview(self, data_url: str) -> None:
        send = getattr(self.sink, "preview", None)
        if send is not None:
            send(data_url)

    def should_cancel(self) -> bool:
        return self.sink.should_cancel()


def hires_total_steps(*, steps: int, n: int, hires_steps: int, strength: float) -> int:
    """The forecast of :func:`hires_with_profile`'s progress: first pass steps + per image one
    upscale step and the second pass's ``int(hr_steps x strength)``."""
    _, second = hr.hires_steps(steps, hires_steps, strength)
    return steps + n * (1 + second)


def hires_with_profile(*, request, spec: GenerationSpec,
                       sink: ProgressSink) -> list[GeneratedImage]:
    """Run ``spec`` (``spec.hires.upscaler`` an upscale profile slug) as txt2img, upscale,
    img2img. Returns one image per seed at :func:`providers.hires.hires_size`.

    Raises:
        ProviderError: ``invalid_request`` when the upscale profile is gone; the providers'
            own errors. GenerationCancelled: the sink asked to stop.
    """
    from PIL import Image

    from providers.diffusers_pipelines import PIPELINE_KINDS

    up_profile = hires_upscale_profile(spec.hires.upscaler)
    if up_profile is None:
        raise ProviderError("invalid_request",
                            f"The hires upscaler profile {spec.hires.upscaler!r} is gone.")
    provider = registry.get(request.profile.provider)
    upscaler = registry.get(up_profile.provider)
    size = hr.hires_size(spec.width, spec.height, spec.hires.scale)
    steps2, second = hr.hires_steps(spec.steps, spec.hires.steps, spec.hires.denoising_strength)
    kind = PIPELINE_KINDS.get(up_profile.pipeline_type)
    factor = kind.upscale_factor if kind is not None else 2
    passes = _PassSink(sink, hires_total_steps(
        steps=spec.steps, n=spec.n, hires_steps=spec.hires.steps,
        strength=spec.hires.denoising_strength))
    first = provider.generate(dataclasses.replace(spec, hires=None), passes.start(spec.steps))
    outputs = []
    for out in first:
        if sink.should_cancel():
            raise GenerationCancelled()
        passes.start(1)
        big = upscaler.upscale(UpscaleSpec(
            image=out.image, factor=factor,
            model=ModelSpec(pipeline_type=up_profile.pipeline_type, model=up_profile.model_path,
                            name=up_profile.name, options=up_profile.options)), passes)
        image = big.image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        edit = EditSpec(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
                           if f.name not in ("hires", "width", "height", "steps", "seed", "n")},
                        width=size[0], height=size[1], steps=steps2, seed=out.seed, n=1,
                        init_image=image, strength=float(spec.hires.denoising_strength))
        result = provider.edit(edit, passes.start(second))[0]
        outputs.append(GeneratedImage(image=result.image, seed=out.seed,
                                      info={**out.info, **result.info,
                                            "hires_upscaler": up_profile.slug}))
    return outputs
