import json
import sys

from django.core.management.base import BaseCommand

from loras.services.export import library_export


class Command(BaseCommand):
    help = ("Write every user-added tag, note, favourite, preferred weight and Civitai link of "
            "the library as JSON keyed by SHA-256 (docs/library.md#export-and-import).")

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args, output=None, **options):
        data = library_export()
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
            self.stderr.write(f"{len(data['loras'])} LoRAs written to {output}")
        else:
            sys.stdout.write(text)
