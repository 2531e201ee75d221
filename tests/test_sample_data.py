"""The public sample ships in data/ byte for byte (data/SHA256SUMS), with the counts data/README.md gives."""

from __future__ import annotations

import hashlib
import json

from conftest import ROOT

DATA = ROOT / "data"


def test_every_file_matches_its_recorded_sha256() -> None:
    listed = {}
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    on_disk = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*.json"))
    assert on_disk == sorted(listed)
    assert len(on_disk) == 101
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_the_sample_holds_what_its_readme_says() -> None:
    songs = sorted((DATA / "song_data").rglob("*.json"))
    logs = sorted((DATA / "log_data").rglob("*.json"))
    events = [json.loads(line) for path in logs for line in path.read_text("utf-8").splitlines() if line.strip()]
    assert (len(songs), len(logs), len(events)) == (71, 30, 8056)
    assert sum(e["page"] == "NextSong" for e in events) == 6820
    assert sum(e["userId"] == "" for e in events) == 286
    assert sum(json.loads(p.read_text("utf-8"))["year"] == 0 for p in songs) == 43


def test_nothing_in_the_project_reaches_outside_it() -> None:
    """A user's clone has nothing beside it: no file of the project may read the folder beside the checkout."""
    needle = "/".join(("..", "shared"))  # spelt so that this file does not match itself
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("src", "tests", "benchmarks", "notebooks")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".sql", ".ipynb", ".toml"} and needle in path.read_text("utf-8", "replace")
    ]
    offenders += [name for name in ("Makefile", ".ci/run", "pyproject.toml") if needle in (ROOT / name).read_text()]
    assert offenders == []
