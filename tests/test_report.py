"""`musicstream report` on the real sample: figures checked against values computed here from the raw files."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import UDACITY
from musicstream import run_load
from musicstream.cli import cli
from musicstream.db.connection import Database
from musicstream.report import ReportFilters, build_report


def raw_plays() -> list[dict[str, Any]]:
    """NextSong events with a user, straight from the files (rule 1 of docs/rules.md, applied by hand)."""
    plays = []
    for path in sorted((UDACITY / "log_data").rglob("*.json")):
        for line in path.read_text().splitlines():
            if line.strip():
                event = json.loads(line)
                if event["page"] == "NextSong" and event["userId"] != "":
                    event["at"] = dt.datetime.fromtimestamp(event["ts"] / 1000, dt.UTC)
                    plays.append(event)
    return plays


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    plays = raw_plays()
    agents = Counter(
        (p["userAgent"][1:-1] if p["userAgent"].startswith('"') and p["userAgent"].endswith('"') else p["userAgent"])
        for p in plays
    )
    daily: defaultdict[dt.date, set[str]] = defaultdict(set)
    for p in plays:
        daily[p["at"].date()].add(p["userId"])
    first, last = min(daily), max(daily)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)][-30:]
    window_users = {p["userId"] for p in plays if p["at"].date() >= days[0]}
    by_user: defaultdict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for p in plays:
        by_user[p["userId"]].append((p["ts"], p["sessionId"], p["itemInSession"], p["level"]))
    upgraded = downgraded = 0
    for events in by_user.values():
        tiers = [e[3] for e in sorted(events)]
        pairs = set(itertools.pairwise(tiers))
        upgraded += ("free", "paid") in pairs
        downgraded += ("paid", "free") in pairs
    return {
        "plays": len(plays),
        "listeners": len({p["userId"] for p in plays}),
        "sessions": len({(p["userId"], p["sessionId"]) for p in plays}),
        "hours": sum(p["length"] for p in plays) / 3600,
        "by_hour": Counter(p["at"].hour for p in plays),
        "by_weekday": Counter(p["at"].strftime("%A") for p in plays),
        "agents": agents.most_common(5),
        "tiers": Counter(p["level"] for p in plays),
        "dau": sum(len(daily.get(d, ())) for d in days) / len(days),
        "mau": len(window_users),
        "upgraded": upgraded,
        "downgraded": downgraded,
    }


@pytest.fixture(scope="module")
def loaded(embedded: Database) -> Database:
    from conftest import _fresh_database
    from musicstream.config import Settings

    url = _fresh_database(embedded, "ms_report_udacity")
    db = Database(Settings(database_url=url, home=embedded.settings.home))
    run_load(db, [UDACITY])
    return db


def test_headline_and_sections(loaded: Database, expected: dict[str, Any]) -> None:
    with loaded.connect(autocommit=True) as conn:
        report = build_report(conn, ReportFilters(top=5))
    h = report["headline"]
    assert (h["plays"], h["listeners"], h["sessions"]) == (
        expected["plays"],
        expected["listeners"],
        expected["sessions"],
    )
    assert h["listening_hours"] == pytest.approx(expected["hours"], abs=0.06)
    assert h["songs_per_session"] == pytest.approx(expected["plays"] / expected["sessions"], abs=0.01)
    assert h["dau"] == pytest.approx(expected["dau"], abs=0.01)
    assert h["mau"] == expected["mau"]
    assert h["stickiness"] == pytest.approx(expected["dau"] / expected["mau"], abs=0.001)
    assert {r["hour"]: r["plays"] for r in report["hours"]} == {h: expected["by_hour"][h] for h in range(24)}
    assert {r["weekday"]: r["plays"] for r in report["weekdays"]} == dict(expected["by_weekday"])
    busiest = max(report["hours"], key=lambda r: r["plays"])["hour"]
    assert busiest == expected["by_hour"].most_common(1)[0][0]
    assert [(r["user_agent"], r["plays"]) for r in report["user_agents"]] == expected["agents"]
    assert report["tiers"]["plays"] == {"paid": 5591, "free": 1229} == dict(expected["tiers"])
    assert report["tier_changes"]["upgraded"] == expected["upgraded"]
    assert report["tier_changes"]["downgraded"] == expected["downgraded"]
    assert report["data_quality"]["matched_to_catalog"] == 1
    top = report["top_tracks"]["by_plays"][0]
    assert (top["title"], top["artist"], top["plays"], top["is_inferred"]) == (
        "You're The One",
        "Dwight Yoakam",
        37,
        True,
    )
    assert sum(r["plays"] for r in report["browsers"]) == expected["plays"]


def test_filters(loaded: Database) -> None:
    plays = raw_plays()
    since, until = dt.date(2018, 11, 5), dt.date(2018, 11, 11)
    chosen = [p for p in plays if since <= p["at"].date() <= until and p["level"] == "paid"]
    with loaded.connect(autocommit=True) as conn:
        report = build_report(conn, ReportFilters(since=since, until=until, tier="paid"))
    assert report["headline"]["plays"] == len(chosen)
    assert report["headline"]["listeners"] == len({p["userId"] for p in chosen})
    assert report["tiers"]["plays"] == {"paid": len(chosen)}


def test_cli_report_terminal_and_json(loaded: Database) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "report", "--json", "--top", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["headline"]["plays"] == 6820
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "report", "--since", "2018-11-30"])
    assert result.exit_code == 0, result.output
    assert "You're The One" in runner.invoke(cli, ["--database-url", loaded.conninfo, "report"]).output
    bad = runner.invoke(
        cli, ["--database-url", loaded.conninfo, "report", "--since", "2018-12-01", "--until", "2018-11-01"]
    )
    assert bad.exit_code == 2


@pytest.mark.parametrize(
    "name",
    [
        "top_tracks",
        "artist_listeners",
        "session_lengths",
        "free_to_paid",
        "hourly_pattern",
        "retention",
        "location_weeks",
    ],
)
def test_curated_queries_run_on_the_sample(loaded: Database, name: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", name, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows, f"{name} returned no rows"


def _query(db: Database, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--database-url", db.conninfo, "query", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_curated_query_answers(loaded: Database, expected: dict[str, Any]) -> None:
    hourly = _query(loaded, "hourly_pattern")
    assert [r["plays"] for r in hourly] == [expected["by_hour"][h] for h in range(24)]
    assert sum(r["sessions"] for r in _query(loaded, "session_lengths")) == expected["sessions"]
    top = _query(loaded, "top_tracks", "limit=1")
    assert top == [
        {"title": "You're The One", "artist": "Dwight Yoakam", "source": "inferred", "plays": 37, "listeners": 22}
    ]
    plays_by_user = Counter(p["userId"] for p in raw_plays() if p["artist"] == "Coldplay")
    listeners = _query(loaded, "artist_listeners", "artist=coldplay")
    assert {str(r["user_id"]): r["plays"] for r in listeners} == dict(plays_by_user)
    paid = _query(loaded, "hourly_pattern", "tier=paid")
    assert sum(r["plays"] for r in paid) == 5591


def _monday(at: dt.datetime) -> str:
    return str((at - dt.timedelta(days=at.weekday())).date())


def test_retention_answers(loaded: Database) -> None:
    """Counted here from the raw files: each ISO week's listeners, and how many of them played the next week."""
    for tier in (None, "paid"):
        weeks: defaultdict[str, set[str]] = defaultdict(set)
        for p in raw_plays():
            if tier is None or p["level"] == tier:
                weeks[_monday(p["at"])].add(p["userId"])
        ordered = sorted(weeks)
        expected = []
        for i, week in enumerate(ordered):
            nxt = weeks.get(str(dt.date.fromisoformat(week) + dt.timedelta(days=7)), set())
            back = None if i == len(ordered) - 1 else len(weeks[week] & nxt)
            percent = None if back is None else round(100 * back / len(weeks[week]), 1)
            expected.append(
                {"week_start": week, "listeners": len(weeks[week]), "came_back_next_week": back, "percent": percent}
            )
        got = _query(loaded, "retention", *([f"tier={tier}"] if tier else []))
        assert got == expected
    assert any(r["came_back_next_week"] for r in got)


