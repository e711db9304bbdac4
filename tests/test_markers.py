"""The browser / reliability / slow markers come from tests/conftest.py (tests/support/markers.py)
without any test file carrying them, so ``make test-fast`` leaves exactly those suites out."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COLLECT = """
import json, sys, pytest

class Recorder:
    def pytest_collection_finish(self, session):
        marks = {item.nodeid: sorted({m.name for m in item.iter_markers()}
                                     & {"browser", "reliability", "slow"})
                 for item in session.items}
        print("MARKS=" + json.dumps(marks))

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]],
                     plugins=[Recorder()]))
"""


def _collected_markers(*paths: str) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", COLLECT, *paths], cwd=ROOT, text=True,
                          capture_output=True, timeout=240)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MARKS=")), None)
    assert done.returncode == 0 and line, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(line[len("MARKS="):])


def test_markers_follow_path_fixtures_and_started_processes():
    marks = _collected_markers(
        "tests/images/test_pages_projects_usage.py",  # imports Playwright, uses browser_page
        "tests/loras/test_pages_browser.py",  # a *browser* file
        "tests/reliability/test_topology.py",
        "tests/security/test_server_process.py",  # starts daphne through a module helper
        "tests/core/test_sqlite_concurrency.py",  # one test starts the server, one does not
        "tests/test_docs.py",
    )

    def of(prefix: str) -> list[list[str]]:
        found = [m for node, m in marks.items() if node.startswith(prefix)]
        assert found, prefix
        return found

    assert all("browser" in m for m in of("tests/images/test_pages_projects_usage.py"))
    assert all("browser" in m for m in of("tests/loras/test_pages_browser.py"))
    assert all({"reliability", "slow"} <= set(m) for m in of("tests/reliability/"))
    assert all(m == ["slow"] for m in of("tests/security/test_server_process.py::test_sigterm"))
    assert all(m == [] for m in of("tests/test_docs.py"))
    sqlite = {node.split("::")[1]: m for node, m in marks.items()
              if node.startswith("tests/core/test_sqlite_concurrency.py")}
    assert sqlite == {"test_concurrent_read_then_write_transactions_all_commit": [],
                      "test_embedded_server_under_twenty_concurrent_writers": ["slow"]}


def test_markers_are_registered_and_make_test_fast_deselects_them():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    registered = {line.split(":")[0] for line in config["ini_options"]["markers"]}
    assert registered >= {"browser", "reliability", "slow"}
    assert "--strict-markers" in config["ini_options"]["addopts"]
    makefile = (ROOT / "Makefile").read_text()
    assert ('test-fast: install-dev\n\t$(PY) -m pytest -m "not browser and not reliability '
            'and not slow"') in makefile
    assert "lint: install-dev\n\t$(VENV)/bin/ruff check ." in makefile
