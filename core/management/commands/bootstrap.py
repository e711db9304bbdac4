"""``python manage.py bootstrap [--serve]``: what `make run` needs before serving, then serving.

Migrates the database, creates the admin user (see ``ensure_admin``), then either a "default"
model profile for ``ATELIER_CHECKPOINT`` (a local diffusers folder) or, when none is
configured, the demo model (written in well under a second, docs/first-run.md). Each phase
prints its time. With ``--serve`` the same process then serves (``manage.py serve``: one Django
start instead of three) and, once the first page has been answered, prints the address, the
admin login and the next step (docs/first-run.md#what-make-run-prints).
"""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from providers.models import ModelProfile

#: ``ensure_admin``'s line for a generated password (the only place it is ever shown).
_GENERATED = re.compile(r"with password: (\S+)")


def _started_at() -> float:
    """When `make run` started (``RUN_STARTED_AT``, seconds since the epoch, set by the
    Makefile), else now."""
    try:
        return float(os.environ.get("RUN_STARTED_AT", ""))
    except ValueError:
        return time.time()


class Command(BaseCommand):
    help = ("Migrate, create the admin user and a model profile (your checkpoint, or the demo "
            "model); with --serve, then serve and say where.")

    def add_arguments(self, parser):
        parser.add_argument("--serve", action="store_true",
                            help="Serve afterwards (manage.py serve) in this process.")
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, serve: bool = False, host: str = "", port: int = 8000, **options):
        self._t0 = _started_at()
        phase = time.monotonic()

        def done(what: str) -> None:
            nonlocal phase
            self.stdout.write(f"[run] {what}: {time.monotonic() - phase:.1f} s")
            phase = time.monotonic()

        call_command("migrate", interactive=False, verbosity=0)
        done("database migrated")
        admin = self._admin()
        done("admin user")
        self._model()
        done("model profile")
        from providers.checkpoints import checkpoints_sync  # CHECKPOINT_ROOTS -> profiles
        from providers.management.commands.sync_checkpoints import checkpoints_summary

        self.stdout.write(checkpoints_summary(checkpoints_sync()))
        done("checkpoints")
        if serve:
            threading.Thread(target=self._announce, args=(host, port, admin), daemon=True,
                             name="ready-banner").start()
            call_command("serve", host=host, port=port)

    # ---------------------------------------------------------------- steps
    def _admin(self) -> tuple[str, str]:
        """Run ``ensure_admin``; returns (username, how to log in)."""
        out = io.StringIO()
        call_command("ensure_admin", stdout=out)
        self.stdout.write(out.getvalue().rstrip("\n"))
        username = os.environ.get("ADMIN_USERNAME", "admin")
        generated = _GENERATED.search(out.getvalue())
        if generated:
            return username, f"password {generated.group(1)} (shown once: change it in /admin/)"
        if os.environ.get("ADMIN_PASSWORD"):
            return username, "password from ADMIN_PASSWORD"
        return username, "the password printed on the first run (or set ADMIN_PASSWORD)"

    def _model(self) -> None:
        from loras.services import library_roots_sync

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

    # ---------------------------------------------------------------- the banner
    def _announce(self, host: str, port: int, admin: tuple[str, str]) -> None:
        """Wait until the server answers its first page, then print where and how to go on."""
        local = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        base = f"http://{local}:{port}/"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((local, port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            return
        try:  # "/" redirects a visitor to the login page: the first page a person sees
            with urllib.request.urlopen(base, timeout=30) as response:
                response.read()
        except OSError:
            pass
        seconds = time.time() - self._t0
        roots = os.pathsep.join(str(p) for p in settings.LORA_ROOTS)
        checkpoints = os.pathsep.join(str(p) for p in settings.CHECKPOINT_ROOTS)
        lines = [
            "",
            f"  Atelier is ready: {base}   (first page {seconds:.1f} s after start)",
            f"  Log in as {admin[0]!r} with {admin[1]}.",
            "  Next: put checkpoints (.safetensors or diffusers folders) in",
            f"        {checkpoints} (or CHECKPOINT_ROOTS=...): they are listed by",
            f"        name at the next start, and LoRAs in {roots} (or LORA_ROOTS=...).",
            "        The demo model makes noise on purpose. Ctrl-C stops the server.",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
