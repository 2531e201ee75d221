"""Parallel parsing and sliced big files give exactly what the serial path gives: rows, rejects, lines, manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import rows
from musicstream import LoadOptions, run_load
from musicstream.db.connection import Database
from musicstream.engines import local as stage_module
from test_order_independence import snapshot
from test_rejects import event


def big_log(folder: Path) -> Path:
    """A log file of a few hundred KB with bad lines at known places, one very long line, no final newline."""
    lines = []
    for i in range(3000):
        if i % 997 == 5:
            lines.append('{"broken": ')
        elif i == 1500:
            lines.append(json.dumps(event(itemInSession=i, location="x" * 50_000)))
        else:
            lines.append(json.dumps(event(itemInSession=i, sessionId=i // 40, ts=1541106106796 + i * 1000)))
    path = folder / "log_data" / "big.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(("\ufeff" + "\r\n".join(lines)).encode())
    return path


def _state(db: Database) -> dict[str, Any]:
    return {
        **snapshot(db),
        "rejects": rows(db, "SELECT file, line, reason, raw FROM rejects ORDER BY file, line"),
        "files": rows(db, "SELECT path, kind, size_bytes, sha256, records, rejects FROM loaded_files ORDER BY 1"),
    }


def test_slices_and_workers_match_serial(
    db: Database, tmp_path: Path, udacity: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = big_log(tmp_path)
    serial = run_load(db, [tmp_path, udacity], LoadOptions(workers=1))
    expected = _state(db)
    bad_lines = [line for _, line, _, _ in expected["rejects"]]
    assert bad_lines == [i + 1 for i in range(3000) if i % 997 == 5]
    assert serial.reconciles

    monkeypatch.setattr(stage_module, "SLICE_BYTES", 16 * 1024)  # the big file is read in ~40 slices
    for workers in (1, 2):
        with db.connect() as conn:
            conn.execute(
                "TRUNCATE trackplays, play_names, users, tracks, artists, timetb, rejects, name_repairs_by_file, "
                "loaded_files, run_files, "
                "etl_runs, "
                "rollup_sessions, rollup_hours, rollup_day_tops, rollup_day_floors, rollup_day_sets, "
                "rollup_session_days, rollup_user_days"
            )
        result = run_load(db, [tmp_path, udacity], LoadOptions(workers=workers))
        assert _state(db) == expected, f"workers={workers}"
        assert (result.records_read, result.rejected, result.duplicates) == (
            serial.records_read,
            serial.rejected,
            serial.duplicates,
        )
    assert path.stat().st_size > 40 * 16 * 1024
