#!/usr/bin/env python
"""Sampler cost per step relative to Euler on the local provider, all measured in one run.

    .venv/bin/python bench/samplers.py [--rounds 5] [--steps 8] [--size 64] [--device auto]
        [--threads 1] [--model PATH [--config DIR] [--pipeline-type sd]]

Without ``--model`` it builds the tiny demo pipeline in a temp folder
(docs/offline-models.md#the-tiny-pipeline). Every sampler of providers/samplers.py (schedule
type Automatic) makes the same image (same prompt, seed, size and ``--steps``) on one cached
``DiffusersProvider``; the samplers take turns, ``--rounds`` times, so drift of a shared machine
spreads over all of them. Per sampler it prints the median job time, the denoising calls
diffusers made (second-order samplers call the UNet about twice per step), the cost per asked
step (job time / ``--steps``) and that cost relative to Euler's; ``per call`` is the job time per
denoising call relative to Euler's. Exit status 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class CountingSink:
    """Counts denoising calls (one ``step`` per diffusers callback)."""

    def __init__(self):
        self.calls = 0

    def step(self, step, total_steps, message=""):
        self.calls += 1

    def should_cancel(self):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: default)")
    parser.add_argument("--model", help="diffusers folder or .safetensors checkpoint")
    parser.add_argument("--config", default="", help="config folder of a single-file --model")
    parser.add_argument("--pipeline-type", default="sd")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import warnings

    import django

    django.setup()
    warnings.filterwarnings("ignore")  # torchsde's Brownian tree warns about float rounding
    from providers import demo
    from providers.base import GenerationSpec, ModelSpec, NullSink
    from providers.diffusers_local import DiffusersProvider, clear_pipeline_cache
    from providers.samplers import sampler_labels

    tmp = Path(tempfile.mkdtemp(prefix="atelier-sampler-bench-"))
    try:
        model = args.model or str(demo.build_demo_model(tmp / "demo-sd-tiny"))
        options = {"config": args.config} if args.config else {}

        def spec(sampler):
            return GenerationSpec(
                model=ModelSpec(pipeline_type=args.pipeline_type, model=model, options=options),
                prompt="a lighthouse on a cliff at dusk", negative_prompt="blurry",
                width=args.size, height=args.size, steps=args.steps, guidance_scale=5.0,
                seed=1, sampler=sampler)

        clear_pipeline_cache()
        provider = DiffusersProvider(device=args.device, num_threads=args.threads)
        labels = sampler_labels()
        for label in labels:  # load the pipeline, import every scheduler module once
            provider.generate(spec(label), NullSink())
        times: dict[str, list[float]] = {label: [] for label in labels}
        calls: dict[str, int] = {}
        for _ in range(args.rounds):
            for label in labels:
                sink = CountingSink()
                started = time.perf_counter()
                provider.generate(spec(label), sink)
                times[label].append(time.perf_counter() - started)
                calls[label] = sink.calls
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    job = {label: statistics.median(values) for label, values in times.items()}
    euler_step = job["Euler"] / args.steps
    euler_call = job["Euler"] / calls["Euler"]
    print(f"device={provider.device} size={args.size}px steps={args.steps} "
          f"rounds={args.rounds} model={args.model or 'demo-sd-tiny'}")
    print(f"{'sampler':18} {'job p50 ms':>10} {'calls':>6} {'ms/step':>8} {'vs Euler':>9} "
          f"{'per call':>9}")
    for label in labels:
        per_step = job[label] / args.steps
        per_call = job[label] / calls[label]
        print(f"{label:18} {job[label] * 1000:10.1f} {calls[label]:6d} {per_step * 1000:8.2f} "
              f"{per_step / euler_step:9.2f} {per_call / euler_call:9.2f}")


if __name__ == "__main__":
    main()
