#!/usr/bin/env python
"""LoRA switching on the local provider: alternating jobs with different LoRAs, measured against
one denoising step, with adapters cached per pipeline vs reloaded from disk, in one run.

    .venv/bin/python bench/lora_switch.py [--jobs 20] [--steps 4] [--size 64] [--loras 2]
        [--device auto] [--model PATH --lora FILE --lora FILE ...]

Without ``--model`` it builds the tiny demo pipeline and random demo LoRAs in a temp folder
(docs/offline-models.md#the-tiny-pipeline), so it runs anywhere offline; with ``--model``
(a diffusers folder, or a .safetensors checkpoint plus ``--config``) and ``--lora`` files it
measures a real model.

Three runs of the same alternating job sequence (LoRA 1, 2, ..., 1, 2, ...) on
``DiffusersProvider``:

- ``cached``: the provider as shipped; each LoRA is loaded once as a named adapter and later
  jobs only switch adapters (``set_adapters``).
- ``reload``: the same provider with room for one adapter, so every switch deletes the old
  adapter and loads the next from disk (``load_lora_weights``), as a provider without an
  adapter cache would.
- ``same``: always the first LoRA (no switch), for the job time without switching.

"switch" is the time of the provider's LoRA step per job (``_apply_loras``: load/activate/trim),
"step" the median wall time between two denoising-step callbacks. Ratios are printed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class StepClock:
    """A progress sink that records when each denoising step ended (monotonic seconds)."""

    def __init__(self):
        self.times: list[float] = [time.perf_counter()]

    def step(self, step, total_steps, message=""):
        self.times.append(time.perf_counter())

    def should_cancel(self):
        return False

    def step_durations(self) -> list[float]:
        # The first interval includes prompt encoding and setup: only later ones are steps.
        return [b - a for a, b in zip(self.times[1:], self.times[2:], strict=False)]


def med_ms(values) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_mode(provider, spec_for, lora_specs, *, jobs: int, mode: str):
    """Run ``jobs`` jobs; returns {"job": [...s], "switch": [...s], "step": [...s]}."""
    from providers.base import NullSink

    switch_times: list[float] = []
    original = provider._apply_loras

    def timed(entry, spec):
        t = time.perf_counter()
        try:
            return original(entry, spec)
        finally:
            switch_times.append(time.perf_counter() - t)

    provider._apply_loras = timed
    try:
        provider.generate(spec_for(lora_specs[0]), NullSink())  # load the pipeline + first LoRA
        switch_times.clear()
        job_times, step_times = [], []
        for i in range(jobs):
            lora = lora_specs[0] if mode == "same" else lora_specs[i % len(lora_specs)]
            clock = StepClock()
            t = time.perf_counter()
            provider.generate(spec_for(lora), clock)
            job_times.append(time.perf_counter() - t)
            step_times.extend(clock.step_durations())
    finally:
        del provider._apply_loras
    return {"job": job_times, "switch": switch_times, "step": step_times}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--loras", type=int, default=2, help="demo LoRAs to alternate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: default)")
    parser.add_argument("--model", help="diffusers folder or .safetensors checkpoint")
    parser.add_argument("--config", default="", help="config folder of a single-file --model")
    parser.add_argument("--pipeline-type", default="sd")
    parser.add_argument("--lora", action="append", default=[], help="LoRA file (repeat)")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from providers import demo
    from providers.base import GenerationSpec, LoraSpec, ModelSpec
    from providers.diffusers_local import DiffusersProvider, clear_pipeline_cache

    tmp = Path(tempfile.mkdtemp(prefix="atelier-lora-bench-"))
    if args.model:
        model, lora_files = args.model, [Path(p) for p in args.lora]
        if len(lora_files) < 2:
            raise SystemExit("--model needs at least two --lora files")
    else:
        model = str(demo.build_demo_model(tmp / "demo-sd-tiny"))
        lora_files = [demo.build_demo_lora(tmp / f"lora{i}.safetensors", seed=i + 1)
                      for i in range(max(2, args.loras))]
    lora_specs = [LoraSpec(path=str(p), sha256=sha256(p), name=p.stem, weight=0.8)
                  for p in lora_files]
    options = {"config": args.config} if args.config else {}

    def spec_for(lora):
        return GenerationSpec(
            model=ModelSpec(pipeline_type=args.pipeline_type, model=model, options=options),
            prompt="a lighthouse on a cliff at dusk", width=args.size, height=args.size,
            steps=args.steps, guidance_scale=5.0, seed=1, loras=(lora,))

    class ReloadingProvider(DiffusersProvider):
        max_loaded_adapters = 1  # every switch drops the old adapter and loads from disk

    results = {}
    try:
        for mode, cls in (("cached", DiffusersProvider), ("reload", ReloadingProvider),
                          ("same", DiffusersProvider)):
            clear_pipeline_cache()
            provider = cls(device=args.device, num_threads=args.threads)
            results[mode] = run_mode(provider, spec_for, lora_specs, jobs=args.jobs, mode=mode)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    device = provider.device

    step = med_ms(results["cached"]["step"] + results["reload"]["step"] + results["same"]["step"])
    print(f"device={device} size={args.size}px steps={args.steps} jobs={args.jobs} "
          f"loras={len(lora_specs)} model={model}")
    print(f"{'mode':8} {'job p50 ms':>11} {'switch p50 ms':>14} {'switch max ms':>14}")
    for mode, r in results.items():
        print(f"{mode:8} {med_ms(r['job']):11.1f} {med_ms(r['switch']):14.2f} "
              f"{max(r['switch']) * 1000:14.2f}")
    cached, reload_ = med_ms(results["cached"]["switch"]), med_ms(results["reload"]["switch"])
    print(f"one denoising step p50: {step:.2f} ms")
    print(f"cached switch / step:   {cached / step:.3f}")
    print(f"reload switch / step:   {reload_ / step:.3f}")
    print(f"reload / cached switch: {reload_ / cached:.1f}x")
    print(f"job time, alternating (cached) vs same LoRA: "
          f"{med_ms(results['cached']['job']) / med_ms(results['same']['job']):.3f}")


if __name__ == "__main__":
    main()
