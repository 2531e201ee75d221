"""Resources: the embedded server listens on a private Unix socket only; staging leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest

from conftest import rows
from musicstream import LoadOptions, run_load
from musicstream.db.connection import Database
from musicstream.errors import TooManyRejects
from test_rejects import write_log


def test_embedded_server_is_private(embedded: Database) -> None:
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()
        sockets = conn.execute("SHOW unix_socket_directories").fetchone()
    assert listen == ("",), "no TCP listener at all"
    assert sockets is not None
    for folder in str(sockets[0]).split(","):
        mode = Path(folder.strip()).stat().st_mode
        assert stat.S_IMODE(mode) & 0o077 == 0, f"{folder} is open to other users ({oct(mode)})"


def _temp_relations(db: Database) -> int:
    return int(rows(db, "SELECT count(*) FROM pg_class WHERE relpersistence = 't'")[0][0])


def _open_temp_files() -> int:
    """Open files of this process that were deleted: anonymous temporary files such as the reject spool."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the descriptor listdir itself used
            count += "(deleted)" in os.readlink(f"/proc/self/fd/{fd}")
    return count


def test_staging_is_cleaned_up(db: Database, tmp_path: Path, udacity: Path) -> None:
    files_before = _open_temp_files()
    run_load(db, [udacity])
    assert _temp_relations(db) == 0 and _open_temp_files() == files_before
    write_log(tmp_path / "log_data" / "bad.json", ["nope", "nope either"])
    with pytest.raises(TooManyRejects):
        run_load(db, [tmp_path], LoadOptions(max_rejects=0))
    assert _temp_relations(db) == 0 and _open_temp_files() == files_before


def test_big_single_file_memory_is_bounded(db: Database, tmp_path: Path) -> None:
    """One big log file (300 MB in CI; MUSICSTREAM_SOAK=1 makes it 2 GB) loads with every process under 500 MB."""
    import json
    import subprocess
    import sys

    from musicstream.generate import generate

    sample = tmp_path / "sample"
    generate(sample, users=500, days=5, songs=500, seed=3, events=40_000)
    day_files = sorted((sample / "log_data").rglob("*.json"))
    chunk = b"".join(f.read_bytes() + b"\n" for f in day_files)
    target_bytes = (2 << 30) if os.environ.get("MUSICSTREAM_SOAK") else (300 << 20)
    big = tmp_path / "big" / "log_data" / "big.json"
    big.parent.mkdir(parents=True)
    with big.open("wb") as out:
        written = 0
        while written < target_bytes:  # the same events again and again: all but the first copy are duplicates
            out.write(chunk)
            written += len(chunk)
    done = subprocess.run(
        [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "load", "--json", str(big.parent.parent)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout)
    # VmHWM of the loader and of each worker process, measured by the loader itself (rusage would count the
    # memory of the forking test process too)
    peak_mb = run["peak_rss_mb"]
    print(f"\n{written / 2**20:.0f} MB file, {run['records_read']:,} events, peak RSS {peak_mb:.0f} MB")
    assert run["reconciles"] and run["rejected"] == 0
    assert 0 < peak_mb < 500