def test_location_weeks_answers(loaded: Database) -> None:
    plays = raw_plays()
    by_location = Counter(p["location"] for p in plays)
    top = sorted(by_location, key=lambda loc: (-by_location[loc], loc))[:3]
    expected = []
    for location in top:
        weeks: defaultdict[str, list[str]] = defaultdict(list)
        for p in plays:
            if p["location"] == location:
                weeks[_monday(p["at"])].append(p["userId"])
        for week in sorted(weeks):
            expected.append(
                {
                    "location": location,
                    "week_start": week,
                    "plays": len(weeks[week]),
                    "listeners": len(set(weeks[week])),
                }
            )
    assert _query(loaded, "location_weeks", "top=3") == expected


def test_user_history_answers(loaded: Database) -> None:
    from test_names import expected_repair

    mine = sorted(
        (p for p in raw_plays() if p["userId"] == "15" and p["at"].date() >= dt.date(2018, 11, 20)),
        key=lambda p: (p["ts"], p["sessionId"], p["itemInSession"]),
    )
    got = _query(loaded, "user_history", "user=15", "since=2018-11-20", "limit=50")
    assert len(got) == min(50, len(mine)) > 10
    for row, play in zip(got, mine, strict=False):
        assert row["start_time"] == play["at"].replace(tzinfo=None).isoformat(timespec="microseconds")
        assert (row["session_id"], row["item_in_session"], row["title"], row["tier"], row["location"]) == (
            play["sessionId"],
            play["itemInSession"],
            expected_repair(play["song"]),  # names are read repaired (rule 6)
            play["level"],
            play["location"],
        )
    missing = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", "user_history"])
    assert missing.exit_code == 2 and "needs user=VALUE" in missing.output


