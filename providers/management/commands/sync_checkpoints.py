"""``python manage.py sync_checkpoints``: model profiles for the checkpoints under
CHECKPOINT_ROOTS (``providers.checkpoints.checkpoints_sync``, docs/checkpoints.md#sync)."""

from django.core.management.base import BaseCommand

from providers.checkpoints import checkpoints_sync


class Command(BaseCommand):
    help = "Create/update the model profiles of the checkpoints under CHECKPOINT_ROOTS."

    def handle(self, *args, **options):
        result = checkpoints_sync()
        self.stdout.write(checkpoints_summary(result))


def checkpoints_summary(result: dict) -> str:
    """One line: ``Checkpoints in <roots>: 2 new (a, b), 1 updated, 0 disabled, 3 unchanged``."""
    def part(key: str, label: str) -> str:
        names = result[key]
        return f"{len(names)} {label}" + (f" ({', '.join(names)})" if names else "")

    roots = ", ".join(result["roots"]) or "no existing CHECKPOINT_ROOTS folder"
    return (f"Checkpoints in {roots}: {part('created', 'new')}, {part('updated', 'updated')}, "
            f"{part('disabled', 'disabled')}, {result['unchanged']} unchanged.")
