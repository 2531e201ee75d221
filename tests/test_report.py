"""`musicstream report` on the real sample: figures checked against values computed here from the raw files."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter, defaultdict
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import UDACITY
from musicstream import run_load
from musicstream.cli import cli
from musicstream.db.connection import Database
from musicstream.report import ReportFilters, build_report


def raw_plays() -> list[dict[str, Any]]:
    """NextSong events with a user, straight from the files (the rule of SEMANTICS.md, applied by hand)."""
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
    "name", ["top_tracks", "artist_listeners", "session_lengths", "free_to_paid", "hourly_pattern"]
)
def test_curated_queries_run_on_the_sample(loaded: Database, name: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", name, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows, f"{name} returned no rows"


def test_curated_query_answers(loaded: Database, expected: dict[str, Any]) -> None:
    def run(*args: str) -> list[dict[str, Any]]:
        result = CliRunner().invoke(cli, ["--database-url", loaded.conninfo, "query", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)  # type: ignore[no-any-return]

    hourly = run("hourly_pattern")
    assert [r["plays"] for r in hourly] == [expected["by_hour"][h] for h in range(24)]
    assert sum(r["sessions"] for r in run("session_lengths")) == expected["sessions"]
    top = run("top_tracks", "limit=1")
    assert top == [
        {"title": "You're The One", "artist": "Dwight Yoakam", "source": "inferred", "plays": 37, "listeners": 22}
    ]
    plays_by_user = Counter(p["userId"] for p in raw_plays() if p["artist"] == "Coldplay")
    assert {str(r["user_id"]): r["plays"] for r in run("artist_listeners", "artist=coldplay")} == dict(plays_by_user)
    paid = run("hourly_pattern", "tier=paid")
    assert sum(r["plays"] for r in paid) == 5591


def test_query_errors_are_clear(loaded: Database) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "nope"])
    assert result.exit_code == 2 and "top_tracks" in result.output
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "top_tracks", "since=not-a-date"])
    assert result.exit_code == 2 and "wrong type" in result.output
    result = runner.invoke(cli, ["--database-url", loaded.conninfo, "query", "top_tracks", "bogus=1"])
    assert result.exit_code == 2 and "since" in result.output
    listed = runner.invoke(cli, ["query", "--list"])
    assert listed.exit_code == 0 and "free_to_paid" in listed.output


def test_report_cleanup(embedded: Database) -> None:
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ms_report_udacity WITH (FORCE)")
