"""The Spark engine (real Spark in local mode, real PostgreSQL): the same files give the same tables, the same
rejects and the same run counts as the local engine; the Parquet lake equals a fresh PostgreSQL load."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import _fresh_database, rows
from musicstream import LoadOptions, LoadResult, run_load
from musicstream.config import Settings
from musicstream.db.connection import Database
from test_order_independence import snapshot

SPARK = LoadOptions(engine="spark")
COUNTS = ("files_read", "files_skipped", "records_read", "records_loaded", "records_skipped", "duplicates", "rejected")
_names = itertools.count()


@pytest.fixture
def local_db(embedded: Database) -> Iterator[Database]:
    """A second fresh database, for the local engine's side of a comparison."""
    name = f"ms_spark_local_{next(_names)}"
    yield Database(Settings(database_url=_fresh_database(embedded, name), home=embedded.settings.home))
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


EDGE_SONGS = [
    # rule 6 at its edges, for the plays of "Revelry" (201.79546 s, kept as 201,795 ms): 200.795 and 202.795 s are
    # both exactly 1.000 s away, so both match (≤ 1.0 s) and, equally close, the smaller id wins the tie;
    # 202.7950001 s is just over 1.0 s away: no match.
    ("SOZZEDGE000000002", "REVELRY", "ARZZEDGE000000001", " kings  of LEON", 202.795, "Nashville"),
    ("SOZZEDGE000000001", "revelry", "ARZZEDGE000000001", "Kings Of Leon", 200.795, ""),
    ("SOZZEDGE000000003", "Revelry", "ARZZEDGE000000009", "Kings of Leon", 202.7950001, "Mt. Juliet"),
    # rule 5: the same song id twice with different details; the record that sorts first wins
    ("SOZZEDGE000000004", "b-side", "ARZZEDGE000000002", "Nobody", 100.0, "Here"),
    ("SOZZEDGE000000004", "B-side", "ARZZEDGE000000002", "Nobody", 100.0, "There"),
]


def _song(song_id: str, title: str, artist_id: str, artist: str, duration: float, location: str) -> str:
    return json.dumps(
        {
            "num_songs": 1,
            "artist_id": artist_id,
            "artist_latitude": None,
            "artist_longitude": None,
            "artist_location": location,
            "artist_name": artist,
            "song_id": song_id,
            "title": title,
            "duration": duration,
            "year": 2008,
        }
    )


@pytest.fixture(scope="module")
def late_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four udacity days and the catalog, a log file sent twice under two names (rule 2), the late songs of
    test_order_independence (rule 8) and songs at the edges of rules 5 and 6."""
    from conftest import UDACITY
    from test_order_independence import DAYS, LATE_SONGS

    root = tmp_path_factory.mktemp("late")
    shutil.copytree(UDACITY / "song_data", root / "song_data")
    logs = root / "log_data"
    logs.mkdir()
    for day in DAYS:
        shutil.copy(UDACITY / "log_data" / "2018" / "11" / f"{day}-events.json", logs / f"{day}-events.json")
    shutil.copy(UDACITY / "log_data" / "2018" / "11" / "2018-11-14-events.json", logs / "2018-11-14-events.json")
    shutil.copy(logs / "2018-11-14-events.json", logs / "resent-copy.json")
    late = root / "song_data" / "Z"
    late.mkdir()
    for song in LATE_SONGS:
        (late / f"{song['song_id']}.json").write_text(json.dumps(song))
    for i, edge in enumerate(EDGE_SONGS):
        (late / f"edge-{i}.json").write_text(_song(*edge))
    return root


def bookkeeping(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "rejects": rows(db, "SELECT file, line, reason, raw FROM rejects ORDER BY file, line, reason"),
        "loaded_files": rows(
            db, "SELECT path, kind, size_bytes, sha256, records, rejects FROM loaded_files ORDER BY path"
        ),
        "staging_schemas": rows(db, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'musicstream_stage%%'"),
        "name_repairs": rows(
            db, "SELECT file, original, repaired, line, count FROM name_repairs_by_file ORDER BY file, original"
        ),
    }


def counts(result: LoadResult) -> dict[str, Any]:
    return {**{k: getattr(result, k) for k in COUNTS}, "rows_added": result.rows_added, "ok": result.reconciles}


def test_udacity_spark_equals_local(db: Database, local_db: Database, udacity: Path, spark: Any) -> None:
    with_spark = run_load(db, [udacity], SPARK)
    with_local = run_load(local_db, [udacity])
    assert with_spark.status == "succeeded"
    assert counts(with_spark) == counts(with_local)
    assert snapshot(db) == snapshot(local_db)
    assert bookkeeping(db) == bookkeeping(local_db)
    assert rows(db, "SELECT engine FROM etl_runs") == [("spark",)]
    # docs/rules.md's figures for the sample
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]
    assert rows(db, "SELECT count(*) FILTER (WHERE tier = 'paid'), count(*) FROM users") == [(22, 97)]
    again = run_load(db, [udacity], SPARK)
    assert again.files_skipped == with_local.files_read and again.records_read == 0
    assert snapshot(db) == snapshot(local_db)


LAKE_COLUMNS = {
    "trackplays": "user_id, session_id, item_in_session, start_time, tier, track_id, artist_id, location, "
    "user_agent, song_title, artist_name, length_ms",
    "users": "user_id, first_name, last_name, gender, tier, last_event_ts, last_session_id, last_item",
    "tracks": "track_id, title, artist_id, year, duration, is_inferred, title_key, artist_key",
    "artists": "artist_id, name, location, latitude, longitude, is_inferred, source_track_id",
    "timetb": "start_time, hour, day, week, month, year, weekday",
}


def current(lake: Path) -> Path:
    """The lake's current version, found as a reader finds it: the folder _CURRENT names."""
    version = (lake / "_CURRENT").read_text(encoding="utf-8").strip()
    assert version.startswith("v-") and (lake / version).is_dir()
    return lake / version


