"""Retention cohorts and period-over-period changes of `musicstream report`, held equal to statements written here
from the plays (``trackplays``), on the public sample and on a generated set."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from conftest import UDACITY
from musicstream import run_load
from musicstream.cli import cli
from musicstream.db.connection import Database
from musicstream.generate import generate
from musicstream.report import ReportFilters, build_report

# Cohorts from the plays: a listener's cohort is the ISO week of their first play on record (on the tier, up to
# the period's end) when that play is in the period; a cohort's weeks are every week from its own to the last
# week of the period with plays; "active" counts its members with a play in the period in that week.
RETENTION_FROM_PLAYS = """
WITH p AS (
    SELECT user_id, start_time::date AS day
    FROM trackplays
    WHERE start_time < coalesce(%(until)s::date + 1, 'infinity'::date)
      AND (%(tier)s::text IS NULL OR tier = %(tier)s::text)
), members AS (
    SELECT user_id, date_trunc('week', min(day))::date AS cohort
    FROM p
    GROUP BY user_id
    HAVING min(day) >= coalesce(%(since)s::date, '-infinity'::date)
), active AS (
    SELECT DISTINCT user_id, date_trunc('week', day)::date AS week
    FROM p
    WHERE day >= coalesce(%(since)s::date, '-infinity'::date)
), cohorts AS (
    SELECT DISTINCT week AS cohort FROM active
), weeks AS (
    SELECT generate_series(min(week), max(week), INTERVAL '7 days')::date AS week FROM active
)
SELECT c.cohort, (w.week - c.cohort) / 7 AS weeks_later,
       (SELECT count(*) FROM members m WHERE m.cohort = c.cohort) AS new_listeners,
       (SELECT count(*) FROM members m JOIN active a USING (user_id)
        WHERE m.cohort = c.cohort AND a.week = w.week) AS active
FROM cohorts c
JOIN weeks w ON w.week >= c.cohort
ORDER BY 1, 2
"""

# The headline of a period from its plays: DAU over the last 30 days of the period that end at its last day with
# plays (days from its first day with plays on), MAU the distinct listeners of those days.
HEADLINE_FROM_PLAYS = """
WITH p AS (
    SELECT p.user_id, p.session_id, p.start_time::date AS day, n.length_ms, NOT t.is_inferred AS catalog
    FROM trackplays p
    JOIN play_names n USING (name_id)
    JOIN tracks t ON t.track_id = p.track_id
    WHERE p.start_time >= %(since)s::date AND p.start_time < %(until)s::date + 1
      AND (%(tier)s::text IS NULL OR p.tier = %(tier)s::text)
), win AS (
    SELECT greatest(min(day), max(day) - 29) AS first, max(day) AS last FROM p
)
SELECT count(*) AS plays,
       count(DISTINCT user_id) AS listeners,
       coalesce(sum(length_ms), 0) / 3600000.0 AS listening_hours,
       count(DISTINCT (user_id, session_id)) AS sessions,
       (SELECT count(DISTINCT (user_id, day)) FROM p, win WHERE day >= win.first)::numeric
           / nullif((SELECT last - first + 1 FROM win), 0) AS dau,
       (SELECT count(DISTINCT user_id) FROM p, win WHERE day >= win.first) AS mau,
       count(*) FILTER (WHERE catalog) AS matched
