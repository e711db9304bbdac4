"""The embedded default used by `make run`: one process, SQLite, in-memory broker and layer.

Safe by default (base.py): DEBUG off unless DEBUG=1 (or DJANGO_DEBUG=1) is set, and a secret key
generated once under var/ unless DJANGO_SECRET_KEY is set.
"""

from .base import *  # noqa: F401,F403