def read_lake(lake: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The Parquet lake's current version read back with pyarrow, each table's rows sorted, in the columns of
    LAKE_COLUMNS."""
    import pyarrow.dataset as ds

    root = current(lake)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, columns in LAKE_COLUMNS.items():
        names = [c.strip() for c in columns.split(",")]
        data = ds.dataset(root / table, format="parquet", partitioning="hive").to_table(columns=names)
        out[table] = sorted(tuple(row[n] for n in names) for row in data.to_pylist())
    return out


def database_star(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    # the lake keeps durations and coordinates as doubles, the database as NUMERIC (the decimals the files wrote)
    as_lake = {"duration": "duration::float8", "latitude": "latitude::float8", "longitude": "longitude::float8"}
    star = {
        table: sorted(
            rows(db, f"SELECT {', '.join(as_lake.get(c.strip(), c) for c in columns.split(','))} FROM {table}")  # noqa: S608 - our own constant names
        )
        for table, columns in LAKE_COLUMNS.items()
        if table != "trackplays"
    }
    star["trackplays"] = sorted(
        rows(
            db,
            """SELECT user_id, session_id, item_in_session, start_time, tier, p.track_id, p.artist_id, location,
                      user_agent, song_title, artist_name, length_ms
               FROM trackplays p JOIN play_names USING (name_id)""",
        )
    )
    return star


def test_parquet_lake_equals_a_postgresql_load(
    db: Database, udacity: Path, late_corpus: Path, spark: Any, tmp_path: Path
) -> None:
    from musicstream.engines import write_parquet

    result = write_parquet([late_corpus], str(tmp_path / "lake"))
    local = run_load(db, [late_corpus])
    assert result.status == "succeeded" and result.reconciles
    star = {t: local.rows_added[t] for t in LAKE_COLUMNS}
    assert {**counts(result), "rows_added": result.rows_added} == {**counts(local), "rows_added": star}
    assert read_lake(tmp_path / "lake") == database_star(db)
    # the edges were exercised: a tie at exactly 1.000 s goes to the smaller id; rule 5 keeps "B-side"
    assert rows(
        db,
        "SELECT DISTINCT p.track_id FROM trackplays p JOIN play_names USING (name_id) WHERE song_title = 'Revelry'",
    ) == [("SOZZEDGE000000001",)]
    assert rows(db, "SELECT title FROM tracks WHERE track_id = 'SOZZEDGE000000004'") == [("B-side",)]
    months = sorted(p.name for p in (current(tmp_path / "lake") / "trackplays").glob("year=*/month=*"))
    assert months and all(p.startswith("month=") for p in months)
    for table in ("users", "tracks", "artists", "timetb"):
        assert len(list((current(tmp_path / "lake") / table).glob("*.parquet"))) == 1


def hostile_tree(root: Path) -> Path:
    """Every case of the hostile-input corpus (test_hostile.py) in one tree, plus unreadable entries."""
    import os

    from test_hostile import CASES

    for name, data, _, _ in CASES.values():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    logs = root / "log_data"
    os.symlink(logs / "b-link.json", logs / "a-link.json")  # a link loop
    os.symlink(logs / "a-link.json", logs / "b-link.json")
    os.symlink(logs / "missing.json", logs / "dangling.json")
    return root


def test_hostile_corpus_gives_the_same_rejects(db: Database, local_db: Database, spark: Any, tmp_path: Path) -> None:
    root = hostile_tree(tmp_path / "hostile")
    with_spark = run_load(db, [root], SPARK)
    with_local = run_load(local_db, [root])
    assert with_spark.status == "succeeded" and with_spark.rejected > 10
    assert counts(with_spark) == counts(with_local)
    assert bookkeeping(db) == bookkeeping(local_db)
    assert snapshot(db) == snapshot(local_db)
    # the lake's dialect of the rules (sql/spark/star.sql) on the same edges: many events of one key at one instant
    from musicstream.engines import write_parquet

    lake = write_parquet([root], str(tmp_path / "lake"))
    star = {t: with_local.rows_added[t] for t in LAKE_COLUMNS}
    assert {**counts(lake), "rows_added": lake.rows_added} == {**counts(with_local), "rows_added": star}
    assert read_lake(tmp_path / "lake") == database_star(local_db)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 200,000 generated events over 31 days, plus one day sent twice under another name."""
    from musicstream.generate import generate

    root = tmp_path_factory.mktemp("generated")
    generate(root, users=1000, days=31, songs=2000, seed=11, events=200_000)
    days = sorted((root / "log_data").rglob("*.json"))
    shutil.copy(days[3], days[3].with_name("resent-copy.json"))
    return root


@pytest.mark.slow
def test_generated_data_late_songs_spark_equals_local(
    db: Database, local_db: Database, generated: Path, spark: Any
) -> None:
    """Logs first, song files in a second run (rule 8), on both engines."""
    logs, songs = generated / "log_data", generated / "song_data"
    for target, options in ((db, SPARK), (local_db, LoadOptions())):
        first = run_load(target, [logs], options)
        assert first.status == "succeeded" and first.event_records > 190_000 and first.duplicates > 1000
        second = run_load(target, [songs], options)
        assert second.rows_added["plays_moved_to_catalog"] > 0
    assert snapshot(db) == snapshot(local_db)
    assert bookkeeping(db) == bookkeeping(local_db)


def test_s3_inputs_on_spark_load_like_local_files(
    db: Database, local_db: Database, udacity: Path, spark: Any, s3_server: dict[str, str], monkeypatch: Any
) -> None:
    from conftest import upload_tree

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)  # the executors of the running session get them from the driver
    url = upload_tree(s3_server, udacity, "spark-engine", "udacity")
    with_spark = run_load(db, [url], SPARK)
    with_local = run_load(local_db, [udacity])
    assert counts(with_spark) == counts(with_local)
    assert snapshot(db) == snapshot(local_db)
    assert rows(db, "SELECT count(*) FROM loaded_files WHERE path LIKE 's3://spark-engine/udacity/%%'") == [
        (with_local.files_read,)
    ]


