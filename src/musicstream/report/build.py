"""The report's figures, computed in SQL (``sql/report/report.sql``) and assembled into one JSON-ready dict."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from musicstream.db.sqlfiles import named_statements
from musicstream.report.agents import browser_family, platform_family

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ACTIVITY_WINDOW_DAYS = 30


@dataclass(frozen=True)
class ReportFilters:
    """Which plays a report covers: dates inclusive (UTC), ``None`` meaning open; tier 'free', 'paid' or None."""

    since: dt.date | None = None
    until: dt.date | None = None
    tier: str | None = None
    top: int = 10

    def params(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "tier": self.tier, "top": self.top}


def _rows(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(named_statements("report/report")[name], params)
        return cur.fetchall()


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _families(agents: list[dict[str, Any]], family: Any) -> list[dict[str, Any]]:
    plays: Counter[str] = Counter()
    for row in agents:
        plays[family(row["user_agent"])] += row["plays"]
    return [{"family": name, "plays": count} for name, count in plays.most_common()]


def _activity(daily: list[dict[str, Any]], mau: int) -> dict[str, Any]:
    """DAU: mean daily listeners over the last 30 days of the period; MAU: distinct listeners in those days."""
    window = daily[-ACTIVITY_WINDOW_DAYS:]
    dau = sum(d["listeners"] for d in window) / len(window) if window else 0.0
    return {
        "dau": round(dau, 2),
        "mau": mau,
        "stickiness": _ratio(dau, mau),
        "window_days": len(window),
        "window_start": window[0]["day"] if window else None,
        "window_end": window[-1]["day"] if window else None,
    }


def _ranked(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {"by_plays": [], "by_listeners": []}
    for row in rows:
        ranking = row.pop("ranking")
        by[f"by_{ranking}"].append(row)
    return by


def empty_period(report: dict[str, Any]) -> str | None:
    """When the period and tier hold no plays: one sentence saying so, and which days the data covers."""
    if report["headline"]["plays"]:
        return None
    f, c = report["filters"], report["coverage"]
    since = f"{f['since']:%Y-%m-%d}" if f["since"] else "the first day"
    until = f"{f['until']:%Y-%m-%d}" if f["until"] else "the last day"
    tier = f" on the {f['tier']} tier" if f["tier"] else ""
    if not c["plays"]:
        return f"No plays from {since} to {until}{tier}: the database holds no plays yet (musicstream load …)."
    return (
        f"No plays from {since} to {until}{tier}. The data covers {c['first_day']:%Y-%m-%d} to "
        f"{c['last_day']:%Y-%m-%d} ({c['plays']:,} plays, UTC days)."
    )


def build_report(conn: psycopg.Connection[Any], filters: ReportFilters | None = None) -> dict[str, Any]:
    """Every figure of the report, in one repeatable-read snapshot."""
    filters = filters or ReportFilters()
    params = filters.params()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        head = _rows(conn, "headline", params)[0]
        daily = _rows(conn, "daily_listeners", params)
        window = _rows(conn, "monthly_window", params)[0]
        tracks = _ranked(_rows(conn, "top_tracks", params))
        artists = _ranked(_rows(conn, "top_artists", params))
        grid = _rows(conn, "hour_weekday", params)
        tiers = _rows(conn, "tiers", params)
        current = _rows(conn, "current_tiers", params)
        changes = _rows(conn, "tier_changes", params)[0]
        locations = _rows(conn, "top_locations", params)
        agents = _rows(conn, "user_agents", params)
        match = _rows(conn, "catalog_match", params)[0]
        runs = _rows(conn, "recent_runs", params)
        coverage = _rows(conn, "coverage", params)[0]

    matrix = [[0] * 24 for _ in WEEKDAYS]
    for cell in grid:
        matrix[cell["weekday"] - 1][cell["hour"]] = cell["plays"]
    plays = int(head["plays"])
    sessions = int(head["sessions"])
    return {
        "filters": {
            "since": filters.since,
            "until": filters.until,
            "tier": filters.tier,
            "top": filters.top,
            "timezone": "UTC",
        },
        "coverage": {
            "first_day": coverage["first_day"],
            "last_day": coverage["last_day"],
            "plays": int(coverage["plays"]),
        },
        "headline": {
            "plays": plays,
            "listeners": int(head["listeners"]),
            "listening_hours": round(float(head["listening_hours"]), 1),
            "sessions": sessions,
            "songs_per_session": round(plays / sessions, 2) if sessions else None,
            "first_play": head["first_play"],
            "last_play": head["last_play"],
            **_activity(daily, int(window["mau"] or 0)),
        },
        "top_tracks": tracks,
        "top_artists": artists,
        "hours": [{"hour": h, "plays": sum(matrix[d][h] for d in range(7))} for h in range(24)],
        "weekdays": [{"weekday": name, "plays": sum(matrix[d])} for d, name in enumerate(WEEKDAYS)],
        "hour_weekday": {"weekdays": list(WEEKDAYS), "plays": matrix},
        "daily": daily,
        "tiers": {
            "plays": {row["tier"]: row["plays"] for row in tiers},
            "listeners": {row["tier"]: row["listeners"] for row in tiers},
            "current_tier_of_listeners": {row["tier"]: row["users"] for row in current},
        },
        "tier_changes": changes,
        "locations": locations,
        "user_agents": agents[: filters.top],
        "browsers": _families(agents, browser_family),
        "platforms": _families(agents, platform_family),
        "data_quality": {
            "plays": int(match["plays"]),
            "matched_to_catalog": int(match["matched"]),
            "matched_share": _ratio(int(match["matched"]), int(match["plays"])),
            "recent_runs": runs,
        },
    }