def test_query_errors_are_clear(loaded: Database) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "nope"])
    assert result.exit_code == 2 and "top_tracks" in result.output
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "top_tracks", "since=not-a-date"])
    assert result.exit_code == 2 and "since takes a date YYYY-MM-DD" in result.output
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "top_tracks", "bogus=1"])
    assert result.exit_code == 2 and "since" in result.output
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "top_track"])
    assert result.exit_code == 2 and "did you mean 'top_tracks'" in result.output
    listed = runner.invoke(cli, ["query", "--list"])
    assert listed.exit_code == 0 and "free_to_paid" in listed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["limt=5"], "no parameter 'limt'; did you mean 'limit'?"),
        (["limit=abc"], "parameter limit takes a whole number"),
        (["limit=2.5"], "parameter limit takes a whole number"),
        (["since=2018-13-01"], "parameter since takes a date YYYY-MM-DD"),
        (["since=20181101"], "parameter since takes a date YYYY-MM-DD"),
        (["until"], "give parameter until as until=VALUE"),
    ],
)
def test_bad_query_parameters_are_usage_errors(loaded: Database, args: list[str], message: str) -> None:
    """Checked before the database sees them: exit 2, the parameter named with its type, no PostgreSQL internals."""
    result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", "top_tracks", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "CONTEXT" not in result.output and "portal" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hourly_pattern", "tier=gold"], "parameter tier takes 'free' or 'paid' (or null), not 'gold'"),
        (["retention", "tier=Paid"], "parameter tier takes 'free' or 'paid' (or null), not 'Paid'"),
        (["top_tracks", "limit=-1"], "parameter limit takes a whole number of at least 1"),
        (["top_tracks", "limit=0"], "parameter limit takes a whole number of at least 1"),
        (["user_history", "user=15", "limit=0"], "parameter limit takes a whole number of at least 1"),
        (["location_weeks", "top=0"], "parameter top takes a whole number of at least 1"),
    ],
)
def test_query_parameters_are_checked_by_value(loaded: Database, args: list[str], message: str) -> None:
    """A value of the right type but outside the parameter's values is a usage error too: one line, exit 2."""
    result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_an_unknown_user_is_no_such_user(loaded: Database) -> None:
    result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", "user_history", "user=99999"])
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and "no such user: 99999" in result.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_an_empty_result_says_no_rows(loaded: Database, as_json: bool) -> None:
    """A user with no plays in the period: exit 0, "no rows" on stderr, stdout still a table or JSON."""
    args = ["user_history", "user=15", "since=2030-01-01", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", *args])
    assert result.exit_code == 0, result.output
    assert "no rows" in result.stderr and result.stderr.count("\n") == 1
    if as_json:
        assert json.loads(result.stdout) == []
    else:
        assert "start_time" in result.stdout  # the table's header: what the rows would have held
    full = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", "user_history", "user=15"])
    assert full.exit_code == 0 and "no rows" not in full.stderr


def test_query_json_numbers_are_numbers(loaded: Database, expected: dict[str, Any]) -> None:
    hourly = _query(loaded, "hourly_pattern")
    assert all(isinstance(r["percent"], float) for r in hourly)
    assert sum(r["plays"] for r in hourly) == expected["plays"]
    lengths = _query(loaded, "session_lengths")
    assert all(isinstance(r[k], float | int) for r in lengths for k in ("percent", "avg_songs", "median_minutes"))
    conversion = _query(loaded, "free_to_paid")[0]
    assert isinstance(conversion["conversion_percent"], float) and isinstance(conversion["started_free"], int)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("top_tracks", ["since=2018-11-05", "until=2018-11-20", "limit=7"]),
        ("artist_listeners", ["artist=Muse's"]),  # a quote in a text value
        ("hourly_pattern", ["tier=paid"]),
        ("free_to_paid", []),
    ],
)
def test_printed_sql_runs_in_psql(loaded: Database, name: str, params: list[str]) -> None:
    """`query --sql` prints SQL with the values written in; psql runs it as printed and gets the same rows."""
    url = ["--database-url", loaded.conninfo]
    printed = CliRunner().invoke(cli, [*url, "query", name, *params, "--sql"])
    assert printed.exit_code == 0, printed.output
    assert "%(" not in printed.output
    rows = json.loads(CliRunner().invoke(cli, [*url, "query", name, *params, "--json"]).stdout)
    psql = subprocess.run(
        [sys.executable, "-m", "musicstream", *url, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t"],
        input=printed.output,
        capture_output=True,
        text=True,
        check=False,
    )
    assert psql.returncode == 0, psql.stderr
    lines = [line.split("\t") for line in psql.stdout.splitlines() if line]
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        assert line == ["" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in row.values()]


def test_piped_tables_are_not_cut(loaded: Database) -> None:
    """Written to a pipe (no terminal, no COLUMNS), a table is as wide as its content: no wrapped or cut cells."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "musicstream", "--database-url", loaded.conninfo, "query", "top_tracks", "limit=40"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    header = next(line for line in done.stdout.splitlines() if "title" in line)
    assert all(word in header for word in ("title", "artist", "source", "plays", "listeners"))
    assert max(len(line) for line in done.stdout.splitlines()) > 80  # wider than rich's default for pipes


def test_empty_period_says_what_the_data_covers(loaded: Database, tmp_path: Path) -> None:
    url = ["--database-url", loaded.conninfo]
    runner = CliRunner()
    said = "The data covers 2018-11-01 to 2018-11-30 (6,820 plays, UTC days)."
    terminal = runner.invoke(cli, [*url, "report", "--since", "2020-01-01"])
    assert terminal.exit_code == 0, terminal.output
    assert "No plays from 2020-01-01 to the last day." in terminal.output and said in " ".join(terminal.output.split())
    assert "Top tracks" not in terminal.output
    figures = json.loads(runner.invoke(cli, [*url, "report", "--since", "2020-01-01", "--json"]).output)
    assert figures["headline"]["plays"] == 0
    assert figures["coverage"] == {"first_day": "2018-11-01", "last_day": "2018-11-30", "plays": 6820}
    page = tmp_path / "empty.html"
    written = runner.invoke(cli, [*url, "report", "--until", "2018-10-31", "--tier", "paid", "--html", str(page)])
    assert written.exit_code == 0, written.output
    assert "No plays from the first day to 2018-10-31 on the paid tier. " + said in page.read_text()


def test_report_cleanup(embedded: Database) -> None:
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ms_report_udacity WITH (FORCE)")
