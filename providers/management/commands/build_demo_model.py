"""``python manage.py build_demo_model [--force]``: the offline demo model, two LoRAs, a profile.

Builds the tiny random-weight Stable Diffusion folder (providers.demo, facts in
docs/offline-models.md#the-tiny-pipeline) at ``settings.DEMO_MODEL_DIR`` and two LoRAs for it in
``settings.DEMO_LORA_DIR``, registers the LoRAs in the library and makes sure the ``demo``
model profile exists. Safe to run again: existing files are kept (unless ``--force``) and the
database rows are updated in place.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

#: (file name, seed) of the demo LoRAs.
DEMO_LORAS = (("demo-warm.safetensors", 1), ("demo-cool.safetensors", 2))

DEMO_PROFILE_SLUG = "demo"


class Command(BaseCommand):
    help = (
        "Build the tiny offline demo Stable Diffusion model and two demo LoRAs (random weights), "
        "register the LoRAs and create the 'demo' model profile."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Rebuild the model and LoRAs even if present."
        )

    def handle(self, *args, force: bool = False, **options):
        from core.exceptions import ApplicationError
        from loras.services import lora_register
        from providers import demo
        from providers.models import ModelProfile

        model_dir = Path(settings.DEMO_MODEL_DIR)
        lora_dir = Path(settings.DEMO_LORA_DIR)

        if force or not (model_dir / "model_index.json").is_file():
            started = time.perf_counter()
            demo.build_demo_model(model_dir)
            self.stdout.write(
                f"built demo model at {model_dir} ({time.perf_counter() - started:.1f} s)"
            )
        else:
            self.stdout.write(f"demo model already at {model_dir}")

        lora_paths = []
        for filename, seed in DEMO_LORAS:
            path = lora_dir / filename
            if force or not path.is_file():
                demo.build_demo_lora(path, seed=seed)
                self.stdout.write(f"built demo LoRA {path}")
            else:
                self.stdout.write(f"demo LoRA already at {path}")
            lora_paths.append(path)

        with transaction.atomic():
            for path in lora_paths:
                try:
                    lora = lora_register(path=str(path), name=path.stem, base_model="SD 1.5")
                except ApplicationError as exc:
                    raise CommandError(exc.message) from exc
                self.stdout.write(f"registered LoRA {lora.name} (sha256 {lora.sha256[:12]})")

            other_default = (
                ModelProfile.objects.filter(is_default=True)
                .exclude(slug=DEMO_PROFILE_SLUG)
                .exists()
            )
            profile, created = ModelProfile.objects.update_or_create(
                slug=DEMO_PROFILE_SLUG,
                defaults={
                    "name": "Demo (tiny SD, random weights)",
                    "provider": "diffusers_local",
                    "pipeline_type": "sd",
                    "model_path": str(model_dir),
                    "default_width": 128,
                    "default_height": 128,
                    "default_steps": 8,
                    "default_guidance_scale": 5.0,
                    "max_width": 512,
                    "max_height": 512,
                    "enabled": True,
                    "is_default": not other_default,
                },
            )
        state = "created" if created else "updated"
        default = " (default)" if profile.is_default else ""
        self.stdout.write(self.style.SUCCESS(f"{state} model profile '{profile.slug}'{default}"))
