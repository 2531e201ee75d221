"""The docs cite only what exists, and the generated CLI reference is current.

Checked in README.md, data/README.md and docs/*.md, outside fenced code blocks:
- every relative Markdown link names a file or folder of the repository;
- every path in backticks that looks like the repository's (its first part is a top-level entry of the repository
  or a package of ``src/musicstream/``, as ``load/merge.py``; or a name ending in .py, .sql, .md, .toml or .ipynb)
  exists, resolved from the repository's root, from ``src/`` and from ``src/musicstream/``; a ``::test`` after a
  path names a function of that file;
- every name in backticks right after a cited .py or .sql file (`` `load/pipeline.py` `run` ``, or a list:
  `` `merge.sql` `resolve`, `inferred_artists` ``) is defined there: ``def``, ``class`` or an assignment in Python;
  a ``-- name:`` block, or a function, view or table created, in SQL;
- docs/cli.md is what ``docs/gen_cli.py`` renders now (``make docs`` writes it);
- README.md is at most 8 KB: a first screen, with the rest in docs/.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "musicstream"
README_LIMIT = 8192

# Names in backticks that read like files but are not the repository's: a user's own files.
NOT_IN_REPOSITORY = frozenset({"musicstream.toml"})
EXTENSIONS = (".py", ".sql", ".md", ".toml", ".ipynb")
NOT_A_PATH = re.compile(r"\s|://|[*…<>{}$~=|'\"]|^[./]")  # globs, placeholders, URLs, absolute and ./ paths

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")
_NAMES = r"`[A-Za-z_][\w.]*(?:\(\))?`"
_CITED = re.compile(rf"`([^`\s]+\.(?:py|sql))` ((?:{_NAMES})(?:(?:, | and | → | or |/){_NAMES})*)")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text without its fenced code blocks (examples of commands and output, not citations)."""
    return _FENCE.sub("", text)


def roots() -> set[str]:
    """What a repository path may start with: the repository's top-level entries and the package's folders."""
    top = {p.name for p in ROOT.iterdir() if not p.name.startswith(".") or p.name == ".ci"}
    return top | {p.name for p in PACKAGE.iterdir() if p.is_dir()} | {"musicstream"}


def resolve(path: str) -> Path | None:
    """The file or folder a cited path names, tried from the repository's root, src/ and src/musicstream/."""
    for base in (ROOT, ROOT / "src", PACKAGE):
        candidate = base / path
        if candidate.exists():
            return candidate
    return None


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown text's headings, as GitHub makes them (lower case, punctuation dropped, spaces as
    hyphens)."""
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{1,6} (.+)$", prose(text), re.M)
    }


def broken_links(text: str, where: Path) -> list[str]:
    """Relative links of a Markdown text (in the file ``where``) that name nothing in the repository, or a heading
    their page does not have."""
    broken = []
    for target in _LINK.findall(prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        file = where.parent / path
        if path and not file.exists():
            broken.append(target)
        elif anchor and (not path or file.suffix == ".md"):
            page = file.read_text(encoding="utf-8") if path else text
            if anchor not in anchors(page):
                broken.append(target)
    return broken


def cited_paths(text: str) -> list[str]:
    """The paths in backticks that look like the repository's."""
    known = roots()
    found = []
    for code in _CODE.findall(prose(text)):
        path = code.split("::", 1)[0].rstrip("/")
        if NOT_A_PATH.search(path) or path in NOT_IN_REPOSITORY:
            continue
        if ("/" in path and path.split("/", 1)[0] in known) or path.endswith(EXTENSIONS):
            found.append(code)
    return found


def missing_paths(text: str) -> list[str]:
    """Cited paths that do not exist, and ``path::test`` citations whose test is not in the file."""
    missing = []
    for code in cited_paths(text):
        path, _, test = code.partition("::")
        file = resolve(path.rstrip("/"))
        if file is None or (test and not defines(file, test)):
            missing.append(code)
    return missing


def defines(file: Path, name: str) -> bool:
    """Whether ``file`` defines ``name`` (``Class.method``: both)."""
    text = file.read_text(encoding="utf-8")
    for part in name.removesuffix("()").split("."):
        word = re.escape(part)
        if file.suffix == ".sql":
            pattern = (
                rf"^-- name:\s*{word}\s*$"
                rf"|(?:FUNCTION|VIEW|TABLE|INDEX)\s+(?:IF NOT EXISTS\s+)?(?:\w+\.)?{word}\b"
            )
            flags = re.M | re.I
        else:
            pattern = rf"^\s*(?:async\s+)?(?:def|class)\s+{word}\b|^\s*{word}\s*(?::[^=\n]+)?="
            flags = re.M
        if not re.search(pattern, text, flags):
            return False
    return True


