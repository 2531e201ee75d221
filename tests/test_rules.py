"""Each rule constant is defined once, in ``musicstream/rules.py``, and every definition of a rule gets it from
there: the SQL of both dialects as a written-in literal, the Python records and the native reader by import.

The rules' meaning is held elsewhere, definition against definition (test_reference.py: the merge SQL against an
independent reference; test_native.py: the polars reader against the Python records; test_spark.py: the Spark SQL
against the reference). Here: no copy of a constant is left anywhere else, the SQL reads the module's values, and
both readers draw the bounds where the module says.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from musicstream import rules
from musicstream.db.sqlfiles import read_sql
from musicstream.engines.read import LogTask, parse_log_lines, parse_log_native

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "musicstream"

# What a second definition of a constant would look like, in Python or in SQL.
COPIES = {
    "the inferred ids' prefixes": r"""['"]I[AT]-['"]""",
    "the length bound": r"\b2_?000_?000\b(?!_)",
    "the tier set": r"""['"]free['"],\s*['"]paid['"]""",
    "the match tolerance": r"<=\s*1\.0\b|<=\s*1000\b",
    "the md5 characters kept": r"md5\([^;]*?\),\s*24\)",
}


def _sources() -> list[Path]:
    """The package's code, but for rules.py itself and the schema migrations: a migration is history, applied as
    written (a change of a rule's constant that the schema holds, such as the tier set's CHECK, is a new one)."""
    return [
        p
        for p in sorted(PACKAGE.rglob("*"))
        if p.suffix in (".py", ".sql") and p.name != "rules.py" and p.parent.name != "schema"
    ]


def _code(line: str) -> bool:
    """Not a comment or a docstring's line: prose may name a constant's value."""
    stripped = line.strip()
    return not stripped.startswith(("--", "#")) and '"""' not in stripped


@pytest.mark.parametrize("what", sorted(COPIES))
def test_no_constant_is_written_twice(what: str) -> None:
    pattern = re.compile(COPIES[what])
    found = [
        f"{path.relative_to(PACKAGE)}:{text.count(chr(10), 0, match.start()) + 1}: {match[0]}"
        for path in _sources()
        for text in [path.read_text(encoding="utf-8")]
        for match in pattern.finditer(text)
        if _code(text.splitlines()[text.count(chr(10), 0, match.start())])
    ]
    assert found == [], f"{what} is written outside musicstream/rules.py"


def test_the_check_sees_a_copy(tmp_path: Path) -> None:
    """The patterns above find the copies they are for (else the test above could pass on anything)."""
    samples = {
        "the inferred ids' prefixes": "coalesce(a, 'IA-' || x)",
        "the length bound": "length < 2_000_000",
        "the tier set": 'is_in(["free", "paid"])',
        "the match tolerance": "abs(d - l) <= 1.0",
        "the md5 characters kept": "left(md5(k.artist_key), 24)",
    }
    assert sorted(samples) == sorted(COPIES)
    for what, sample in samples.items():
        assert re.search(COPIES[what], sample), what


@pytest.mark.parametrize("name", ["load/merge", "spark/star", "check/checks"])
def test_the_sql_reads_the_constants(name: str) -> None:
    text = read_sql(name)
    assert "{{" not in text.replace("{{...}}", "")
    assert f"'{rules.INFERRED_ARTIST_PREFIX}'" in text and f"'{rules.INFERRED_TRACK_PREFIX}'" in text
    if name != "check/checks":
        assert f"md5(k.artist_key), {rules.INFERRED_ID_HEX})" in text.replace("n.artist_key", "k.artist_key")
        assert f"char({ord(rules.KEY_SEPARATOR)})" in text or f"chr({ord(rules.KEY_SEPARATOR)})" in text


def test_both_dialects_get_the_same_tolerance() -> None:
    merge, star = read_sql("load/merge"), read_sql("spark/star")
    assert f"k.length_ms / 1000.0) <= {rules.MATCH_TOLERANCE_S}\n" in merge
    assert f"n.length_ms) <= {int(rules.MATCH_TOLERANCE_S * 1000)}\n" in star


def _event(length: float, level: str = "free", item: int = 0) -> bytes:
    return orjson.dumps(
        {
            "artist": "Muse",
            "auth": "Logged In",
            "firstName": "Ann",
            "gender": "F",
            "itemInSession": item,
            "lastName": "Lee",
            "length": length,
            "level": level,
            "location": "Tampa, FL",
            "method": "PUT",
            "page": "NextSong",
            "registration": 1540035677796.0,
            "sessionId": 7,
            "song": "Yellow",
            "status": 200,
            "ts": 1541030411796 + item * 1000,
            "userAgent": "Mozilla/5.0",
            "userId": "9",
        }
    )


@pytest.mark.parametrize(
    ("length", "level", "staged"),
    [
        (rules.MAX_LENGTH_S - 0.001, rules.TIERS[0], 1),
        (rules.MAX_LENGTH_S, rules.TIERS[0], 0),
        (0.0, rules.TIERS[-1], 1),
        (-0.001, rules.TIERS[-1], 0),
        (154.7, "gold", 0),
    ],
)
def test_both_readers_draw_the_bounds_where_the_rules_say(
    tmp_path: Path, length: float, level: str, staged: int
) -> None:
    log = tmp_path / "events.json"
    log.write_bytes(_event(1.0, item=1) + b"\n" + _event(length, level, item=2) + b"\n")
    task = LogTask(str(log), 0, None)
    native, python = parse_log_native(task), parse_log_lines(task)
    assert (native.staged, len(native.rejects)) == (python.staged, len(python.rejects)) == (1 + staged, 1 - staged)
