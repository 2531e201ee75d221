"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from musicstream import __version__
from musicstream.report import charts
from musicstream.report.build import empty_period
from musicstream.rules import TIERS

CSS = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6472; --line: #e3e7ee; --accent: #3b6fb6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #f6f8fb; }
header, main { max-width: 1200px; margin: 0 auto; padding: 16px; }
header h1 { margin: 0 0 4px; font-size: 1.5rem; }
header p { margin: 0; color: var(--muted); }
/* Eight headline cards: 8, 4 or 2 to a row, so that no row holds a lone card. */
.kpis { display: grid; grid-template-columns: repeat(2, 1fr); gap: 10px; margin: 16px 0; }
@media (min-width: 640px) { .kpis { grid-template-columns: repeat(4, 1fr); } }
@media (min-width: 1100px) { .kpis { grid-template-columns: repeat(8, 1fr); } }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.kpi b { display: block; font-size: 1.35rem; }
.kpi span { color: var(--muted); font-size: .85rem; }
/* Sections as tall as their content (a short card beside a long one keeps no blank box); wide ones span the row. */
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap: 16px;
        align-items: start; }
section.wide { grid-column: 1 / -1; }
.empty { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 16px 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; min-width: 0; }
section h2 { font-size: 1.05rem; margin: 0 0 8px; }
svg.chart { width: 100%; height: auto; display: block; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top;
         overflow-wrap: anywhere; }
