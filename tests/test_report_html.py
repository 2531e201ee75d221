"""The HTML report in a real headless Chromium: offline, every chart drawn, no console errors, names escaped,
readable at desktop and phone widths. Screenshots are saved under test-artifacts/."""

from __future__ import annotations

import json
import re
import shutil
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
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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


@pytest.mark.parametrize(("label", "width"), [("desktop", 1366), ("phone", 390)])
def test_renders_in_chromium(report_file: Path, label: str, width: int) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
