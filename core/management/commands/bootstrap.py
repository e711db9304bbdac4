"""``python manage.py bootstrap``: what `make run` needs before serving.

Creates the admin user (see ``ensure_admin``), then either a "default" model profile for
``ATELIER_CHECKPOINT`` (a local diffusers folder) or, when none is configured, the demo model.
"""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from providers.models import ModelProfile


class Command(BaseCommand):
    help = "Create the admin user and a model profile (your checkpoint, or the demo model)."

    def handle(self, *args, **options):
        from loras.services import library_roots_sync

        call_command("ensure_admin", stdout=self.stdout)
        roots = library_roots_sync()
        self.stdout.write("LoRA library roots: " + ", ".join(r.path for r in roots))
        checkpoint = settings.DEFAULT_CHECKPOINT
        if not checkpoint:
            call_command("build_demo_model", stdout=self.stdout)
            return
        path = Path(checkpoint).expanduser().resolve()
        if not (path / "model_index.json").is_file():
            raise CommandError(f"ATELIER_CHECKPOINT={checkpoint} is not a diffusers folder "
                               "(no model_index.json).")
        ModelProfile.objects.filter(is_default=True).exclude(slug="default").update(
            is_default=False)
        profile, created = ModelProfile.objects.update_or_create(
            slug="default",
            defaults={"name": path.name, "provider": "diffusers_local", "pipeline_type": "sd",
                      "model_path": str(path), "is_default": True, "default_width": 512,
                      "default_height": 512, "default_steps": 25},
        )
        self.stdout.write(f"{'Created' if created else 'Updated'} profile 'default' for {path}.")
