"""Output written to a pipe or a file (not a terminal): every command's, no colour, no padding, no box or rule
wider than what it holds, tables as wide as their content. Each command runs in its own process with stdout a
pipe, as `musicstream report > out.txt` or `| less` would have it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from rich.cells import cell_len

from conftest import rows
from musicstream.db.connection import Database

BOX = {chr(c) for c in range(0x2500, 0x2580)}  # rich's borders and rules: the Unicode box-drawing block
LONGEST = 300  # no line of the public sample's output needs more


def _run(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run(
        [sys.executable, "-m", "musicstream", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


def _content_end(line: str) -> int:
    """Where a line's content ends: after its last character that is neither a space nor a box character."""
    return max((i + 1 for i, ch in enumerate(line) if ch not in BOX and not ch.isspace()), default=0)


def problems(out: str, folder: str = "") -> list[str]:
    """What is wrong with output meant for a pipe (an empty list when nothing is). ``folder``: a path the output
    names, whose length is the test's (pytest's folders), not the output's."""
    found = []
    lines = out.splitlines()
    widest = max((_content_end(line) for line in lines), default=0)
    for number, line in enumerate(lines, 1):
        where = f"line {number} ({len(line)} characters): {line[:60]!r}"
        if "\x1b" in line:
            found.append(f"an ANSI escape on {where}")
        if line != line.rstrip():
            found.append(f"trailing spaces on {where}")
        if len(line.replace(folder, "{tmp}") if folder else line) > LONGEST:
            found.append(f"longer than {LONGEST} characters: {where}")
        if line.strip() and set(line.strip()) <= BOX and len(line) > widest + 3:
            found.append(f"a border or rule wider than the widest content ({widest}): {where}")
    return found


@pytest.fixture
def sample(db: Database, udacity: Path, tmp_path: Path) -> dict[str, str]:
    """A database holding the public sample and a run with rejects; folders to write to."""
    bad = tmp_path / "bad" / "log_data"
    bad.mkdir(parents=True)
    (bad / "2018-12-01-events.json").write_text('{"page": "NextSong", "userId": "39"}\nnot json\n')
    url = db.conninfo
    for args in (["load", str(udacity)], ["load", "--allow-empty", str(bad.parent)]):
        code, _, err = _run("--database-url", url, *args)
        assert code == 0, err
    assert rows(db, "SELECT count(*) FROM rejects") == [(2,)]
    return {"url": url, "tmp": str(tmp_path), "data": str(udacity), "bad": str(bad.parent)}


COMMANDS = [
    ["init"],
    ["load", "{data}"],
    ["load", "--dry-run", "--full", "{data}"],
    ["status"],
    ["check"],
    ["report"],
    ["report", "--since", "2018-11-05", "--until", "2018-11-11", "--tier", "paid", "--top", "3"],
    ["report", "--since", "2030-01-01"],
    ["report", "--html", "{tmp}/report.html"],
    ["query", "--list"],
    ["query", "top_tracks", "limit=40"],
    ["query", "hourly_pattern"],
    ["query", "free_to_paid"],
    ["query", "user_history", "user=15", "limit=20"],
    ["runs"],
    ["runs", "show", "1"],
    ["runs", "show", "2"],
    ["rejects"],
    ["sql", "SELECT user_id, first_name, last_name, gender, tier FROM users ORDER BY 1 LIMIT 30"],
    ["config"],
    ["forget", "{bad}"],
    ["export", "{tmp}/star"],
    ["generate", "{tmp}/generated", "--users", "5", "--days", "2", "--songs", "10"],
    ["roles", "--analyst", "mst_pipe_analyst", "--loader", "mst_pipe_loader"],
]


def test_every_command_writes_plain_lines_to_a_pipe(sample: dict[str, str]) -> None:
    seen: dict[str, list[str]] = {}
    for args in COMMANDS:
        shown = " ".join(args)
        code, out, err = _run("--database-url", sample["url"], *(a.format(**sample) for a in args))
        assert code == 0, (shown, err)
        assert out.strip(), f"{shown} printed nothing"
        wrong = problems(out, sample["tmp"])
        if wrong:
            seen[shown] = wrong[:3]
    assert not seen, json.dumps(seen, indent=1, ensure_ascii=False)


def test_a_piped_table_is_as_wide_as_its_content(sample: dict[str, str]) -> None:
    """Neither cut nor wrapped at 80 columns: every row on one line, whole."""
    code, out, _ = _run("--database-url", sample["url"], "query", "top_tracks", "limit=40")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 + 3 + 40 + 1  # title, head (border, names, rule), 40 rows, bottom border
    assert max(len(line) for line in lines) > 80
    assert len({cell_len(line) for line in lines[1:]}) == 1  # the borders and every row: one width on screen


def test_every_command_honours_json(sample: dict[str, str]) -> None:
    """Each command that prints something (a listing above all) has --json, and then prints JSON only."""
    from musicstream.cli import cli

    commands = [c for c in cli.commands.values() if c.name != "psql"]
    groups = [group for group in cli.commands.values() if isinstance(group, click.Group)]
    commands += [command for group in groups for command in group.commands.values()]
    without = [c.name for c in commands if not any("--json" in p.opts for p in c.params)]
    assert without == []
    failed = {}
    for args in COMMANDS:
        shown = " ".join(args)
        code, out, err = _run("--database-url", sample["url"], *(a.format(**sample) for a in args), "--json")
        try:
            json.loads(out)
        except ValueError:
            failed[shown] = (code, out[:200], err[:200])
    assert not failed, failed
