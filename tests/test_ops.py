"""The operator commands (issue 13): runs / runs show, rejects, forget, sql — on the public sample plus a file
with bad lines, through the real command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import rows, schema_catalog
from musicstream.db.connection import Database
from test_errors import musicstream
from test_order_independence import snapshot


def _load(db: Database, *paths: Path, allow_empty: bool = False) -> dict:
    extra = ["--allow-empty"] if allow_empty else []
    code, out, err = musicstream("--database-url", db.conninfo, "load", "--json", *extra, *map(str, paths))
    assert code == 0, err
    return json.loads(out)


def _json(db: Database, *args: str) -> object:
    code, out, err = musicstream("--database-url", db.conninfo, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_runs_and_rejects_tell_what_each_run_did(db: Database, udacity: Path, tmp_path: Path) -> None:
    bad = tmp_path / "log_data" / "bad.json"
    bad.parent.mkdir()
    bad.write_text('{"page": "NextSong", "userId": "7"}\nnot json\n')
    first = _load(db, udacity)
    second = _load(db, tmp_path, allow_empty=True)  # its only file is bad: recorded all the same
    listed = _json(db, "runs")
    assert [(r["run_id"], r["status"], r["rejects"]) for r in listed] == [
        (second["run_id"], "succeeded", 2),
        (first["run_id"], "succeeded", 0),
    ]
    shown = _json(db, "runs", "show", str(first["run_id"]))
    assert len(shown["files"]) == first["files_read"] == rows(db, "SELECT count(*) FROM loaded_files")[0][0] - 1
    assert shown["rows_added"]["trackplays"] == 6820 and shown["reject_reasons"] == []
    shown = _json(db, "runs", "show", str(second["run_id"]))
    assert [f["path"] for f in shown["files"]] == [os.path.realpath(bad)]
    assert sorted(r["example"] for r in shown["reject_reasons"]) == [
        f"{os.path.realpath(bad)}:1",
        f"{os.path.realpath(bad)}:2",
    ]
    code, _, err = musicstream("--database-url", db.conninfo, "runs", "show", "99")
    assert code == 2 and "there is no run 99" in err

    found = _json(db, "rejects")
    assert [(r["line"], r["raw"]) for r in found] == [(1, '{"page": "NextSong", "userId": "7"}'), (2, "not json")]
    assert [r["line"] for r in _json(db, "rejects", "--reason", "MALFORMED")] == [2]
    assert _json(db, "rejects", "--run", str(first["run_id"])) == []
    code, out, _ = musicstream("--database-url", db.conninfo, "rejects")
    assert code == 0 and "not json" in out and "bad.json" in out


def test_runs_show_lists_the_files_of_every_run(db: Database, udacity: Path) -> None:
    """Each run's files, also once a later run (--full) has read them again and the manifest names that run."""
    first = _load(db, udacity)
    code, out, err = musicstream("--database-url", db.conninfo, "load", "--full", "--json", str(udacity))
    assert code == 0, err
    full = json.loads(out)
    nothing_new = _load(db, udacity)
    assert first["files_read"] == full["files_read"] == 101 and nothing_new["files_read"] == 0
    everything = sorted(os.path.realpath(p) for p in udacity.rglob("*.json"))
    for run in (first, full):
        files = _json(db, "runs", "show", str(run["run_id"]))["files"]  # type: ignore[index]
        assert [f["path"] for f in files] == everything
        assert sum(f["records"] for f in files) == run["records_read"]
    assert _json(db, "runs", "show", str(nothing_new["run_id"]))["files"] == []  # type: ignore[index]
    code, out, _ = musicstream("--database-url", db.conninfo, "runs", "show", str(first["run_id"]))
    assert code == 0 and "2018-11-30-events.json" in out


