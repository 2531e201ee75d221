"""What one small batch costs each engine in a process that stays up, as a watcher's does: the Spark engine's
session is started once, then each engine loads the same kind of file in turn (A B A B), so the figures compare
the engines' fixed cost per batch, not the start of a JVM.

    python benchmarks/small_batches.py                         # a 100K base, 8 batches of 10,000 events each
    python benchmarks/small_batches.py --base 1m --batches 12 --file-events 2000

Method. An embedded PostgreSQL of its own is filled with the base data set (`bench.py` `dataset`) by one
`musicstream load`. Files of `generate --drip`'s events (sessions numbered apart, on days after the base's) are
written at once. In this process, each engine is made once (`engines.engine_for`) and given to every run, as
`musicstream watch` does; `run_load` loads one file with the Spark engine (`local[2]`) to start its session (timed
apart), then alternately one file with the local engine and one with Spark. Each batch's `seconds` and its
`read_and_copy` (listing, parsing and staging; the rest is the merge both engines share) are printed as medians;
the results go to benchmarks/results/ as JSON. Speed is never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from bench import Embedded, dataset, save_results  # noqa: E402
from freshness import stage_files  # noqa: E402

from musicstream.api import run_load  # noqa: E402
from musicstream.db.connection import Database  # noqa: E402
from musicstream.engines import engine_for  # noqa: E402
from musicstream.load.state import Engine, LoadOptions  # noqa: E402


def batch(db: Database, path: Path, engine: str, made: dict[str, Engine]) -> dict[str, float]:
    """One file by one engine, made once per engine and given to every run, as a watcher does."""
    started = time.perf_counter()
    options = LoadOptions(engine=engine)
    if engine not in made:
        made[engine] = engine_for(db, options)
    result = run_load(db, [path], options, engine=made[engine])
    if result.status != "succeeded" or not result.records_loaded:
        raise SystemExit(f"the {engine} batch of {path} did not load: {result.status} {result.error or ''}")
    return {
        "wall_s": time.perf_counter() - started,
        "run_s": result.seconds,
        "read_and_copy_s": result.timings.get("read_and_copy", 0.0),
    }


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(row[key] for row in rows), 3) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="100k", choices=["100k", "1m", "10m"], help="stored plays first")
    parser.add_argument("--batches", type=int, default=8, help="batches per engine")
    parser.add_argument("--file-events", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    base = dataset(args.base, HERE / "data")
    server = Embedded()
    work = Path(tempfile.mkdtemp(prefix="mssmall-"))
    try:
        subprocess.run(server.cli("load", "-q", str(base)), env=server.env, check=True)
        db: Database = server.database()
        files = stage_files(work, 2 * args.batches + 1, args.file_events, 5_000, 700_000_000)
        made: dict[str, Engine] = {}
        first = batch(db, files[0], "spark", made)
        print(f"first Spark batch (its session starts): {first['wall_s']:.2f} s", flush=True)
        by_engine: dict[str, list[dict[str, float]]] = {"local": [], "spark": []}
        for number, path in enumerate(files[1:]):
            engine = ("local", "spark")[number % 2]
            by_engine[engine].append(batch(db, path, engine, made))
        figures = {engine: medians(rows) for engine, rows in by_engine.items()}
        for engine, row in figures.items():
            merge = row["run_s"] - row["read_and_copy_s"]
            print(
                f"{engine}: a batch of {args.file_events:,} events, median of {args.batches}: {row['run_s']:.2f} s "
                f"(reading and staging {row['read_and_copy_s']:.2f} s, the merge {merge:.2f} s)",
                flush=True,
            )
        extra = figures["spark"]["run_s"] - figures["local"]["run_s"]
        print(f"Spark's extra cost per batch: {extra:.2f} s", flush=True)
        record: dict[str, Any] = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "base": args.base,
            "file_events": args.file_events,
            "batches_per_engine": args.batches,
            "first_spark_batch_s": round(first["wall_s"], 3),
            "medians": figures,
            "spark_extra_per_batch_s": round(extra, 3),
            "batches": by_engine,
        }
        save_results(args.out, f"small-batches-{args.base}", record)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
