"""Resources: the embedded server listens on a private Unix socket only; staging leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest

from conftest import rows
from musicstream.db.connection import Database
from musicstream.errors import TooManyRejects
from musicstream.load import LoadOptions, run_load
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
