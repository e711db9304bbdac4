"""The ``browser``, ``reliability`` and ``slow`` markers, given by where a test lives and what it
starts, so no test file has to carry them (``tests/conftest.py`` calls :func:`mark_items`).

- ``browser``: a file named ``*browser*``, a test using a ``browser_page`` fixture, or a test
  module that imports Playwright.
- ``reliability``: everything under ``tests/reliability/``.
- ``slow``: schemathesis (``tests/badinput/test_schemathesis.py``), ``tests/e2e/``,
  ``tests/reliability/``, the files and tests in :data:`SLOW_FILES` (measured over 10 s), and
  any test that starts a real server or process itself or through one of its fixtures (daphne,
  ``celery worker``, the dispatcher, a private Redis or PostgreSQL, a subprocess): those take
  seconds to start and stop on a 2-core machine.

``pytest -m "not browser and not reliability and not slow"`` (``make test-fast``) is then the
quick subset; ``make test`` and CI still run everything.
"""

from __future__ import annotations

import inspect
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

TESTS = Path(__file__).resolve().parents[1]
SLOW_DIRS = ("e2e", "reliability")
# Measured with --durations (a call phase over 10 s) on a 2-core machine: whole files, or one
# test as ``<file>::<test name>``.
SLOW_FILES = {"badinput/test_schemathesis.py", "images/test_infotext_generate_roundtrip.py",
              "providers/test_diffusers_local.py::test_build_demo_model_command"}
BROWSER_FIXTURES = {"browser_page"}
# Names that start a real server or process (tests/support/servers.py, services.py,
# tests/reliability/processes.py, subprocess).
STARTS_PROCESS = re.compile(
    r"\b(?:start_server|start_worker_process|worker_process|dispatcher_process|start_worker"
    r"|start_dispatcher|private_redis|private_postgres|subprocess\.(?:run|Popen|check_\w+)"
    r"|Popen)\(")


@cache
def _source(func) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def _uses_playwright(module: ModuleType | None) -> bool:
    if module is None:
        return False
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, ModuleType) else getattr(
            value, "__module__", "") or ""
        if isinstance(name, str) and name.startswith("playwright"):
            return True
    return False


@cache
def _starts(func) -> bool:
    """Whether ``func`` starts a process, itself or through a function of its module it calls
    (one level: ``_spawn(...)`` helpers)."""
    if func is None:
        return False
    if STARTS_PROCESS.search(_source(func)):
        return True
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    code = getattr(func, "__code__", None)
    for name in (code.co_names if code else ()):
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper is not func and STARTS_PROCESS.search(
                _source(helper)):
            return True
    return False


def _starts_process(item: pytest.Item) -> bool:
    if _starts(getattr(item, "function", None)):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info else ()):
        if any(_starts(d.func) for d in defs):
            return True
    return False


def markers_for(item: pytest.Item) -> set[str]:
    """The markers :func:`mark_items` gives ``item`` (a subset of browser, reliability, slow)."""
    try:
        rel = Path(str(item.path)).resolve().relative_to(TESTS)
    except ValueError:
        return set()
    parts = rel.parts
    names: set[str] = set()
    fixtures = set(getattr(item, "fixturenames", ()))
    if "browser" in rel.name or fixtures & BROWSER_FIXTURES or _uses_playwright(
            getattr(item, "module", None)):
        names.add("browser")
    if parts[0] == "reliability":
        names.add("reliability")
    name = getattr(item, "originalname", item.name)
    if (parts[0] in SLOW_DIRS or rel.as_posix() in SLOW_FILES
            or f"{rel.as_posix()}::{name}" in SLOW_FILES or _starts_process(item)):
        names.add("slow")
    return names


def mark_items(items: list[pytest.Item]) -> None:
    """Add the markers of :func:`markers_for` to every collected item."""
    for item in items:
        for name in sorted(markers_for(item)):
            item.add_marker(getattr(pytest.mark, name))
