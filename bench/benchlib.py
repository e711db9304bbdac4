"""Helpers shared by the benchmarks."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit, urlunsplit


def sibling_database_url(url: str, name: str, *, fresh: bool = False) -> str:
    """The URL of database ``name`` on the PostgreSQL server of ``url``, created with
    ``createdb`` when missing (dropped and created again when ``fresh``). Benchmarks never
    write into the database ``url`` names (it may be the one tests use)."""
    parts = urlsplit(url)
    host, port, user = parts.hostname or "127.0.0.1", str(parts.port or 5432), parts.username
    auth = ["-h", host, "-p", port, *(["-U", user] if user else [])]
    env = {**os.environ, **({"PGPASSWORD": parts.password} if parts.password else {})}
    if fresh:
        subprocess.run(["dropdb", *auth, "--if-exists", "--force", name], check=True, env=env)
    listed = subprocess.run(["psql", *auth, "-lqtA"], capture_output=True, text=True, env=env)
    if name not in {line.split("|")[0] for line in listed.stdout.splitlines()}:
        subprocess.run(["createdb", *auth, name], check=True, env=env)
    return urlunsplit(parts._replace(path=f"/{name}"))


def django_bench_token(env: dict) -> str:
    """Apply ``env`` to this process, set Django up, migrate, run ``bootstrap`` (the admin
    user ``ADMIN_USERNAME`` of ``env``, the demo model) and return that user's API token."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("bootstrap", stdout=quiet)
    user = get_user_model().objects.get(username=env["ADMIN_USERNAME"])
    return Token.objects.get_or_create(user=user)[0].key
