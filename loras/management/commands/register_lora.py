from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ApplicationError
from loras.services import lora_register


class Command(BaseCommand):
    help = "Add a LoRA .safetensors file to the library (hashes it)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", help="Name for <lora:NAME:weight> (default: file stem).")

    def handle(self, *args, path, name, **options):
        try:
            lora = lora_register(path=path, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{lora.name}  sha256={lora.sha256}  autov3={lora.autov3[:12]}")
