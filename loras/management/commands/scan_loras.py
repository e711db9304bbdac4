"""python manage.py scan_loras [--workers N]: scan every library root, with a progress bar."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from loras.services.scan import library_scan


class Command(BaseCommand):
    help = ("Scan the LoRA library roots: hash new and changed .safetensors files, read their "
            "headers and sidecars, detect moved and missing files.")

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None,
                            help="Files hashed in parallel (default: LORA_SCAN_WORKERS).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, workers, no_progress, **options):
        bar = None

        def progress(done: int, total: int, path: str) -> None:
            nonlocal bar
            if no_progress:
                return
            if bar is None:
                bar = tqdm(total=total, initial=done, unit="file", file=self.stderr._out,
                           dynamic_ncols=True)
            else:
                bar.update(done - bar.n)
            if path:
                bar.set_postfix_str(path[-40:], refresh=False)

        try:
            report = library_scan(workers=workers, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        out = self.stdout
        names = {r["id"]: r["name"] for r in report["roots"]}
        out.write(f"Roots: {', '.join(names.values()) or '(none)'}")
        out.write(f"Files seen: {report['files_seen']}  new: {report['new']}  "
                  f"updated: {report['updated']}  unchanged: {report['unchanged']}  "
                  f"moved: {report['moved']}  missing: {report['missing']}  "
                  f"reappeared: {report['reappeared']}  errors: {report['errors_total']}")
        for key, label in (("errors", "error"), ("unreadable", "unreadable"),
                           ("loops", "loop")):
            for item in report[key]:
                detail = item.get("error") or f"-> {item.get('target', '')}"
                out.write(f"  {label}: {names.get(item['root'], item['root'])}/{item['path']}: "
                          f"{detail}")
        out.write(f"Done in {report['seconds']} s.")
