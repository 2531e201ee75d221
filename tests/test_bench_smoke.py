"""The benchmark runs end to end on 100K events (CI smoke run: it checks the harness works, not the speed), once
each step; and of several runs of a step it keeps the median."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as when run as a script: its folder first
    return importlib.import_module("bench")


def test_of_several_runs_the_median_is_kept_and_all_are_shown(bench: Any) -> None:
    runs = [(3.5, "third"), (1.25, "first"), (2.0, "second")]
    assert bench._median_run(runs) == (2.0, "second")
    assert bench._spread(runs) == "; median of 3: 1.2 / 2.0 / 3.5 s"
    assert bench._median_run(runs[:1]) == (3.5, "third") and bench._spread(runs[:1]) == ""
    assert bench.DEFAULT_REPEATS == 3


@pytest.mark.db  # the benchmark starts embedded servers of its own
def test_benchmark_smoke(tmp_path: Path) -> None:
    """One run of each timed step (--repeats 1): the steps, the table and the results file are what a full run
    makes; choosing the median of several runs is the test above."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench.py"),
            "--sizes",
            "100k",
            "--smoke",
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ],
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
    # the full load and the classic slice: one run each (--repeats 1), kept
    assert result["repeats"] == 1
    for scenario, runs in (("musicstream full load", "full_load_seconds"), ("classic row-by-row", "classic_seconds")):
        (row,) = (row for name, row in scenarios.items() if name.startswith(scenario))
        assert len(result[runs]) == 1 and round(row["seconds"], 3) == result[runs][0]
    assert "median of 1" in scenarios["bare COPY of the fact rows (floor)"]["note"]
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
    # the report's budget at each size: its database work against one scan of the plays, both measured
    assert {"report, database work", "one aggregate scan of the plays"} <= set(queries)
    assert "report's database work ÷ one aggregate scan of the plays, 100k (budget ≤ 1)" in report["report_targets"]
    assert "one aggregate scan of the plays, 100k (budget ≤ 1)" in done.stdout
