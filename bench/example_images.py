#!/usr/bin/env python
"""Example-image download throughput (images/s) against the fake Civitai server.

    .venv/bin/python bench/example_images.py [--loras 20] [--images 10] [--kb 300]
                                             [--latency-ms 40] [--concurrency N] [--repeat 3]

1. Starts the fake Civitai of the tests (tests/support/fake_civitai.py, real HTTP on
   loopback) with ``--loras`` model versions of ``--images`` example images each; every image
   is a PNG of about ``--kb`` KB of noise, served after ``--latency-ms`` ms (a CDN round trip).
2. Runs the real download job (``example_download_start`` + ``example_download_run``: the
   shared Civitai client and limiter, ``/images`` pagination, Pillow check, atomic writes,
   rows) once with 1 fetch at a time (the reference, same run) and once at the configured
   ``EXAMPLE_IMAGES_CONCURRENCY`` (or ``--concurrency``); ``--repeat`` rounds alternate the two
   and the median is kept. Each round starts from an empty EXAMPLE_IMAGES_ROOT.
3. Prints images/s for both and the ratio.

Runs on a temporary SQLite database (``ATELIER_VAR_DIR`` = a temporary folder).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _noise_png(kb: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    side = max(8, int((kb * 1024 / 3) ** 0.5))
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(
        buf, "PNG", compress_level=1)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loras", type=int, default=20)
    parser.add_argument("--images", type=int, default=10, help="example images per LoRA")
    parser.add_argument("--kb", type=int, default=300, help="size of one image (KB)")
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="default: the EXAMPLE_IMAGES_CONCURRENCY setting")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="atelier-bench-examples-"))
    os.environ.update(ATELIER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="config.settings.local",
                      LORA_ROOTS=str(var / "loras"))
    import django

    django.setup()
    import hashlib

    from django.conf import settings
    from django.core.management import call_command

    from example_images.models import ExampleImage
    from example_images.services.download import example_download_run, example_download_start
    from jobs.models import Job
    from loras.civitai import limiter
    from loras.models import LibraryRoot, LoraModel
    from tests.support.fake_civitai import FakeCivitai, safetensors_bytes

    class SlowFake(FakeCivitai):
        latency = args.latency_ms / 1000.0

        def _dispatch(self, request):
            if request.path.startswith("/img/") and self.latency:
                time.sleep(self.latency)
            return super()._dispatch(request)

    call_command("migrate", verbosity=0)
    fake = SlowFake()
    settings.CIVITAI_BASE_URL = fake.base_url
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.EXAMPLE_IMAGES_LIMIT_PER_MODEL = args.images
    settings.EXAMPLE_IMAGES_NSFW_MAX = 16
    configured = args.concurrency or settings.EXAMPLE_IMAGES_CONCURRENCY
    root = LibraryRoot.objects.create(path=str(var / "loras"))
    print(f"publishing {args.loras} LoRAs x {args.images} images x ~{args.kb} KB, "
          f"latency {args.latency_ms:g} ms ...", flush=True)
    for i in range(args.loras):
        version = 1000 + i
        data = safetensors_bytes(seed=version)
        fake.add_version(version_id=version, model_id=version + 50000, data=data,
                         image_count=args.images)
        for j in range(args.images):
            fake.images[f"{version}-{j}.png"] = _noise_png(args.kb, version * 100 + j)
        LoraModel.objects.create(root=root, relative_path=f"l{i}.safetensors",
                                 file_name=f"l{i}.safetensors", name=f"l{i}",
                                 sha256=hashlib.sha256(data).hexdigest(),
                                 civitai_version_id=version)
    total = args.loras * args.images
    results: dict[int, list[float]] = {1: [], configured: []}
    try:
        for _ in range(args.repeat):
            for concurrency in (1, configured):
                ExampleImage.objects.all().delete()
                Job.objects.all().delete()
                shutil.rmtree(var / "examples", ignore_errors=True)
                settings.EXAMPLE_IMAGES_ROOT = var / "examples"
                settings.EXAMPLE_IMAGES_CONCURRENCY = concurrency
                limiter.reset()
                job = example_download_start(user=None, enqueue=False)
                started = time.perf_counter()
                job = example_download_run(job_id=str(job.pk))
                seconds = time.perf_counter() - started
                stored = ExampleImage.objects.count()
                assert job.status == "succeeded" and stored == total, (job.status, stored,
                                                                        job.error_message)
                results[concurrency].append(stored / seconds)
                print(f"  concurrency {concurrency}: {stored} images in {seconds:.2f} s = "
                      f"{stored / seconds:.1f} images/s", flush=True)
    finally:
        fake.stop()
        shutil.rmtree(var, ignore_errors=True)
    one = statistics.median(results[1])
    many = statistics.median(results[configured])
    print(f"example images: {many:.1f} images/s at concurrency {configured} "
          f"(1 at a time: {one:.1f} images/s; ratio {many / one:.2f}x) "
          f"[{args.loras} LoRAs x {args.images} images, ~{args.kb} KB, "
          f"{args.latency_ms:g} ms latency, median of {args.repeat}]")


if __name__ == "__main__":
    main()
