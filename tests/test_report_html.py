"""The HTML report in a real headless Chromium: offline, every chart drawn, no console errors, names escaped,
readable at desktop and phone widths. Screenshots are saved under test-artifacts/."""

from __future__ import annotations

import json
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
        "ts": 1543622400000,
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
    result = CliRunner().invoke(cli, ["--database-url", url, "report", "--html", str(out), "--top", "15"])
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


# Layout facts read in the browser: the headline cards' positions, each section's blank space under its
# content, and every pair of tick labels on one chart axis whose boxes overlap.
LAYOUT_JS = """() => {
  const res = {cards: [], blank: [], overlaps: []};
  for (const c of document.querySelectorAll('.kpi')) res.cards.push(Math.round(c.getBoundingClientRect().top));
  for (const s of document.querySelectorAll('main section')) {
    const box = s.getBoundingClientRect();
    let bottom = box.top;
    for (const child of s.children) bottom = Math.max(bottom, child.getBoundingClientRect().bottom);
    res.blank.push([s.querySelector('h2').textContent, Math.round(box.bottom - bottom)]);
  }
  for (const svg of document.querySelectorAll('svg.chart')) {
    for (const axis of ['xtick', 'ytick']) {
      const labels = [...svg.querySelectorAll(`g[id^=${axis}] text`)]
        .map(t => [t.textContent, t.getBoundingClientRect()]).filter(([, b]) => b.width > 0);
      for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
        const a = labels[i][1], b = labels[j][1];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
          res.overlaps.push([svg.getAttribute('aria-label'), labels[i][0], labels[j][0]]);
      }
    }
  }
  return res;
}"""


def layout_problems(layout: dict[str, Any]) -> list[str]:
    problems = []
    rows: dict[int, int] = {}
    for top in layout["cards"]:
        rows[top] = rows.get(top, 0) + 1
    per_row = list(rows.values())
    if len(set(per_row)) > 1:
        problems.append(f"headline cards per row {per_row}: a row is not full")
    problems += [f"{title}: {blank}px blank under its content" for title, blank in layout["blank"] if blank > 60]
    problems += [f"chart {chart}: tick labels {a!r} and {b!r} overlap" for chart, a, b in layout["overlaps"]]
    return problems


def test_layout_checker_sees_the_old_problems() -> None:
    """What the 1366 px page of 0.1.0 showed: seven cards and a lone one, 1,140 px of blank in "Free vs paid",
    rotated date labels whose boxes overlap."""
    old = {
        "cards": [125] * 7 + [241],
        "blank": [["Free vs paid", 1140], ["Top tracks", 13]],
        "overlaps": [["daily", "2018-11-29", "2018-12-01"]],
    }
    assert len(layout_problems(old)) == 3
    assert layout_problems({"cards": [125] * 4 + [241] * 4, "blank": [["Top tracks", 13]], "overlaps": []}) == []


@pytest.mark.parametrize(("label", "width"), [("desktop", 1366), ("phone", 390)])
def test_renders_in_chromium(report_file: Path, chromium: str, label: str, width: int) -> None:
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
            text = page.inner_text("body")
            scripts = page.eval_on_selector_all("script", "els => els.length")
            layout = page.evaluate(LAYOUT_JS)
            page.screenshot(path=str(ARTIFACTS / f"report-{label}.png"), full_page=True)
        finally:
            browser.close()
    assert problems == [] and requests == []
    assert len(charts) >= 7
    for chart_width, chart_height, shapes in charts:
        assert chart_width > 100 and chart_height > 50 and shapes > 5
    assert overflow <= 1, f"page is {overflow}px wider than a {width}px screen"
    assert HOSTILE_ARTIFACT in text, "names from the data show as text"
    assert "</table><h1>x</h1>" in text
    assert scripts == 0
    assert len(layout["cards"]) == 8
    assert layout_problems(layout) == []
