"""Keep the server log readable: no model-library progress bars, chatter or warnings.

diffusers and transformers print progress bars (tqdm) while loading and log at INFO/WARNING;
torchvision warns about optional image extensions at import. None of it helps someone reading
the server's log. Switches (all documented by the libraries): ``DIFFUSERS_VERBOSITY``,
``TRANSFORMERS_VERBOSITY`` (error), ``HF_HUB_DISABLE_PROGRESS_BARS``, ``TQDM_DISABLE`` (tqdm's
environment defaults, read when tqdm is imported: so only for server and worker processes,
never for the CLI commands whose own bars are their output).
"""

from __future__ import annotations

import logging
import os
import warnings

_LIBRARIES = r"(torchvision|diffusers|transformers|huggingface_hub|accelerate|peft)(\.|$)"


def quiet_model_libraries(*, progress_bars: bool = False) -> None:
    """Silence model-library logging and warnings in this process (environment variables
    the user set win).

    Args:
        progress_bars: also turn every tqdm bar off (``TQDM_DISABLE``); effective when tqdm
            is imported later in this process.
    """
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if progress_bars:
        os.environ.setdefault("TQDM_DISABLE", "1")
    for category in (UserWarning, FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=_LIBRARIES)


class ClientErrorsOneLine(logging.Filter):
    """A log filter (``LOGGING`` handler ``console``): records of a 4xx answer (Django's
    ``django.request`` and ``django.security.*`` records carry ``status_code``) are printed as
    their one message line, without the traceback Django attaches to e.g. ``DisallowedHost``;
    the client erred, not the server. 5xx records keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True
