"""The HTML report in a real headless Chromium: offline, every chart drawn, no console errors, names escaped,
readable at desktop and phone widths. Screenshots are saved under test-artifacts/."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from playwright.sync_api import sync_playwright

from conftest import ROOT, UDACITY
from musicstream import run_load
from musicstream.cli import cli
from musicstream.db.connection import Database

ARTIFACTS = ROOT / "test-artifacts"
HOSTILE_ARTIFACT = "<script>alert('pwned')</script> & $x^2$"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def hostile_log(folder: Path) -> None:
    """Plays (enough to top every list) whose artist, song, location and user agent are markup."""
    event = {
        "artist": HOSTILE_ARTIFACT,
        "auth": "Logged In",
        "firstName": "Eve",
        "gender": "F",
        "itemInSession": 0,
        "lastName": "<b>bold</b>",
        "length": 200.5,
        "level": "paid",
        "location": "<img src=x onerror=alert(1)>",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1.5e12,
        "sessionId": 1,
        "song": "</table><h1>x</h1>",
        "status": 200,
        "ts": 1543536000000,  # 2018-11-30, the sample's last day
        "userAgent": '"<svg onload=alert(2)>"',
        "userId": "9001",
    }
    (folder / "log_data").mkdir(parents=True)
    lines = [json.dumps({**event, "itemInSession": i, "ts": event["ts"] + 200_500 * i}) for i in range(60)]
    (folder / "log_data" / "hostile.json").write_text("\n".join(lines))


@pytest.fixture(scope="module")
def report_file(embedded: Database, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import _fresh_database
    from musicstream.config import Settings

    url = _fresh_database(embedded, "ms_report_html")
    db = Database(Settings(database_url=url, home=embedded.settings.home))
    extra = tmp_path_factory.mktemp("hostile")
    hostile_log(extra)
    run_load(db, [UDACITY, extra])
    out = tmp_path_factory.mktemp("html") / "report.html"
    # the second half of November: each headline figure against the first half
    period = ["--since", "2018-11-16", "--until", "2018-11-30"]
    result = CliRunner().invoke(cli, ["--database-url", url, "report", *period, "--html", str(out), "--top", "15"])
    assert result.exit_code == 0, result.output
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ms_report_html WITH (FORCE)")
    return out


def test_self_contained(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|iframe|img)\b", html, re.IGNORECASE), "no scripts, links or images"
    only_local = not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", html, re.IGNORECASE)
    assert only_local, "only in-page or data: references"
    assert "@import" not in html and "url(" not in html.replace("url(#", "")
    assert html.count("<svg") >= 7


def _open(page: Any, path: Path, width: int, height: int) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))

    def route(r: Any) -> None:
        if not r.request.url.startswith("file://"):
            requests.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return problems, requests


# Layout facts read in the browser: the headline cards' positions; each section's blank space under its content;
# for each column of sections (between sections that span the page), its content and the blank beside it; every
# box outside the charts, and every chart, that reaches past the viewport; every pair of tick labels on one chart
# axis whose boxes overlap; every tick outside its axes' data (the extent of the artists charts.py marks as data);
# twin axes (two value axes on one frame); the smallest text in the charts and on the page, in CSS px; and every
# text shown, charts' included.
LAYOUT_JS = """() => {
  const W = window.innerWidth;
  const res = {cards: [], blank: [], columns: [], wide: [], overlaps: [], ticks: [], twins: [], chartText: [],
               pageText: [], text: document.body.innerText};
  for (const c of document.querySelectorAll('.kpi')) res.cards.push(Math.round(c.getBoundingClientRect().top));
  for (const s of document.querySelectorAll('main section')) {
    const box = s.getBoundingClientRect();
    let bottom = box.top;
    for (const child of s.children) bottom = Math.max(bottom, child.getBoundingClientRect().bottom);
    res.blank.push([s.querySelector('h2').textContent, Math.round(box.bottom - bottom)]);
  }
  const bands = [[]];
  for (const s of document.querySelectorAll('.flow > section'))
    if (s.classList.contains('wide')) bands.push([]); else bands[bands.length - 1].push(s);
  for (const band of bands.filter(b => b.length)) {
    const cols = {};
    for (const s of band) {
      const r = s.getBoundingClientRect();
      (cols[Math.round(r.left)] ??= []).push([s.querySelector('h2').textContent, r]);
    }
    const bottom = Math.max(...band.map(s => s.getBoundingClientRect().bottom));
    for (const col of Object.values(cols)) {
      const content = col.reduce((sum, [, r]) => sum + r.height, 0);
      const blank = bottom - Math.max(...col.map(([, r]) => r.bottom));
      res.columns.push([col.map(([t]) => t).join(' + '), Math.round(content), Math.round(blank)]);
    }
  }
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') !== null && el.tagName !== 'svg') continue;
    const b = el.getBoundingClientRect();
    if (b.width > 0 && (b.right > W + 0.5 || b.left < -0.5))
      res.wide.push([el.tagName, el.getAttribute('aria-label') || el.textContent.slice(0, 40), Math.round(b.right)]);
    if (el.closest('svg') === null && [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
      res.pageText.push([parseFloat(getComputedStyle(el).fontSize), el.textContent.trim().slice(0, 30)]);
  }
  for (const svg of document.querySelectorAll('svg.chart')) {
    const chart = svg.getAttribute('aria-label');
    for (const axis of ['xtick', 'ytick']) {
      const labels = [...svg.querySelectorAll(`g[id^=${axis}] text`)]
        .map(t => [t.textContent, t.getBoundingClientRect()]).filter(([, b]) => b.width > 0);
      for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
        const a = labels[i][1], b = labels[j][1];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
          res.overlaps.push([chart, labels[i][0], labels[j][0]]);
      }
    }
    const frames = [];
    for (const ax of svg.querySelectorAll('g[id^="axes_"]')) {
      const frame = ax.querySelector(':scope > g[id^="patch_"]');
      const valueAxes = ax.querySelectorAll('g[id^="ytick_"]').length > 0;
      if (frame && valueAxes) {
        const f = frame.getBoundingClientRect();
        frames.push([f.left, f.top, f.right, f.bottom].map(Math.round).join(','));
      }
      const data = [...ax.querySelectorAll('[id*="-data-"]')].map(e => e.getBoundingClientRect())
        .filter(b => b.width > 0 || b.height > 0);
      if (!data.length) {
        if (ax.querySelector('g[id^="xtick_"], g[id^="ytick_"]')) res.ticks.push([chart, '?', 'any', 0, 0, 0]);
        continue;
      }
      const box = {left: Math.min(...data.map(b => b.left)), right: Math.max(...data.map(b => b.right)),
                   top: Math.min(...data.map(b => b.top)), bottom: Math.max(...data.map(b => b.bottom))};
      for (const [axis, lo, hi, at] of [['x', 'left', 'right', b => b.left + b.width / 2],
                                        ['y', 'top', 'bottom', b => b.top + b.height / 2]]) {
        for (const tick of ax.querySelectorAll(`g[id^="${axis}tick_"]`)) {
          const mark = tick.querySelector('use') || tick.querySelector('text');
          const pos = at(mark.getBoundingClientRect());
          if (pos < box[lo] - 1.5 || pos > box[hi] + 1.5)
            res.ticks.push([chart, axis, tick.textContent.trim(), Math.round(pos), Math.round(box[lo]),
                            Math.round(box[hi])]);
        }
      }
    }
    if (new Set(frames).size < frames.length) res.twins.push(chart);
    for (const t of svg.querySelectorAll('text')) {
      const m = t.getScreenCTM();
      const size = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
      res.chartText.push([Math.round(size * 10) / 10, chart, t.textContent]);
      res.text += '\\n' + t.textContent;
    }
  }
  return res;
}"""

# Readable on a phone: chart text at least this many CSS px, page text at least that.
MIN_CHART_PX = 9.5
MIN_PAGE_PX = 11.5


def layout_problems(layout: dict[str, Any]) -> list[str]:
    problems = []
    rows: dict[int, int] = {}
    for top in layout["cards"]:
        rows[top] = rows.get(top, 0) + 1
    per_row = list(rows.values())
    if len(set(per_row)) > 1:
        problems.append(f"headline cards per row {per_row}: a row is not full")
    problems += [f"{title}: {blank}px blank under its content" for title, blank in layout["blank"] if blank > 60]
    problems += [
        f"column {names}: {blank}px blank beside {content}px of content"
        for names, content, blank in layout["columns"]
        if blank > content
    ]
    problems += [f"{tag} {what!r} reaches {right}px, past the viewport" for tag, what, right in layout["wide"]]
    problems += [f"chart {chart}: tick labels {a!r} and {b!r} overlap" for chart, a, b in layout["overlaps"]]
    problems += [
        f"chart {chart}: ticks on axes with no data marked (charts.py _data)"
        if axis == "?"
        else f"chart {chart}: {axis} tick {label!r} at {pos}px, outside the data's {lo}-{hi}px"
        for chart, axis, label, pos, lo, hi in layout["ticks"]
    ]
    problems += [f"chart {chart}: two value axes on one frame" for chart in layout["twins"]]
    problems += [
        f"chart {chart}: text {text!r} is {size}px" for size, chart, text in layout["chartText"] if size < MIN_CHART_PX
    ]
    problems += [f"text {text!r} is {size}px" for size, text in layout["pageText"] if size < MIN_PAGE_PX]
    return problems


# Damaged text: the replacement character, C0/C1 control characters, and UTF-8 read as Latin-1 or cp1252 ("Ã¶",
# "Ã©", "Â ", "â€™"): what a missing-glyph box or a mojibake name shows.
DAMAGED = re.compile(r"\ufffd|[\x00-\x08\x0b-\x1f\x7f-\x9f]|Ã[\x80-\xbf\u0100-\u2122]|Â[\x80-\xbf ]|â€")


def damaged_text(text: str) -> list[str]:
    return sorted({text[max(0, m.start() - 12) : m.end() + 12] for m in DAMAGED.finditer(text)})


def test_layout_checker_sees_the_old_problems() -> None:
    """What the 1366 px page of 0.1.0 showed: seven cards and a lone one, 1,140 px of blank in "Free vs paid",
    rotated date labels whose boxes overlap; then what 0.2 showed: 700 px of blank beside the user agents, a
    "2018-Dec" tick past the data, twin value axes, 7 px chart text on a phone, a 1,100 px table on a 390 px one."""
    clean: dict[str, Any] = {
        "cards": [125] * 4 + [241] * 4,
        "blank": [["Top tracks", 13]],
        "columns": [["When people listen + Top tracks", 900, 40], ["Daily active listeners + Retention", 880, 0]],
        "wide": [],
        "overlaps": [],
        "ticks": [],
        "twins": [],
        "chartText": [[10.2, "daily", "Nov"]],
        "pageText": [[13.6, "plays"]],
    }
    assert layout_problems(clean) == []
    old = {
        **clean,
        "cards": [125] * 7 + [241],
        "blank": [["Free vs paid", 1140], ["Top tracks", 13]],
        "columns": [["Where and on what (charts)", 520, 700], ["Where and on what (tables)", 1220, 0]],
        "wide": [["TABLE", "user agent", 1100]],
        "overlaps": [["daily", "2018-11-29", "2018-12-01"]],
        "ticks": [["daily", "x", "Dec", 612, 80, 590]],
        "twins": ["daily"],
        "chartText": [[7.1, "hours", "00"], [10.2, "daily", "Nov"]],
    }
    assert len(layout_problems(old)) == 8
    for damaged in ("BjÃ\x83Â¶rk", "Beyonc\ufffd", "Donâ€™t", "CafÃ©", "a\x07b", "Â\xa0"):
        assert damaged_text(f"Undo — {damaged}!") != [], damaged
    assert damaged_text("Björk, Sigur Rós, “quoted”, Ñandú, Motörhead, Ångström, Ça, 東京") == []


WIDTHS = [("desktop", 1280), ("phone", 390)]
SCREENSHOTS = ROOT / "docs" / "images"


def _keep_screenshot(page: Any, label: str, width: int) -> None:
    """The docs' picture: the whole page on a desktop, the first two screens on a phone; in 128 colours."""
    from PIL import Image

    SCREENSHOTS.mkdir(exist_ok=True)
    target = SCREENSHOTS / f"report-{label}.png"
    clip = None if width > 1000 else {"x": 0, "y": 0, "width": width, "height": 1800}
    page.screenshot(path=str(target), full_page=True, clip=clip)
    with Image.open(target) as image:
        small = image.convert("RGB").quantize(colors=128)
    small.save(target, optimize=True)


