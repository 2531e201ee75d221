"""The report on a terminal: rich tables, one panel per section."""

from __future__ import annotations

from typing import Any

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from musicstream.report.build import describe_change, describe_previous, empty_period
from musicstream.rules import TIERS

BAR_WIDTH = 24
RETENTION_COHORTS = 12  # the latest cohorts shown; --json has them all


def _bar(value: int, top: int) -> Text:
    filled = round(BAR_WIDTH * value / top) if top else 0
    return Text("█" * filled, style="cyan")


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", expand=False, pad_edge=False)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", overflow="fold")
    return table


def _percent(part: float | None, digits: int = 1) -> str:
    return "n/a" if part is None else f"{100 * part:.{digits}f}%"


def _headline(report: dict[str, Any]) -> Panel:
    h = report["headline"]
    pop = report["period_over_period"]
    figures = pop["figures"]
    shown = {**h, "matched_share": report["data_quality"]["matched_share"]}
    grid = Table.grid(padding=(0, 2))
    for style in ("bold", None, "dim") * 2:
        grid.add_column(style=style, justify="left" if style == "bold" else "right")
    cells = [
        ("plays", f"{h['plays']:,}", "plays"),
        ("listeners", f"{h['listeners']:,}", "listeners"),
        ("listening hours", f"{h['listening_hours']:,.1f}", "listening_hours"),
        ("sessions", f"{h['sessions']:,}", "sessions"),
        ("songs per session", f"{h['songs_per_session'] or 0:.2f}", "songs_per_session"),
        ("DAU", f"{h['dau']:.1f}", "dau"),
        ("MAU", f"{h['mau']:,}", "mau"),
        ("stickiness (DAU/MAU)", _percent(h["stickiness"]), "stickiness"),
        ("matched to catalog", _percent(shown["matched_share"], 2), "matched_share"),
        ("activity window", f"{h['window_days']} days", ""),
    ]
    for i in range(0, len(cells), 2):
        row: list[str] = []
        for label, value, key in cells[i : i + 2]:
            change = describe_change(key, figures.get(key)) if key and pop["has_data"] else ""
            row += [label, value, change]
        grid.add_row(*row)
    f = report["filters"]
    period = f"{h['first_play']:%Y-%m-%d} … {h['last_play']:%Y-%m-%d}" if h["first_play"] else "no plays"
    scope = f"tier {f['tier']}" if f["tier"] else "all tiers"
    return Panel(
        Group(grid, Text(describe_previous(pop), style="dim")),
        title=f"Listening, {period}, {scope} (times in UTC)",
        title_align="left",
    )


def _retention(report: dict[str, Any]) -> Table:
    cohorts = report["retention"]["cohorts"][-RETENTION_COHORTS:]
    later = max((len(c["weeks"]) for c in cohorts), default=0)
    table = _table(
        "Retention: new listeners by week, and the share still listening",
        "week of",
        "new",
        *(f"+{k}w" for k in range(1, later + 1)),
    )
    for cohort in cohorts:
        shares = [_percent(w["share"]) if cohort["new_listeners"] else "" for w in cohort["weeks"]]
        table.add_row(f"{cohort['week_start']:%Y-%m-%d}", f"{cohort['new_listeners']:,}", *shares)
    table.caption = (
        "new: first play on record in that week (ISO weeks from Monday, UTC, cut to the period); "
        "+Nw: share of them with a play N weeks later"
    )
    table.caption_justify = "left"
    table.min_width = 72
    return table


def _top(report: dict[str, Any], key: str, label: str) -> list[Table]:
    tables = []
    for ranking in ("by_plays", "by_listeners"):
        table = _table(f"Top {label} {ranking.replace('_', ' ')}", label[:-1], "plays", "listeners")
        for row in report[key][ranking]:
            name = f"{row['title']} — {row['artist']}" if "title" in row else row["name"]
            mark = " [dim](inferred)[/]" if row["is_inferred"] else " [green](catalog)[/]"
            table.add_row(Text(name) + Text.from_markup(mark), f"{row['plays']:,}", f"{row['listeners']:,}")
        tables.append(table)
    return tables


def _hours(report: dict[str, Any]) -> Table:
    table = _table("Plays by hour of day (UTC)", "hour", "plays", "")
    top = max((r["plays"] for r in report["hours"]), default=0)
    for row in report["hours"]:
        table.add_row(f"{row['hour']:02d}:00", f"{row['plays']:,}", _bar(row["plays"], top))
    return table


def _weekdays(report: dict[str, Any]) -> Table:
    table = _table("Plays by weekday (UTC)", "weekday", "plays", "")
    top = max((r["plays"] for r in report["weekdays"]), default=0)
    for row in report["weekdays"]:
        table.add_row(row["weekday"], f"{row['plays']:,}", _bar(row["plays"], top))
    return table


def _tiers(report: dict[str, Any]) -> Table:
    t = report["tiers"]
    table = _table("Free vs paid", "tier", "plays", "listeners", "listeners now")
    for tier in TIERS:
        table.add_row(
            tier,
            f"{t['plays'].get(tier, 0):,}",
            f"{t['listeners'].get(tier, 0):,}",
            f"{t['current_tier_of_listeners'].get(tier, 0):,}",
        )
    c = report["tier_changes"]
    table.caption = f"upgraded {c['upgraded']}, downgraded {c['downgraded']} (users, from their plays over time)"
    return table


def _simple(title: str, rows: list[dict[str, Any]], key: str, label: str) -> Table:
    table = _table(title, label, "plays", *(("listeners",) if rows and "listeners" in rows[0] else ()))
    for row in rows:
        cells = [f"{row['plays']:,}"] + ([f"{row['listeners']:,}"] if "listeners" in row else [])
        table.add_row(Text(str(row[key]) or "(none)"), *cells)
    return table


def _quality(report: dict[str, Any]) -> Table:
    q = report["data_quality"]
    table = _table("Data quality", "run", "started (UTC)", "status", "records", "rejects", "duplicates")
    for run in q["recent_runs"]:
        table.add_row(
            str(run["run_id"]),
            f"{run['started_at']:%Y-%m-%d %H:%M}",
            run["status"],
            f"{run['records_read']:,}",
            f"{run['rejects']:,}",
            f"{run['duplicates']:,}",
        )
    table.caption = (
        f"plays matched to the catalog: {q['matched_to_catalog']:,} of {q['plays']:,} "
        f"({_percent(q['matched_share'])}); the rest resolve to inferred tracks"
    )
    return table


def render(report: dict[str, Any]) -> RenderableType:
    empty = empty_period(report)
    if empty is not None:
        return Panel(Text(empty), title="Nothing to report", title_align="left")
    return Group(
        _headline(report),
        *_top(report, "top_tracks", "tracks"),
        *_top(report, "top_artists", "artists"),
        _retention(report),
        Columns([_hours(report), Group(_weekdays(report), _tiers(report))]),
        _simple("Top locations", report["locations"], "location", "location"),
        Columns(
            [
                _simple("Browsers", report["browsers"], "family", "browser"),
                _simple("Platforms", report["platforms"], "family", "platform"),
            ]
        ),
        _simple("Top user agents", report["user_agents"], "user_agent", "user agent"),
        _quality(report),
    )