def test_hadoop_uris_are_read_through_spark(db: Database, local_db: Database, spark: Any, tmp_path: Path) -> None:
    """A Hadoop URI (file:// here; s3a:// and hdfs:// on a cluster) is listed by the JVM and read by Spark."""
    root = hostile_tree(tmp_path / "hostile")
    for link in ("a-link.json", "b-link.json", "dangling.json"):
        (root / "log_data" / link).unlink()  # Hadoop lists no dangling links
    with_spark = run_load(db, [f"file://{root}"], SPARK)
    with_local = run_load(local_db, [root])
    assert counts(with_spark) == counts(with_local)
    assert snapshot(db) == snapshot(local_db)
    spark_rejects = [(f.replace("file:", "", 1), *rest) for f, *rest in bookkeeping(db)["rejects"]]
    assert spark_rejects == bookkeeping(local_db)["rejects"]


def test_s3a_without_the_connector_is_a_clear_error(db: Database, spark: Any) -> None:
    from musicstream.errors import EngineError

    with pytest.raises(EngineError, match="hadoop-aws"):
        run_load(db, ["s3a://bucket/prefix"], SPARK)


def test_a_cluster_master_needs_a_tcp_database(db: Database, pg15: dict[str, Any]) -> None:
    from musicstream.engines.spark import _conninfo_for
    from musicstream.errors import ConfigError

    with pytest.raises(ConfigError, match="over TCP") as caught:
        _conninfo_for(db, "spark://cluster.example:7077")
    assert "--database-url" in str(caught.value)
    tcp = Database(Settings(database_url=pg15["url"]))
    assert _conninfo_for(tcp, "spark://cluster.example:7077") == tcp.conninfo
    assert _conninfo_for(db, "local[2]") == db.conninfo