FROM p
"""


def reference_retention(conn: psycopg.Connection[Any], filters: ReportFilters) -> list[dict[str, Any]]:
    got = conn.execute(RETENTION_FROM_PLAYS, filters.params()).fetchall()
    cohorts: dict[dt.date, dict[str, Any]] = {}
    for cohort, later, new, active in got:
        entry = cohorts.setdefault(cohort, {"week_start": cohort, "new_listeners": new, "weeks": []})
        if later:
            share = round(active / new, 4) if new else None
            entry["weeks"].append({"weeks_later": later, "active": active, "share": share})
    return list(cohorts.values())


def reference_headline(
    conn: psycopg.Connection[Any], since: dt.date, until: dt.date, tier: str | None
) -> dict[str, float | None]:
    with conn.cursor(row_factory=dict_row) as cur:
        h = cur.execute(HEADLINE_FROM_PLAYS, {"since": since, "until": until, "tier": tier}).fetchone()
    assert h is not None
    plays, sessions, mau = h["plays"], h["sessions"], h["mau"]
    dau = float(h["dau"] or 0)
    return {
        "plays": plays,
        "listeners": h["listeners"],
        "listening_hours": round(float(h["listening_hours"]), 1),
        "sessions": sessions,
        "songs_per_session": round(plays / sessions, 2) if sessions else None,
        "dau": round(dau, 2),
        "mau": mau,
        "stickiness": round(dau / mau, 4) if mau else None,
        "matched_share": round(h["matched"] / plays, 4) if plays else None,
    }


def check_periods(db: Database, filters: ReportFilters) -> dict[str, Any]:
    """The report's retention and period-over-period figures against the statements above; the report's part."""
    with db.connect() as conn:
        report = build_report(conn, filters)
        assert report["retention"]["cohorts"] == reference_retention(conn, filters), filters
        first, last = conn.execute("SELECT min(start_time)::date, max(start_time)::date FROM trackplays").fetchone()
        since, until = filters.since or first, filters.until or last
        days = (until - since).days + 1
        before_since, before_until = since - dt.timedelta(days=days), since - dt.timedelta(days=1)
        now = reference_headline(conn, since, until, filters.tier)
        then = reference_headline(conn, before_since, before_until, filters.tier)
    pop = report["period_over_period"]
    assert pop["period"] == {"since": since, "until": until, "days": days}
    assert pop["previous"] == {"since": before_since, "until": before_until, "days": days}
    assert pop["has_data"] == (then["plays"] > 0)
    assert pop["covered_in_full"] == (then["plays"] > 0 and first <= before_since)
    assert set(pop["figures"]) == set(now)
    for name, value in now.items():
        figure = pop["figures"][name]
        assert figure["current"] == pytest.approx(value), (filters, name)
        if not pop["has_data"]:
            assert figure["previous"] is None and figure["change"] is None, (filters, name)
            continue
        assert figure["previous"] == pytest.approx(then[name]), (filters, name)
        if value is None or then[name] is None:
            assert figure["change"] is None
            continue
        assert figure["change"] == pytest.approx(value - then[name], abs=1e-9), (filters, name)  # type: ignore[operator]
        share = round((value - then[name]) / then[name], 4) if then[name] else None  # type: ignore[operator]
        assert figure["change_share"] == (pytest.approx(share, abs=1e-4) if share is not None else None)
    return report


def _database(embedded: Database, name: str, folders: list[Path]) -> Iterator[Database]:
    from conftest import _fresh_database
    from musicstream.config import Settings

    url = _fresh_database(embedded, name)
    db = Database(Settings(database_url=url, home=embedded.settings.home))
    run_load(db, folders)
    yield db
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def sample(embedded: Database) -> Iterator[Database]:
    yield from _database(embedded, "ms_report_periods_sample", [UDACITY])


@pytest.fixture(scope="module")
def generated(embedded: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """Nine weeks of a generated service: listeners join week after week, some leave, tiers change."""
    root = tmp_path_factory.mktemp("generated_periods")
    generate(root, users=150, days=60, songs=120, seed=21, events=24_000, start=dt.date(2019, 3, 6))
    yield from _database(embedded, "ms_report_periods_generated", [root])


SAMPLE_FILTERS = [
    ReportFilters(),  # the whole data: no earlier period
    ReportFilters(since=dt.date(2018, 11, 16), until=dt.date(2018, 11, 30)),
    ReportFilters(since=dt.date(2018, 11, 20)),  # open end: the data's last day
    ReportFilters(since=dt.date(2018, 11, 8), until=dt.date(2018, 11, 14), tier="paid"),
    ReportFilters(since=dt.date(2018, 11, 5), until=dt.date(2018, 11, 11), tier="free"),  # previous in part
    ReportFilters(since=dt.date(2018, 11, 14), until=dt.date(2018, 11, 27), tier="free"),  # mid-week ends
]


def test_sample_equals_the_plays(sample: Database) -> None:
    reports = [check_periods(sample, f) for f in SAMPLE_FILTERS]
    whole, halves = reports[0], reports[1]
    assert whole["period_over_period"]["has_data"] is False
    assert halves["period_over_period"]["has_data"] and halves["period_over_period"]["covered_in_full"]
    assert reports[4]["period_over_period"]["has_data"] and not reports[4]["period_over_period"]["covered_in_full"]
    cohorts = whole["retention"]["cohorts"]
    assert [c["week_start"] for c in cohorts] == [dt.date(2018, 10, 29) + dt.timedelta(weeks=i) for i in range(5)]
    assert sum(c["new_listeners"] for c in cohorts) == whole["headline"]["listeners"]
    assert [len(c["weeks"]) for c in cohorts] == [4, 3, 2, 1, 0]
    assert any(w["active"] for c in cohorts for w in c["weeks"])


def test_generated_equals_the_plays(generated: Database) -> None:
    for filters in [
        ReportFilters(),
        ReportFilters(since=dt.date(2019, 4, 1)),
        ReportFilters(since=dt.date(2019, 3, 20), until=dt.date(2019, 4, 16), tier="paid"),
        ReportFilters(since=dt.date(2019, 4, 3), until=dt.date(2019, 4, 30), tier="free"),
    ]:
        report = check_periods(generated, filters)
        cohorts = report["retention"]["cohorts"]
        assert len(cohorts) >= 4, filters
        assert sum(1 for c in cohorts if c["new_listeners"]) >= 3, filters
        assert {w["active"] for c in cohorts for w in c["weeks"]} - {0}, filters


def test_json_terminal_and_html_show_them(sample: Database, tmp_path: Path) -> None:
    url = ["--database-url", sample.conninfo]
    runner = CliRunner()
    period = ["--since", "2018-11-16", "--until", "2018-11-30"]
    figures = json.loads(runner.invoke(cli, [*url, "report", *period, "--json"]).stdout)
    assert figures["period_over_period"]["previous"] == {"since": "2018-11-01", "until": "2018-11-15", "days": 15}
    assert figures["period_over_period"]["figures"]["plays"]["previous"] > 0
    assert figures["retention"]["cohorts"][0]["week_start"] == "2018-11-12"
    shown = runner.invoke(cli, [*url, "report", *period], env={"COLUMNS": "160"})
    assert shown.exit_code == 0, shown.output
    assert "vs 2018-11-01 … 2018-11-15" in shown.output
    assert "Retention" in shown.output and "2018-11-12" in shown.output
    whole = runner.invoke(cli, [*url, "report"], env={"COLUMNS": "160"})
    assert "no earlier data" in whole.output
    page = tmp_path / "report.html"
    assert runner.invoke(cli, [*url, "report", "--html", str(page)]).exit_code == 0
    assert page.read_text().count("<small>no earlier data</small>") == 8
    assert runner.invoke(cli, [*url, "report", *period, "--html", str(page)]).exit_code == 0
    assert "no earlier data" not in page.read_text() and "Changes vs 2018-11-01 … 2018-11-15" in page.read_text()
