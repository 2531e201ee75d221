"""Memory does not grow with the number of input files beyond their listing: a million small song files must load
in well under 500 MB. Measured here as the growth of the loader's peak memory from 2,000 to 40,000 files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import rows
from musicstream.db.connection import Database
from musicstream.generate.many import write_song_files

SMALL, LARGE = 2_000, 40_000
BYTES_PER_FILE = 600  # the listing itself keeps about 220 bytes a file; before this test the run kept 800 to 1,250


def load_peak_mb(db: Database, root: Path) -> tuple[float, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "load", "--json", str(root)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout)
    return float(run["peak_rss_mb"]), run


def no_op_peak_mb(db: Database, root: Path, files: int, runs: int = 3) -> float:
    """The peak of a re-run that finds every file unchanged: the least of a few (one run's peak varied by about
    7 MB on the same input, 460 to 650 bytes a file here; noise only adds, so the least is the run's own need)."""
    peaks = []
    for _ in range(runs):
        peak, rerun = load_peak_mb(db, root)
        assert rerun["files_skipped"] == files and rerun["files_read"] == 0, rerun
        peaks.append(peak)
    return min(peaks)


def reset(db: Database) -> None:
    with db.connect(autocommit=True) as conn:
        conn.execute("TRUNCATE trackplays, play_names, tracks, artists, users, loaded_files, rejects CASCADE")


def test_memory_per_file_stays_small(db: Database, tmp_path: Path) -> None:
    small = write_song_files(tmp_path / "small", SMALL)
    large = write_song_files(tmp_path / "large", LARGE)
    first_small, _ = load_peak_mb(db, small)
    again_small = no_op_peak_mb(db, small, SMALL)
    reset(db)
    first_large, run = load_peak_mb(db, large)
    assert run["files_read"] == LARGE and run["records_loaded"] == LARGE and run["reconciles"]
    assert rows(db, "SELECT count(*) FROM loaded_files") == [(LARGE,)]
    again_large = no_op_peak_mb(db, large, LARGE)
    per_file = {
        "first load": (first_large - first_small) * 2**20 / (LARGE - SMALL),
        "no-op re-run": (again_large - again_small) * 2**20 / (LARGE - SMALL),
    }
    print(f"\npeak memory per file: {', '.join(f'{k} {v:.0f} bytes' for k, v in per_file.items())}")
    assert all(v < BYTES_PER_FILE for v in per_file.values()), per_file
