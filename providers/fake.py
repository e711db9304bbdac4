"""A deterministic provider for tests and demos: no ML, images derived from prompt and seed."""

from __future__ import annotations

import hashlib
import time

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


class FakeProvider(ImageProvider):
    """Paints a gradient whose colours are a hash of (prompt, seed, LoRAs).

    Options:
        step_delay: seconds to sleep per step (default 0), to make progress observable.
        fail_on: a prompt substring that makes generation fail with ``fake_failure``.
    """

    name = "fake"
    pipeline_types = ("fake",)
    capabilities = Capabilities(img2img=True, inpaint=True, upscale=True, loras=True,
                                max_width=2048, max_height=2048, max_batch=8)

    def __init__(self, *, step_delay: float = 0.0, fail_on: str = "<fail>"):
        self.step_delay = float(step_delay)
        self.fail_on = fail_on

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        from PIL import Image

        if self.fail_on and self.fail_on in spec.prompt:
            raise ProviderError("fake_failure", "The fake provider was asked to fail.")
        self._steps(spec.steps, sink)
        out = []
        loras = ",".join(f"{lora.sha256}:{lora.weight}" for lora in spec.loras)
        for i in range(spec.n):
            seed = spec.seed + i
            digest = hashlib.sha256(f"{spec.prompt}|{seed}|{loras}".encode()).digest()
            top, bottom = digest[:3], digest[3:6]
            img = Image.linear_gradient("L").resize((spec.width, spec.height))
            img = Image.merge(
                "RGB",
                [img.point(lambda v, a=a, b=b: a + (b - a) * v // 255)
                 for a, b in zip(top, bottom, strict=True)],
            )
            out.append(GeneratedImage(image=img, seed=seed, info={"sampler": "Fake"}))
        return out

    def _steps(self, steps: int, sink: ProgressSink) -> None:
        for step in range(1, steps + 1):
            if sink.should_cancel():
                raise GenerationCancelled()
            if self.step_delay:
                time.sleep(self.step_delay)
            sink.step(step, steps)

    def edit(self, spec: EditSpec, sink: ProgressSink) -> list[GeneratedImage]:
        """img2img/inpaint: blend the source (resized to ``width x height``) with the txt2img
        gradient of the same prompt and seed, by ``strength``; with a mask, only white pixels of
        the mask change. Deterministic, so tests can predict every pixel."""
        from PIL import Image

        if self.fail_on and self.fail_on in spec.prompt:
            raise ProviderError("fake_failure", "The fake provider was asked to fail.")
        width = spec.width or spec.init_image.width
        height = spec.height or spec.init_image.height
        source = spec.init_image.convert("RGB").resize((width, height))
        self._steps(max(1, round(spec.steps * spec.strength)), sink)
        txt = GenerationSpec(model=spec.model, prompt=spec.prompt, width=width, height=height,
                             steps=0, seed=spec.seed, n=spec.n, loras=spec.loras)
        out = []
        for painted in self.generate(txt, _Silent()):
            img = Image.blend(source, painted.image, float(spec.strength))
            if spec.mask is not None:
                mask = spec.mask.convert("L").resize((width, height))
                img = Image.composite(img, source, mask)
            info = {"sampler": "Fake", "kind": spec.kind, "strength": spec.strength}
            out.append(GeneratedImage(image=img, seed=painted.seed, info=info))
        return out

    def upscale(self, spec: UpscaleSpec, sink: ProgressSink) -> GeneratedImage:
        """Nearest-neighbour enlargement by ``spec.factor`` (every source pixel becomes a
        ``factor x factor`` block), so a test can tell it from the Lanczos upscaler."""
        from PIL import Image

        self._steps(1, sink)
        img = spec.image.convert("RGB")
        img = img.resize((img.width * spec.factor, img.height * spec.factor),
                         Image.Resampling.NEAREST)
        return GeneratedImage(image=img, seed=0,
                              info={"upscaler": spec.upscaler or "fake-nearest",
                                    "factor": spec.factor})

    def models(self):
        return [{"id": "fake", "name": "Fake (deterministic)", "pipeline_type": "fake"}]


class _Silent:
    def step(self, step, total_steps, message=""):
        pass

    def should_cancel(self):
        return False