def missing_names(text: str) -> list[str]:
    """``path`` ``name`` citations whose name the file does not define (or whose file does not exist)."""
    missing = []
    for path, names in _CITED.findall(prose(text)):
        file = resolve(path)
        for name in re.findall(r"`([^`]+)`", names):
            if file is None or not defines(file, name):
                missing.append(f"{path} {name}")
    return missing


def gen_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(doc: Path) -> None:
    assert broken_links(doc.read_text(encoding="utf-8"), doc) == []


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_paths_exist(doc: Path) -> None:
    assert missing_paths(doc.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_names_are_defined(doc: Path) -> None:
    assert missing_names(doc.read_text(encoding="utf-8")) == []


def test_the_docs_cite_enough_to_check() -> None:
    """The checks above find what they are for in the real docs (else they could pass on anything)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in doc_files())
    assert len(cited_paths(text)) > 100
    assert len(_CITED.findall(prose(text))) > 30
    assert len(_LINK.findall(prose(text))) > 10


def stale_cli_reference(written: str) -> str | None:
    """What is wrong with a CLI reference that is not what the commands' --help says now."""
    if written == gen_cli().render():
        return None
    return "docs/cli.md is not what the commands' --help says: run `make docs`"


def readme_too_big(readme: bytes) -> str | None:
    if len(readme) <= README_LIMIT:
        return None
    return f"README.md is {len(readme):,} bytes; keep it at most {README_LIMIT:,} (move detail to docs/)"


def test_the_cli_reference_is_current() -> None:
    assert stale_cli_reference((ROOT / "docs" / "cli.md").read_text(encoding="utf-8")) is None


def test_readme_is_a_first_screen() -> None:
    assert readme_too_big((ROOT / "README.md").read_bytes()) is None


def test_each_check_sees_what_it_is_for(tmp_path: Path) -> None:
    """Fake docs with one mistake of each kind: every check reports it, and passes the correct form."""
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# There\n\n## 5b. The `part`: one, two\n")
    assert (
        broken_links("# X\n[a](there.md) [b](https://example.com) [c](#x) [e](there.md#5b-the-part-one-two)", page)
        == []
    )
    assert broken_links("[a](there.md#part) [d](gone.md) [f](#nowhere)", page) == [
        "there.md#part",
        "gone.md",
        "#nowhere",
    ]
    assert missing_paths("`load/merge.py`, `src/musicstream/sql/load/merge.sql`, `sql/spark/star.sql`") == []
    assert missing_paths("`README.md`, `docs/gen_cli.py`, `tests/test_docs.py::test_links_resolve`") == []
    assert missing_paths("`load/mergers.py` `engines/nowhere/` `tests/test_docs.py::test_nothing`") == [
        "load/mergers.py",
        "engines/nowhere/",
        "tests/test_docs.py::test_nothing",
    ]
    assert missing_paths("`lake/_CURRENT` `s3://bucket/x.py` `musicstream.toml` `PATH/<v>/x.py`") == []
    assert missing_paths("```sh\n`load/nothing.py`\n```") == []
    assert missing_names("`load/pipeline.py` `run`, `_listed` and `_failed`") == []
    assert missing_names("`load/stats.py` `LoadResult.add_file`; `sql/load/merge.sql` `insert_plays`") == []
    assert missing_names("`rules.py` `MATCH_TOLERANCE_S`; `sql/rollups/functions/day_tops.sql` `report_top()`") == []
    assert missing_names("`load/pipeline.py` `run`, `_swap`") == ["load/pipeline.py _swap"]
    assert missing_names("`sql/load/merge.sql` `unsorted_plays`") == ["sql/load/merge.sql unsorted_plays"]
    assert missing_names("`load/gone.py` `run`") == ["load/gone.py run"]
    cli_md = gen_cli().render()
    assert cli_md.startswith("# Command-line reference") and "## `musicstream runs show`" in cli_md
    assert "Usage: musicstream load [OPTIONS] PATHS..." in cli_md
    assert stale_cli_reference(cli_md) is None
    assert stale_cli_reference(cli_md.replace("Load song and log files", "Load song files")) is not None
    assert readme_too_big(b"x" * README_LIMIT) is None
    assert readme_too_big(b"x" * (README_LIMIT + 1)) is not None
