"""The classic second step: load ./data (song_data/ and log_data/) into the star schema.

Usage: ``python etl.py [PATH ...]`` (default ``data``). Same code as ``musicstream load data``: bulk, atomic,
re-runnable (files loaded before are skipped), bad records kept in the rejects table.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import musicstream  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from musicstream.config import Settings
from musicstream.db.connection import Database
from musicstream.errors import MusicstreamError
from musicstream.load import run_load


def main(argv: list[str]) -> int:
    paths = argv or ["data"]
    db = Database(Settings.resolve())
    try:
        result = run_load(db, paths)
    except MusicstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"run {result.run_id}: {result.files_read} files read, {result.files_skipped} unchanged; "
        f"{result.records_read} records: {result.records_loaded} loaded, {result.records_skipped} skipped, "
        f"{result.duplicates} duplicates, {result.rejected} rejected; rows added {result.rows_added}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