def test_the_session_is_utc_whatever_the_caller_set(spark: Any) -> None:
    """An active session (or spark-submit's) set to another zone is switched to UTC: timestamps are UTC (rule 4)."""
    from musicstream.engines.spark_session import session

    key = "spark.sql.session.timeZone"
    spark.conf.set(key, "America/New_York")
    try:
        assert session().conf.get(key) == "UTC"
        row = session().sql("SELECT CAST(timestamp_millis(1543559435796) AS STRING) AS t").first()
        assert row is not None and row["t"] == "2018-11-30 06:30:35.796"
    finally:
        spark.conf.set(key, "UTC")


def test_hadoop_file_names_with_list_or_pattern_characters_are_a_clear_error(
    db: Database, spark: Any, tmp_path: Path
) -> None:
    from musicstream.errors import InputError

    logs = tmp_path / "lake" / "log_data"
    logs.mkdir(parents=True)
    (logs / "a,b.json").write_text(json.dumps({"page": "Home", "userId": ""}) + "\n")
    with pytest.raises(InputError, match=r"a,b\.json.*commas"):
        run_load(db, [f"file://{tmp_path / 'lake'}"], SPARK)
    assert rows(db, "SELECT status FROM etl_runs") == [("failed",)]
    assert rows(db, "SELECT count(*) FROM loaded_files") == [(0,)]


def test_hadoop_listing_skips_hidden_folders_like_the_local_walk(spark: Any, tmp_path: Path) -> None:
    from musicstream.engines.spark_session import discover_all
    from test_rejects import event

    logs = tmp_path / "in" / "log_data"
    (logs / ".ipynb_checkpoints").mkdir(parents=True)
    (logs / "day.json").write_text(json.dumps(event()) + "\n")
    (logs / ".ipynb_checkpoints" / "day-checkpoint.json").write_text(json.dumps(event()) + "\n")
    found = discover_all(spark, [f"file://{tmp_path / 'in'}"])
    assert [f.path.rsplit("/", 1)[-1] for f in found] == ["day.json"]
    assert len(discover_all(spark, [tmp_path / "in"])) == 1


def test_both_engines_equal_the_reference(db: Database, spark: Any, tmp_path: Path) -> None:
    """The rule-edge corpus of test_reference.py through Spark: staged by Spark and merged in PostgreSQL, and as a
    Parquet lake computed by Spark SQL alone (sql/spark/star.sql, the rules' second implementation)."""
    import reference
    from musicstream.engines import write_parquet
    from test_reference import build_corpus, star_of

    corpus = build_corpus(tmp_path / "corpus")
    want = reference.build([corpus]).tables()
    assert run_load(db, [corpus], SPARK).status == "succeeded"
    assert star_of(db) == want
    write_parquet([corpus], str(tmp_path / "lake"))
    lake = read_lake(tmp_path / "lake")
    width = {"trackplays": 9, "users": 5, "tracks": 6, "artists": 6, "timetb": 7}
    as_float = {"tracks": (4,), "artists": (3, 4)}  # the lake keeps durations and coordinates as doubles

    def lake_row(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(None if v is None else float(v) if i in as_float.get(table, ()) else v for i, v in enumerate(row))

    for table, n in width.items():
        assert sorted(r[:n] for r in lake[table]) == [lake_row(table, r) for r in want[table]], table
