"""Every documentation citation resolves inside the repository (issue #12, item 8).

Code, pages and docs cite the project's own ``docs/*.md`` as ``docs/<file>.md#<anchor>`` (or
``docs/<file>.md, "<Heading>"``); Markdown files link each other with relative links. None may
point at notes outside the repository (the design and reference notes the project was built
from), and every cited file and heading must exist. Anchors follow GitHub's rule: the heading
in lower case, punctuation dropped, spaces turned into hyphens, ``-1``, ``-2``... for repeats.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".html", ".js"}
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "var", "__pycache__", "build", "dist"}
# Notes outside the repository: a reader of the code cannot follow such a citation.
OUTSIDE = re.compile(r"\b(?:PROTOCOLS|OFFLINE_MODELS|ARCHITECTURE|STYLE)\.md\b|\.\./shared/"
                     r"|/work/shared\b")
CITATION = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")
QUOTED_SECTION = re.compile(r"\bdocs/([\w.-]+\.md),? \"([^\"]+)\"")
MARKDOWN_LINK = re.compile(r"\]\((?!https?:|mailto:)([^)\s#]*)(?:#([\w-]+))?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _repo_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames
                       if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(
                           ".egg-info")]
        for name in filenames:
            path = Path(dirpath) / name
            if path.suffix in SUFFIXES and path != Path(__file__).resolve():
                yield path


def _slug(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _headings(path: Path) -> tuple[set[str], set[str]]:
    """The anchors and the lower-cased heading texts of a Markdown file (outside code fences)."""
    anchors: set[str] = set()
    titles: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if not match:
            continue
        title = match.group(2)
        titles.add(title.strip().lower())
        slug = _slug(title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors, titles


def _lines(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return
    yield from enumerate(text.splitlines(), start=1)


def _where(path: Path, number: int, line: str) -> str:
    return f"{path.relative_to(ROOT)}:{number}: {line.strip()[:140]}"


def _check_target(target: Path, anchor: str | None, title: str | None) -> str | None:
    if not target.is_file():
        return f"no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
    if target.suffix != ".md" or not (anchor or title):
        return None
    anchors, titles = _headings(target)
    if anchor and anchor not in anchors:
        return f"no heading #{anchor} in {target.relative_to(ROOT)}"
    if title and title.strip().lower() not in titles:
        return f"no heading {title!r} in {target.relative_to(ROOT)}"
    return None


def test_no_citation_points_outside_the_repository():
    found = [_where(path, number, line) for path in _repo_files()
             for number, line in _lines(path) if OUTSIDE.search(line)]
    assert not found, "citations of notes outside the repository:\n" + "\n".join(found)


def test_every_docs_citation_names_an_existing_file_and_heading():
    broken = []
    for path in _repo_files():
        for number, line in _lines(path):
            for match in CITATION.finditer(line):
                error = _check_target(ROOT / "docs" / match.group(1), match.group(2), None)
                if error:
                    broken.append(f"{_where(path, number, line)}  ->  {error}")
            for match in QUOTED_SECTION.finditer(line):
                error = _check_target(ROOT / "docs" / match.group(1), None, match.group(2))
                if error:
                    broken.append(f"{_where(path, number, line)}  ->  {error}")
    assert not broken, "citations that do not resolve:\n" + "\n".join(broken)


def test_every_relative_markdown_link_resolves():
    broken = []
    for path in _repo_files():
        if path.suffix != ".md":
            continue
        for number, line in _lines(path):
            for match in MARKDOWN_LINK.finditer(line):
                target = (path.parent / match.group(1)).resolve() if match.group(1) else path
                error = _check_target(target, match.group(2), None)
                if error:
                    broken.append(f"{_where(path, number, line)}  ->  {error}")
    assert not broken, "Markdown links that do not resolve:\n" + "\n".join(broken)


def test_the_project_docs_exist_with_the_sections_code_cites():
    """The three pages and the sections the job kernel, the Civitai client and the offline
    pipeline code rely on (so a rename of a heading is caught even before anything cites it)."""
    expected = {
        "architecture.md": {"layout", "layers", "jobs", "claim-lease-and-heartbeat",
                            "dispatcher", "files-and-safety", "outbound-fetches",
                            "sqlite-in-embedded-mode"},
        "protocols.md": {"civitai", "civitai-rate-limits", "civitai-downloads", "replicate",
                         "runware", "gemini", "openai-images", "a1111-and-sdnext",
                         "safetensors-file-layout", "kohya-metadata", "model-hashes"},
        "offline-models.md": {"no-model-hub", "the-tiny-pipeline", "tokenizer-without-files",
                              "single-file-checkpoints"},
    }
    for name, anchors in expected.items():
        found, _ = _headings(ROOT / "docs" / name)
        assert anchors <= found, (name, sorted(anchors - found))


def test_protocol_sections_name_public_sources():
    """Each protocol section of docs/protocols.md gives at least one public https source."""
    text = (ROOT / "docs" / "protocols.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    missing = [s.splitlines()[0] for s in sections
               if not s.startswith("How to read") and "](https://" not in s]
    assert not missing, missing


def test_slug_follows_githubs_rule():
    assert _slug("Claim, lease and heartbeat") == "claim-lease-and-heartbeat"
    assert _slug("A1111 and SD.Next") == "a1111-and-sdnext"
    assert _slug("`from_pipe` and co") == "from_pipe-and-co"
