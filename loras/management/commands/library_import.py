import json

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ApplicationError
from loras.services.export import library_import


class Command(BaseCommand):
    help = ("Restore a library_export file onto the LoRAs with the same SHA-256 (scan the "
            "library first; docs/library.md#export-and-import).")

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        try:
            result = library_import(data=data)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{result['matched']} LoRAs restored, {result['favorites']} "
                          f"favourites, {len(result['unmatched'])} entries not in the library")