def _render(report_file: Path, chromium: str, label: str, width: int) -> dict[str, Any]:
    """The page in Chromium at one width: what the checks need, and its screenshot (test-artifacts/; with
    MUSICSTREAM_SCREENSHOTS=1 also docs/images/, the docs' pictures)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems, requests = _open(page, report_file, width, 900)
            charts = page.eval_on_selector_all(
                "svg.chart",
                "els => els.map(e => { const b = e.getBoundingClientRect(); "
                "return [b.width, b.height, e.querySelectorAll('path, rect, use, text').length]; })",
            )
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            scripts = page.eval_on_selector_all("script", "els => els.length")
            layout = page.evaluate(LAYOUT_JS)
            page.screenshot(path=str(ARTIFACTS / f"report-{label}.png"), full_page=True)
            if os.environ.get("MUSICSTREAM_SCREENSHOTS") == "1":
                _keep_screenshot(page, label, width)
        finally:
            browser.close()
    return {
        "problems": problems,
        "requests": requests,
        "charts": charts,
        "overflow": overflow,
        "scripts": scripts,
        "layout": layout,
    }


@pytest.mark.parametrize(("label", "width"), WIDTHS)
def test_renders_in_chromium(report_file: Path, chromium: str, label: str, width: int) -> None:
    got = _render(report_file, chromium, label, width)
    assert got["problems"] == [] and got["requests"] == []
    assert len(got["charts"]) >= 8
    for chart_width, chart_height, shapes in got["charts"]:
        assert chart_width > 100 and chart_height > 50 and shapes > 5
    assert got["overflow"] <= 0, f"page is {got['overflow']}px wider than a {width}px screen"
    layout = got["layout"]
    assert HOSTILE_ARTIFACT in layout["text"], "names from the data show as text"
    assert "</table><h1>x</h1>" in layout["text"]
    assert got["scripts"] == 0
    assert len(layout["cards"]) == 8
    assert len(layout["columns"]) == (2 if width > 1000 else 1)  # two columns side by side on a desktop
    assert layout_problems(layout) == []
    assert "Retention" in layout["text"] and "Changes vs 2018-11-01 … 2018-11-15" in layout["text"]


@pytest.mark.parametrize(("label", "width"), WIDTHS)
def test_no_damaged_glyphs(report_file: Path, chromium: str, label: str, width: int) -> None:
    """Every text the page shows, in tables and charts, is free of replacement characters, control characters
    (drawn as missing-glyph boxes) and mojibake."""
    assert damaged_text(_render(report_file, chromium, label, width)["layout"]["text"]) == []
