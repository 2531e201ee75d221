"""The benchmark runs end to end on 100K events (CI smoke run: it checks the harness works, not the speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.db  # the benchmark starts embedded servers of its own


def test_benchmark_smoke(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--sizes", "100k", "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "full load ÷ star floor, indexes built after" in done.stdout
    (result_file,) = tmp_path.glob("*.json")
    report = json.loads(result_file.read_text())
    (result,) = report["results"]
    scenarios = {row["scenario"]: row for row in result["rows"]}
    assert set(scenarios) == {
        "musicstream full load",
        "bare COPY of the fact rows (floor)",
        "star floor: binary COPY, indexes built after",
        "star floor: binary COPY, indexes in place",
        "incremental: 1 new day onto 30",
        "the same day into an empty database",
        "no-op re-run (nothing new)",
        "classic row-by-row (1-day slice, ≤ 40K events)",
        "reader alone: every file parsed, no database",
    }
    assert result["events"] > 90_000
    assert all(row["seconds"] > 0 for row in result["rows"])
    assert scenarios["musicstream full load"]["peak_rss_mb"] > 0
    # the full load and the classic slice are the median of three runs each, the three kept
    for scenario, runs in (("musicstream full load", "full_load_seconds"), ("classic row-by-row", "classic_seconds")):
        (row,) = (row for name, row in scenarios.items() if name.startswith(scenario))
        assert len(result[runs]) == 3 and round(row["seconds"], 3) == sorted(result[runs])[1]
        assert "median of 3" in row["note"]
    assert result["rows_added"]["trackplays"] > 0
    # the bound no load can beat here: the reader's CPU and the star floor, spread over every core
    ratios = result["ratios"]
    cores = report["machine"]["cores"]
    bound = ratios[f"parse-and-store bound, s: (reader CPU + star floor) ÷ {cores} cores"]
    reader = scenarios["reader alone: every file parsed, no database"]["seconds"]
    star_after = scenarios["star floor: binary COPY, indexes built after"]["seconds"]
    assert bound == (reader + star_after) / cores
    assert "the must's time, s: every event at 150 × classic events/s" in ratios
    star = result["star_floor"]  # every row the load wrote, counted again from the copies' sources
    assert star["tables"]["trackplays"] == result["rows_added"]["trackplays"]
    assert star["tables"]["timetb"] == result["rows_added"]["timetb"]
    assert star["rows"] == sum(star["tables"].values()) and star["indexes built after"] > 0
    assert report["machine"]["cores"] >= 1
    queries = result["queries"]  # the report and every curated query, cold and warm
    assert {"report (cold)", "report (warm)", "report, one week, paid (warm)", "query session_lengths (warm)"} <= set(
        queries
    )
    assert all(seconds > 0 for seconds in queries.values())
    assert report["report_targets"]["size"] == "100k"
    assert "slowest report, s (target < 2)" in done.stdout
