"""Celery tasks of the LoRA library (one module per concern, imported for autodiscovery)."""

from .tasks_civitai import *  # noqa: F401,F403
from .tasks_library import *  # noqa: F401,F403
from .tasks_scan import *  # noqa: F401,F403
from .tasks_updates import *  # noqa: F401,F403
