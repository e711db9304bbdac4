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