td.n, th.n { text-align: right; white-space: nowrap; }
.tag { font-size: .75rem; padding: 1px 5px; border-radius: 4px; background: #eef2f8; color: var(--muted); }
.tag.catalog { background: #e3f4e8; color: #236b3a; }
footer { color: var(--muted); font-size: .8rem; max-width: 1200px; margin: 0 auto; padding: 0 16px 24px; }
"""


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    head = "".join(f'<th class="{"n" if i in numeric else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"n" if i in numeric else ""}">{cell}</td>' for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tag(inferred: bool) -> str:
    return '<span class="tag">inferred</span>' if inferred else '<span class="tag catalog">catalog</span>'


def _section(title: str, *parts: str, wide: bool = False) -> str:
    kind = ' class="wide"' if wide else ""
    return f"<section{kind}><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def _top_section(report: dict[str, Any], key: str, noun: str) -> str:
    rows_by_plays = report[key]["by_plays"]
    label = (lambda r: f"{r['title']} — {r['artist']}") if key == "top_tracks" else (lambda r: r["name"])
    chart = charts.bars(
        f"top-{noun}",
        f"Top {noun} by plays",
        [label(r) for r in rows_by_plays],
        [r["plays"] for r in rows_by_plays],
        "plays",
    )
    tables = []
    for ranking in ("by_plays", "by_listeners"):
        rows = [
            [escape(label(r)) + " " + _tag(r["is_inferred"]), _num(r["plays"]), _num(r["listeners"])]
            for r in report[key][ranking]
        ]
        tables.append(
            f"<h3>{escape(ranking.replace('_', ' '))}</h3>" + _table([noun[:-1], "plays", "listeners"], rows, {1, 2})
        )
    return _section(f"Top {noun}", chart, *tables)


def _dashboard(report: dict[str, Any]) -> str:
    """The headline cards and every section, with their charts."""
    h = report["headline"]
    t = report["tiers"]
    q = report["data_quality"]
    kpis = [
        ("plays", _num(h["plays"])),
        ("listeners", _num(h["listeners"])),
        ("listening hours", f"{h['listening_hours']:,.1f}"),
        ("sessions", _num(h["sessions"])),
        ("songs per session", f"{h['songs_per_session'] or 0:.2f}"),
        ("DAU / MAU", f"{h['dau']:.1f} / {h['mau']:,}"),
        ("stickiness", f"{100 * (h['stickiness'] or 0):.1f}%"),
        ("matched to catalog", f"{100 * (q['matched_share'] or 0):.2f}%"),
    ]
    kpi_html = "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in kpis)
    daily = report["daily"]
    sections = [
        _section(
            "When people listen",
            charts.heatmap(
                "hour-weekday",
                "Plays by weekday and hour (UTC)",
                report["hour_weekday"]["weekdays"],
                report["hour_weekday"]["plays"],
            ),
            charts.columns(
                "hours",
                "Plays by hour of day (UTC)",
                [f"{r['hour']:02d}" for r in report["hours"]],
                [r["plays"] for r in report["hours"]],
                "plays",
            ),
        ),
        _section(
            "Daily active listeners",
            charts.daily_line(
                "daily",
                "Listeners and plays per day (UTC)",
                [d["day"] for d in daily],
                [d["listeners"] for d in daily],
                [d["plays"] for d in daily],
            ),
            f"<p>DAU {h['dau']:.1f} (mean of the last {h['window_days']} days), MAU {h['mau']:,} "
            f"(distinct listeners in those days), stickiness {100 * (h['stickiness'] or 0):.1f}%.</p>",
        ),
        _top_section(report, "top_tracks", "tracks"),
        _top_section(report, "top_artists", "artists"),
        _section(
            "Free vs paid",
            charts.bars(
                "tiers",
                "Plays by tier",
                list(TIERS),
                [t["plays"].get(tier, 0) for tier in TIERS],
                "plays",
            ),
            _table(
                ["tier", "plays", "listeners", "listeners now"],
                [
                    [
                        tier,
                        _num(t["plays"].get(tier, 0)),
                        _num(t["listeners"].get(tier, 0)),
                        _num(t["current_tier_of_listeners"].get(tier, 0)),
                    ]
                    for tier in TIERS
                ],
                {1, 2, 3},
            ),
            f"<p>From their plays over time, {report['tier_changes']['upgraded']} users upgraded and "
            f"{report['tier_changes']['downgraded']} downgraded.</p>",
        ),
        _section(
            "Data quality",
            f"<p>{q['matched_to_catalog']:,} of {q['plays']:,} plays match a catalog song; the others resolve to "
            "inferred tracks and artists.</p>",
            _table(
                ["run", "started (UTC)", "status", "records", "rejects", "duplicates"],
                [
                    [
                        str(r["run_id"]),
                        escape(f"{r['started_at']:%Y-%m-%d %H:%M}"),
                        escape(r["status"]),
                        _num(r["records_read"]),
                        _num(r["rejects"]),
                        _num(r["duplicates"]),
                    ]
                    for r in q["recent_runs"]
                ],
                {3, 4, 5},
            ),
        ),
        _section(
            "Where and on what",
            '<div class="grid"><div>',
            charts.bars(
                "browsers",
                "Plays by browser",
                [r["family"] for r in report["browsers"]],
                [r["plays"] for r in report["browsers"]],
                "plays",
            ),
            charts.bars(
                "platforms",
                "Plays by platform",
                [r["family"] for r in report["platforms"]],
                [r["plays"] for r in report["platforms"]],
                "plays",
            ),
            "</div><div>",
            _table(
                ["location", "plays", "listeners"],
                [[escape(r["location"]), _num(r["plays"]), _num(r["listeners"])] for r in report["locations"]],
                {1, 2},
            ),
            _table(
                ["user agent", "plays", "listeners"],
                [
                    [escape(r["user_agent"] or "(none)"), _num(r["plays"]), _num(r["listeners"])]
                    for r in report["user_agents"]
                ],
                {1, 2},
            ),
            "</div></div>",
            wide=True,
        ),
    ]
    return f'<div class="kpis">{kpi_html}</div><div class="grid">{"".join(sections)}</div>'


def render_html(report: dict[str, Any]) -> str:
    h = report["headline"]
    f = report["filters"]
    period = f"{h['first_play']:%Y-%m-%d} to {h['last_play']:%Y-%m-%d}" if h["first_play"] else "no plays"
    scope = f"tier {f['tier']}" if f["tier"] else "all tiers"
    empty = empty_period(report)  # an empty period draws no chart: one sentence instead
    body = f'<p class="empty">{escape(empty)}</p>' if empty is not None else _dashboard(report)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>musicstream report: {escape(period)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>What people are listening to</h1><p>{escape(period)}, {escape(scope)}. "
        "All times are UTC.</p></header>"
        f"<main>{body}</main>"
        f"<footer>Generated by musicstream {escape(__version__)} on {generated}.</footer></body></html>\n"
    )
