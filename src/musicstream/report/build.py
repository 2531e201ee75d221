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


def _headline(conn: psycopg.Connection[Any], params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The headline figures of one period (with the catalog share), and its daily listeners."""
    head = _rows(conn, "headline", params)[0]
    daily = _rows(conn, "daily_listeners", params)
    window = _rows(conn, "monthly_window", params)[0]
    match = _rows(conn, "catalog_match", params)[0]
    plays = int(head["plays"])
    sessions = int(head["sessions"])
    headline = {
        "plays": plays,
        "listeners": int(head["listeners"]),
        "listening_hours": round(float(head["listening_hours"]), 1),
        "sessions": sessions,
        "songs_per_session": round(plays / sessions, 2) if sessions else None,
        "first_play": head["first_play"],
        "last_play": head["last_play"],
        **_activity(daily, int(window["mau"] or 0)),
        "matched_to_catalog": int(match["matched"]),
        "matched_share": _ratio(int(match["matched"]), int(match["plays"])),
    }
    return headline, daily


# The headline figures compared with the previous period, and how many decimals each keeps.
COMPARED = {
    "plays": 0,
    "listeners": 0,
    "listening_hours": 1,
    "sessions": 0,
    "songs_per_session": 2,
    "dau": 2,
    "mau": 0,
    "stickiness": 4,
    "matched_share": 4,
}


def _change(current: float | None, previous: float | None, digits: int) -> dict[str, Any]:
    if current is None or previous is None:
        return {"current": current, "previous": previous, "change": None, "change_share": None}
    change = round(current - previous, digits) if digits else int(current - previous)
    return {
        "current": current,
        "previous": previous,
        "change": change,
        "change_share": round((current - previous) / previous, 4) if previous else None,
    }


SHARES = frozenset({"stickiness", "matched_share"})


def describe_change(name: str, figure: dict[str, Any] | None) -> str:
    """A change as people read it: "+120 (+12.3%)" for counts, "+1.2 pts" for shares, "no earlier data" without."""
    if not figure or figure["previous"] is None:
        return "no earlier data"
    if figure["change"] is None:
        return "n/a"
    if name in SHARES:
        return f"{100 * figure['change']:+.1f} pts"
    digits = COMPARED[name]
    text = f"{figure['change']:+,.{digits}f}"
    if figure["change_share"] is not None:
        text += f" ({100 * figure['change_share']:+.1f}%)"
    return text


def describe_previous(compared: dict[str, Any]) -> str:
    """Which period the changes compare with, or that there is none."""
    if compared["previous"] is None:
        return "no period to compare with"
    before = compared["previous"]
    span = f"{before['since']:%Y-%m-%d} … {before['until']:%Y-%m-%d}"
    if not compared["has_data"]:
        return f"no earlier data: the data holds no plays in the previous {before['days']} days ({span})"
    part = "" if compared["covered_in_full"] else ", which the data covers in part"
    return f"changes vs {span}, the previous {before['days']} days{part}"


def _period_over_period(
    conn: psycopg.Connection[Any], filters: ReportFilters, coverage: dict[str, Any], current: dict[str, Any]
) -> dict[str, Any]:
    """The headline figures against the previous period of the same length (days): the period is the filters'
    dates, an open end taken at the first or last day the data covers. No plays in it: ``has_data`` false."""
    since = filters.since or coverage["first_day"]
    until = filters.until or coverage["last_day"]
    if since is None or until is None or until < since:
        return {"period": None, "previous": None, "has_data": False, "covered_in_full": False, "figures": {}}
    days = (until - since).days + 1
    before = {"since": since - dt.timedelta(days=days), "until": since - dt.timedelta(days=1), "days": days}
    earlier, _ = _headline(conn, {**filters.params(), "since": before["since"], "until": before["until"]})
    has_data = earlier["plays"] > 0
    return {
        "period": {"since": since, "until": until, "days": days},
        "previous": before,
        "has_data": has_data,
        # the data's first day on or before the previous period's: the comparison is with a whole period
        "covered_in_full": has_data and coverage["first_day"] <= before["since"],
        "figures": {
            name: _change(current[name], earlier[name] if has_data else None, digits)
            for name, digits in COMPARED.items()
        },
    }


def _retention(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cohorts by week: new listeners, and the share of them with plays each week after."""
    cohorts: dict[dt.date, dict[str, Any]] = {}
    for row in rows:
        cohort = cohorts.setdefault(
            row["cohort"], {"week_start": row["cohort"], "new_listeners": int(row["new_listeners"]), "weeks": []}
        )
        if row["weeks_later"] > 0:
            active = int(row["active"])
            cohort["weeks"].append(
                {
                    "weeks_later": int(row["weeks_later"]),
                    "active": active,
                    "share": _ratio(active, cohort["new_listeners"]),
                }
            )
    return {"cohorts": list(cohorts.values())}


def build_report(conn: psycopg.Connection[Any], filters: ReportFilters | None = None) -> dict[str, Any]:
    """Every figure of the report, in one repeatable-read snapshot."""
    filters = filters or ReportFilters()
    params = filters.params()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        headline, daily = _headline(conn, params)
        tracks = _ranked(_rows(conn, "top_tracks", params))
        artists = _ranked(_rows(conn, "top_artists", params))
        grid = _rows(conn, "hour_weekday", params)
        tiers = _rows(conn, "tiers", params)
        current = _rows(conn, "current_tiers", params)
        changes = _rows(conn, "tier_changes", params)[0]
        locations = _rows(conn, "top_locations", params)
        agents = _rows(conn, "user_agents", params)
        runs = _rows(conn, "recent_runs", params)
        coverage = _rows(conn, "coverage", params)[0]
        retention = _retention(_rows(conn, "retention", params))
        compared = _period_over_period(conn, filters, coverage, headline)

    matrix = [[0] * 24 for _ in WEEKDAYS]
    for cell in grid:
        matrix[cell["weekday"] - 1][cell["hour"]] = cell["plays"]
    matched = headline.pop("matched_to_catalog")
    matched_share = headline.pop("matched_share")
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
        "headline": headline,
        "period_over_period": compared,
        "top_tracks": tracks,
        "top_artists": artists,
        "hours": [{"hour": h, "plays": sum(matrix[d][h] for d in range(7))} for h in range(24)],
        "weekdays": [{"weekday": name, "plays": sum(matrix[d])} for d, name in enumerate(WEEKDAYS)],
        "hour_weekday": {"weekdays": list(WEEKDAYS), "plays": matrix},
        "daily": daily,
        "retention": retention,
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
            "plays": headline["plays"],
            "matched_to_catalog": matched,
            "matched_share": matched_share,
            "recent_runs": runs,
        },
    }