def test_forget_makes_the_next_load_read_files_again(db: Database, udacity: Path) -> None:
    first = _load(db, udacity)
    day = next(iter(sorted((udacity / "log_data").rglob("*.json"))))
    assert _json(db, "forget", str(day)) == [os.path.realpath(day)]
    again = _load(db, udacity)
    assert again["files_read"] == 1 and again["records_loaded"] == 0 and again["duplicates"] > 0
    dropped = _json(db, "forget", str(udacity / "song_data"))
    assert len(dropped) == first["files_read"] - len(list((udacity / "log_data").rglob("*.json")))
    code, _, err = musicstream("--database-url", db.conninfo, "forget", "/nowhere/x.json")
    assert code == 2 and "none of these paths is in the manifest" in err
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]


def test_sql_is_read_only_unless_asked(db: Database, udacity: Path) -> None:
    _load(db, udacity)
    assert _json(db, "sql", "SELECT count(*) AS plays FROM sparkify.songplays") == [{"plays": 6820}]
    code, out, _ = musicstream(
        "--database-url", db.conninfo, "sql", "--csv", "SELECT tier, count(*) AS n FROM users GROUP BY 1 ORDER BY 1"
    )
    assert code == 0 and out.splitlines()[0] == "tier,n" and len(out.splitlines()) == 3
    code, _, err = musicstream("--database-url", db.conninfo, "sql", "DELETE FROM rejects")
    assert code == 2 and "add --write" in err
    code, _, err = musicstream("--database-url", db.conninfo, "sql", "SELEC 1")
    assert code == 1 and "syntax error" in err  # a query that fails is a failure, not a usage error
    code, out, _ = musicstream("--database-url", db.conninfo, "sql", "--write", "DELETE FROM rejects")
    assert code == 0 and "rows affected" in out


def _written(db: Database) -> dict[str, object]:
    """Everything a load can write: the star schema, the books, and the catalog of keys and indexes."""
    books = {
        table: rows(db, f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 - fixed names
        for table in (
            "etl_runs",
            "loaded_files",
            "run_files",
            "rejects",
            "deferred_indexes",
            "rollup_sessions",
            "play_names",
        )
    }
    ids = rows(db, "SELECT sequencename::text, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
    return {"star": snapshot(db), "books": books, "catalog": schema_catalog(db), "ids": ids}


def test_dry_run_tells_what_a_load_would_do_and_writes_nothing(db: Database, udacity: Path, tmp_path: Path) -> None:
    days = udacity / "log_data" / "2018" / "11"
    first = tmp_path / "first" / "log_data"
    first.mkdir(parents=True)
    for day in ("2018-11-01", "2018-11-02"):
        (first / f"{day}-events.json").write_bytes((days / f"{day}-events.json").read_bytes())
    bad = tmp_path / "bad" / "log_data" / "bad.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"page": "NextSong", "userId": "7"}\nnot json\n')

    empty = _written(db)  # a dry run into empty tables drops no index or key either
    code, out, err = musicstream("--database-url", db.conninfo, "load", "--dry-run", "--json", str(first.parent))
    assert code == 0, err
    assert json.loads(out)["status"] == "dry-run" and json.loads(out)["rows_added"]["trackplays"] > 0
    assert _written(db) == empty

    _load(db, first.parent)  # the same files again below: duplicates
    before = _written(db)
    code, out, err = musicstream(
        "--database-url", db.conninfo, "load", "--dry-run", "--json", str(udacity), str(bad.parent.parent)
    )
    assert code == 0, err
    dry = json.loads(out)
    assert _written(db) == before, "a dry run wrote something"
    real = _load(db, udacity, bad.parent.parent)
    assert real["status"] == "succeeded" and dry["status"] == "dry-run" and dry["run_id"] == 0
    for figure in (
        "files_read",
        "files_skipped",
        "records_read",
        "records_loaded",
        "records_skipped",
        "duplicates",
        "rejected",
        "rows_added",
        "top_rejects",
    ):
        assert dry[figure] == real[figure], figure
    assert dry["rejected"] == 2 and dry["rows_added"]["trackplays"] > 0

    code, out, err = musicstream("--database-url", db.conninfo, "load", "--dry-run", "--full", str(bad.parent.parent))
    assert code == 1 and "every record read was rejected" in err  # fails as the load would, and writes nothing
    code, out, err = musicstream("--database-url", db.conninfo, "load", "--dry-run", str(udacity))
    assert code == 0 and "nothing was written" in out and "Nothing new" in out
