"""The embedded default used by `make run`: one process, SQLite, in-memory broker and layer."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
