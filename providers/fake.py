"""A deterministic provider for tests and demos: no ML, images derived from prompt and seed."""

from __future__ import annotations

import hashlib
import time

from .base import (
    Capabilities,
    GeneratedImage,
    GenerationCancelled,
    GenerationSpec,
    ImageProvider,
    ProgressSink,
    ProviderError,
)


class FakeProvider(ImageProvider):
    """Paints a gradient whose colours are a hash of (prompt, seed, LoRAs).

    Options:
        step_delay: seconds to sleep per step (default 0), to make progress observable.
        fail_on: a prompt substring that makes generation fail with ``fake_failure``.
    """

    name = "fake"
    pipeline_types = ("fake",)
    capabilities = Capabilities(loras=True, max_width=2048, max_height=2048, max_batch=8)

    def __init__(self, *, step_delay: float = 0.0, fail_on: str = "<fail>"):
        self.step_delay = float(step_delay)
        self.fail_on = fail_on

    def generate(self, spec: GenerationSpec, sink: ProgressSink) -> list[GeneratedImage]:
        from PIL import Image

        if self.fail_on and self.fail_on in spec.prompt:
            raise ProviderError("fake_failure", "The fake provider was asked to fail.")
        for step in range(1, spec.steps + 1):
            if sink.should_cancel():
                raise GenerationCancelled()
            if self.step_delay:
                time.sleep(self.step_delay)
            sink.step(step, spec.steps)
        out = []
        loras = ",".join(f"{lora.sha256}:{lora.weight}" for lora in spec.loras)
        for i in range(spec.n):
            seed = spec.seed + i
            digest = hashlib.sha256(f"{spec.prompt}|{seed}|{loras}".encode()).digest()
            top, bottom = digest[:3], digest[3:6]
            img = Image.linear_gradient("L").resize((spec.width, spec.height))
            img = Image.merge(
                "RGB",
                [img.point(lambda v, a=a, b=b: a + (b - a) * v // 255) for a, b in zip(top, bottom)],
            )
            out.append(GeneratedImage(image=img, seed=seed, info={"sampler": "Fake"}))
        return out

    def models(self):
        return [{"id": "fake", "name": "Fake (deterministic)", "pipeline_type": "fake"}]
