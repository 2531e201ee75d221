"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from musicstream import __version__
from musicstream.report import charts
from musicstream.report.build import describe_change, describe_previous, empty_period
from musicstream.rules import TIERS

RETENTION_WEEKS = 8  # the latest cohorts, and weeks after, the page shows; --json has them all

CSS = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6472; --line: #e3e7ee; --accent: #3b6fb6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #f6f8fb; }
header, main { max-width: 1200px; margin: 0 auto; padding: 16px; }
header h1 { margin: 0 0 4px; font-size: 1.5rem; }
header p { margin: 0; color: var(--muted); }
/* Eight headline cards: 8, 4 or 2 to a row, so that no row holds a lone card. */
.kpis { display: grid; grid-template-columns: repeat(2, 1fr); gap: 10px; margin: 16px 0 6px; }
@media (min-width: 640px) { .kpis { grid-template-columns: repeat(4, 1fr); } }
@media (min-width: 1100px) { .kpis { grid-template-columns: repeat(8, 1fr); } }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.kpi b { display: block; font-size: 1.35rem; }
.kpi span { color: var(--muted); font-size: .85rem; display: block; }
.kpi small { display: block; font-size: .8rem; color: var(--muted); }
.kpi small.up { color: #236b3a; }
.kpi small.down { color: #a2381b; }
.note { color: var(--muted); font-size: .85rem; margin: 4px 0 12px; }
/* Sections flow in columns (two from 1,000 px on), each kept whole and as tall as its content: the browser
   balances the columns, so that none keeps blank space beside a long neighbour. Wide ones span the page. */
.flow { columns: 2 480px; column-gap: 16px; }
.flow section { break-inside: avoid; margin: 0 0 16px; }
.flow section.wide { column-span: all; }
.empty { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 16px 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; min-width: 0;
          display: flow-root; }
section h2 { font-size: 1.05rem; margin: 0 0 8px; }
section h3 { font-size: .95rem; margin: 12px 0 4px; }
section p { margin: 6px 0; }
svg.chart { width: 100%; max-width: 640px; height: auto; display: block; margin: 0 0 8px; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top;
         overflow-wrap: anywhere; }
td.n, th.n { text-align: right; white-space: nowrap; }
table.cohorts td, table.cohorts th { padding: 4px 3px; text-align: right; white-space: nowrap; }
table.cohorts td:first-child, table.cohorts th:first-child { text-align: left; }
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


MATCHING = (
    "<b>catalog</b>: the play names a song of the song files (same title and artist, up to case and spacing, "
    "length within 1 s); <b>inferred</b>: it names a song the catalog does not hold, kept as a track and artist "
    "of its own so that every play counts."
)


def _top_section(report: dict[str, Any], key: str, noun: str) -> str:
    """The chart carries the top by plays with its figures; the table, the other ranking with its own figure
    (listeners): no figure shown twice."""
    rows_by_plays = report[key]["by_plays"]

    def label(r: dict[str, Any]) -> str:
        return f"{r['title']} — {r['artist']}" if key == "top_tracks" else str(r["name"])

    chart = charts.bars(
        f"top-{noun}",
        f"Top {noun} by plays",
        [label(r) + ("" if r["is_inferred"] else " (catalog)") for r in rows_by_plays],
        [r["plays"] for r in rows_by_plays],
        colors=[charts.ACCENT if r["is_inferred"] else charts.CATALOG for r in rows_by_plays],
    )
    rows = [
        [escape(label(r)) + " " + _tag(r["is_inferred"]), _num(r["listeners"])] for r in report[key]["by_listeners"]
    ]
    table = _table([noun[:-1], "listeners"], rows, {1})
    return _section(
        f"Top {noun}",
        chart,
        f"<h3>by distinct listeners</h3>{table}",
        f'<p class="note">{MATCHING}</p>',
    )


def _retention_section(report: dict[str, Any]) -> str:
    """Cohorts as a table shaded by share (a heatmap that stays text): the latest cohorts and weeks only."""
    cohorts = report["retention"]["cohorts"][-RETENTION_WEEKS:]
    later = min(max((len(c["weeks"]) for c in cohorts), default=0), RETENTION_WEEKS)
    header = "".join(f"<th>{escape(h)}</th>" for h in ["week of", "new", *(f"+{k}" for k in range(1, later + 1))])
    body = ""
    for c in cohorts:
        cells = [f"<td>{c['week_start']:%b %d}</td>", f"<td>{_num(c['new_listeners'])}</td>"]
        for w in c["weeks"][:later]:
            share = w["share"]
            if share is None:
                cells.append("<td></td>")
            else:
                shade = f"rgba(59, 111, 182, {0.08 + 0.6 * share:.2f})"
                cells.append(f'<td style="background: {shade}">{100 * share:.0f}%</td>')
        cells += ["<td></td>"] * (later - len(c["weeks"][:later]))
        body += f"<tr>{''.join(cells)}</tr>"
    first = f", from {cohorts[0]['week_start']:%Y-%m-%d}" if cohorts else ""
    return _section(
        "Retention",
        f'<table class="cohorts"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>',
        f'<p class="note">Each row is a week (from Monday, UTC, cut to the period{escape(first)}): <b>new</b> is '
        "the listeners whose first play on record fell in it, and +1, +2, … the share of them who played 1, 2, … "
        "weeks later. The latest weeks may be partial.</p>",
    )


def _kpis(report: dict[str, Any]) -> str:
    h = report["headline"]
    q = report["data_quality"]
    pop = report["period_over_period"]
    f = pop["figures"]

    def delta(*names: str) -> str:
        if not pop["has_data"]:
            return "<small>no earlier data</small>"
        parts = [describe_change(n, f.get(n)) for n in names]
        lead = f.get(names[0]) or {}
        kind = "" if not lead.get("change") else (" up" if lead["change"] > 0 else " down")
        label = " · ".join((f"{n.upper()} {p}" if len(names) > 1 else p) for n, p in zip(names, parts, strict=True))
        return f'<small class="{kind.strip()}">{escape(label)}</small>'

    kpis = [
        ("plays", _num(h["plays"]), delta("plays")),
        ("listeners", _num(h["listeners"]), delta("listeners")),
        ("listening hours", f"{h['listening_hours']:,.1f}", delta("listening_hours")),
        ("sessions", _num(h["sessions"]), delta("sessions")),
        ("songs per session", f"{h['songs_per_session'] or 0:.2f}", delta("songs_per_session")),
        ("DAU / MAU", f"{h['dau']:.1f} / {h['mau']:,}", delta("dau", "mau")),
        ("stickiness", f"{100 * (h['stickiness'] or 0):.1f}%", delta("stickiness")),
        ("plays matched to the catalog", f"{100 * (q['matched_share'] or 0):.2f}%", delta("matched_share")),
    ]
    cards = "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span>{d}</div>' for k, v, d in kpis)
    return (
        f'<div class="kpis">{cards}</div>'
        f'<p class="note">{escape(describe_previous(pop)[0].upper() + describe_previous(pop)[1:])}. '
        "Plays matched to the catalog: the share of plays whose song is in the song files; the others are "
        "<i>inferred</i> tracks (see Data quality).</p>"
    )


def _dashboard(report: dict[str, Any]) -> str:
    """The headline cards and every section, with their charts."""
    h = report["headline"]
    t = report["tiers"]
    q = report["data_quality"]
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
            charts.daily(
                "daily",
                "Listeners and plays per day (UTC)",
                [d["day"] for d in daily],
                [("listeners", [d["listeners"] for d in daily]), ("plays", [d["plays"] for d in daily])],
            ),
            f"<p>DAU {h['dau']:.1f} (mean of the last {h['window_days']} days), MAU {h['mau']:,} "
            f"(distinct listeners in those days), stickiness {100 * (h['stickiness'] or 0):.1f}%.</p>",
        ),
        _retention_section(report),
        _top_section(report, "top_tracks", "tracks"),
        _top_section(report, "top_artists", "artists"),
        _section(
            "Free vs paid",
            charts.bars(
                "tiers",
                "Plays by tier",
                list(TIERS),
                [t["plays"].get(tier, 0) for tier in TIERS],
                figures=False,
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
            "On what",
            charts.bars(
                "browsers",
                "Plays by browser",
                [r["family"] for r in report["browsers"]],
                [r["plays"] for r in report["browsers"]],
            ),
            charts.bars(
                "platforms",
                "Plays by platform",
                [r["family"] for r in report["platforms"]],
                [r["plays"] for r in report["platforms"]],
            ),
        ),
        _section(
            "Where",
            _table(
                ["location", "plays", "listeners"],
                [[escape(r["location"]), _num(r["plays"]), _num(r["listeners"])] for r in report["locations"]],
                {1, 2},
            ),
        ),
        _section(
            "Data quality",
            f"<p>{q['matched_to_catalog']:,} of {q['plays']:,} plays match a catalog song. {MATCHING}</p>",
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
            "User agents",
            _table(
                ["user agent", "plays", "listeners"],
                [
                    [escape(r["user_agent"] or "(none)"), _num(r["plays"]), _num(r["listeners"])]
                    for r in report["user_agents"]
                ],
                {1, 2},
            ),
            wide=True,
        ),
    ]
    return f'{_kpis(report)}<div class="flow">{"".join(sections)}</div>'


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
