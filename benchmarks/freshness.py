"""How fresh `musicstream watch` keeps the star schema: files land in a watched folder, and this measures how soon
their plays are in `trackplays` (and in the report's rollups: the same transaction), what a poll that finds
nothing new costs, and the rate of small files the watcher keeps up with.

    python benchmarks/freshness.py --base 1m                 # 1M stored plays first (generated once, as bench.py)
    python benchmarks/freshness.py --base 10m                # 10M (generating and loading it takes long)
    python benchmarks/freshness.py --base 100k --files 20 --sustain 10 --out /tmp/x   # a quick look

Method. An embedded PostgreSQL of its own is filled with the base data set (`bench.py` `dataset`: 31 days) by one
`musicstream load`. Then:

0. one file of ``--file-events`` events whose plays fall on the base's last day, by `load --json`: a live app's
   file lands on a day that holds earlier plays, whose per-day rollups are computed again (its timings, the
   largest steps first).
1. freshness: ``--files`` files of ``--file-events`` events (`generate --drip`'s, sessions numbered apart, so
   their plays are new, on days after the base's) land one at a time in an empty folder that `musicstream watch
   --json` watches, each copied under a temporary name and renamed into place, the next when the previous one
   is committed. A file's freshness is its run's commit time (`etl_runs.finished_at`, set
   in the run's transaction just before the commit) minus the moment it landed (after the rename): p50, p95, max.
2. the empty poll: the watcher's own listing and settle step (`watch.py` `Lister.poll`, `Settler.observe`) on the
   watched folder, all of whose files are loaded, and on the base data set's folder (its 10,000 song files at 1M),
   timed in this process, between full listings (OS file events report nothing) and as a full listing; it asks
   nothing of the database.
3. sustained rate: files of ``--sustain-file-events`` events land at ``--rate`` events a second for ``--sustain``
   seconds; the rate the watcher committed, and whether the lag grew (the median freshness of the last third of
   the files against the first third).

The results go to benchmarks/results/ as JSON. Speed is never asserted; the figures are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from bench import Embedded, dataset, save_results  # noqa: E402

from musicstream.generate.drip import drip  # noqa: E402
from musicstream.watch import Lister, Settler  # noqa: E402

SETTLE = 0.2


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def summary(values: list[float], scale: float = 1.0) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5) * scale, 3),
        "p95": round(percentile(values, 0.95) * scale, 3),
        "max": round(max(values) * scale, 3),
    }


class WatchProcess:
    def __init__(self, server: Embedded, folder: Path, settle: float) -> None:
        self.proc = subprocess.Popen(
            server.cli("watch", "--json", "--settle", str(settle), "--interval", "0.5", str(folder)),
            env=server.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("started")

    def _read(self) -> None:
        for line in self.proc.stdout or []:
            self.events.put(json.loads(line))

    def wait_for(self, kind: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=1)
            except queue.Empty:
                continue
            if event["event"] == kind:
                return event
        raise SystemExit(f"the watcher said no {kind} within {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=600)


def land(source: Path, folder: Path) -> tuple[str, float]:
    """Copy a file in under a temporary name and rename it into place, as a well-behaved writer does."""
    target = folder / source.name
    temporary = folder / (source.name + ".tmp")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    return str(target), time.time()


def commit_times(server: Embedded, paths: list[str]) -> dict[str, float]:
    import psycopg

    with psycopg.connect(server.url) as conn:
        found = conn.execute(
            """SELECT f.path, extract(epoch FROM r.finished_at)::float8 FROM run_files f JOIN etl_runs r USING (run_id)
               WHERE r.status = 'succeeded' AND f.path = ANY(%s)""",
            (paths,),
        ).fetchall()
    return {str(path): float(at) for path, at in found}


def stage_files(
    root: Path, files: int, file_events: int, users: int, first_session: int, start: dt.date = dt.date(2019, 1, 1)
) -> list[Path]:
    """The drip's files, written at once into a staging folder (landing them later costs a copy only)."""
    drip(
        root,
        rate=1e12,
        file_events=file_events,
        files=files,
        users=users,
        songs=1,
        seed=7,
        first_session=first_session,
        start=start,
    )
    return sorted((root / "log_data").rglob("*.json"))


def freshness(server: Embedded, staged: list[Path], folder: Path) -> dict[str, Any]:
    landed: dict[str, float] = {}
    runs: list[float] = []
    watcher = WatchProcess(server, folder, SETTLE)
    try:
        for source in staged:
            path, at = land(source, folder)
            landed[path] = at
            runs.append(watcher.wait_for("batch")["seconds"])
    finally:
        watcher.stop()
    committed = commit_times(server, list(landed))
    lags = [committed[p] - at for p, at in landed.items()]
    return {"files": len(staged), "freshness_s": summary(lags), "run_s": summary(runs)}


def one_file_costs(server: Embedded, source: Path, folder: Path) -> dict[str, Any]:
    """Where the time of a one-file run goes: `load --json`'s timings, the largest first."""
    path, _ = land(source, folder)
    started = time.perf_counter()
    done = subprocess.run(
        server.cli("load", "--json", path), env=server.env, check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout)
    timings = sorted(result["timings"].items(), key=lambda item: -item[1])
    return {
        "command_s": round(time.perf_counter() - started, 3),
        "run_s": result["seconds"],
        "largest_steps": dict(timings[:8]),
    }


def onto_stored_day(server: Embedded, root: Path, folder: Path, file_events: int) -> dict[str, Any]:
    """One file whose plays fall on the last day already stored (a live app's file lands on today, which holds
    the day's earlier plays): the report's per-day rollups of that day are computed again from all its plays."""
    import psycopg

    with psycopg.connect(server.url) as conn:
        last_day = conn.execute("SELECT max(start_time)::date FROM trackplays").fetchone()[0]  # type: ignore[index]
        day_plays = int(
            conn.execute(  # type: ignore[index]
                "SELECT count(*) FROM trackplays WHERE start_time >= %s AND start_time < %s",
                (last_day, last_day + dt.timedelta(days=1)),
            ).fetchone()[0]
        )
    (source,) = stage_files(root, 1, file_events, 5_000, 950_000_000, start=last_day)
    return {"day": str(last_day), "day_plays_before": day_plays, **one_file_costs(server, source, folder)}


def empty_poll(folder: Path, repeats: int = 200) -> dict[str, Any]:
    """A poll that finds nothing new, as the watcher makes it (`Lister.poll`, `Settler.observe`), every file
    loaded: between full listings with OS file events (nothing reported), and as a full listing (at the start,
    every minute, and every poll where file events do not work). Neither asks anything of the database."""
    settler = Settler(SETTLE)
    lister = Lister([str(folder)])
    lister.events = True
    listing = lister.poll(0.0)
    settler.observe(listing, 0.0)
    settler.observe(listing, 10.0)
    settler.loaded(list(settler.pending))
    figures: dict[str, Any] = {"files_listed": len(listing)}
    for mode, full in (("with_file_events_ms", False), ("full_listing_ms", True)):
        times = []
        for number in range(repeats):
            lister.listed_at = None if full else 20.0
            started = time.perf_counter()
            ready, _ = settler.observe(lister.poll(20.0 + number / 1000, settler.pending), 20.0)
            times.append(time.perf_counter() - started)
            assert not ready
        figures[mode] = summary(times, 1000)
    return figures


def sustained(server: Embedded, staged: list[Path], folder: Path, rate: float, file_events: int) -> dict[str, Any]:
    landed: dict[str, float] = {}
    watcher = WatchProcess(server, folder, SETTLE)
    began = time.monotonic()
    try:
        for number, source in enumerate(staged):
            pause = began + number * file_events / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            path, at = land(source, folder)
            landed[path] = at
        offered = time.monotonic() - began
        deadline = time.monotonic() + 900
        while len(commit_times(server, list(landed))) < len(landed) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        watcher.stop()
    committed = commit_times(server, list(landed))
    order = list(landed)
    lags = [committed[p] - landed[p] for p in order if p in committed]
    third = max(1, len(lags) // 3)
    span = max(committed.values()) - min(landed.values())
    return {
        "files": len(staged),
        "events_offered_per_s": round(len(staged) * file_events / offered, 1),
        "events_committed_per_s": round(len(committed) * file_events / span, 1),
        "freshness_s": summary(lags),
        "lag_first_third_p50": round(statistics.median(lags[:third]), 3),
        "lag_last_third_p50": round(statistics.median(lags[-third:]), 3),
    }


def noop_load(server: Embedded, base: Path) -> float:
    started = time.perf_counter()
    subprocess.run(server.cli("load", "-q", str(base)), env=server.env, check=True)
    return round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="1m", choices=["100k", "1m", "10m"], help="stored plays before watching")
    parser.add_argument("--files", type=int, default=60, help="files for the freshness figures (at least 50)")
    parser.add_argument("--file-events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20_000, help="events a second offered in the sustained phase")
    parser.add_argument("--sustain", type=float, default=60, help="seconds of the sustained phase")
    parser.add_argument("--sustain-file-events", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    base = dataset(args.base, HERE / "data")
    server = Embedded()
    work = Path(tempfile.mkdtemp(prefix="msfresh-"))
    try:
        started = time.perf_counter()
        subprocess.run(server.cli("load", "-q", str(base)), env=server.env, check=True)
        base_load = round(time.perf_counter() - started, 1)
        import psycopg

        with psycopg.connect(server.url) as conn:
            stored = int(conn.execute("SELECT count(*) FROM trackplays").fetchone()[0])  # type: ignore[index]
        print(f"base {args.base}: {stored:,} stored plays, loaded in {base_load} s", flush=True)
        noop = noop_load(server, base)
        print(f"a load of the base with nothing new: {noop} s (a whole command)", flush=True)

        sustain_files = int(args.rate * args.sustain / args.sustain_file_events)
        staged = stage_files(work / "fresh", args.files + 1, args.file_events, 5_000, 500_000_000)
        paced = stage_files(work / "paced", sustain_files, args.sustain_file_events, 5_000, 900_000_000)
        watched = work / "watched" / "log_data"
        watched.mkdir(parents=True)
        # before the watched files add days after the base's: the last stored day is the base's
        day_folder = work / "stored-day-landed" / "log_data"
        day_folder.mkdir(parents=True)
        stored_day = onto_stored_day(server, work / "stored-day", day_folder, args.file_events)
        print(f"one file onto the base's last day by `load`: {stored_day}", flush=True)
        fresh = freshness(server, staged[:-1], watched)
        print(f"freshness, {args.file_events:,}-event files one at a time: {fresh['freshness_s']} s", flush=True)
        print(f"  of which the runs (the batch's own seconds): {fresh['run_s']} s", flush=True)
        costs = one_file_costs(server, staged[-1], watched)
        print(f"one more file by `load`: {costs}", flush=True)
        poll = empty_poll(watched.parent)
        print(f"empty poll over {poll['files_listed']} files: {poll}", flush=True)
        big = empty_poll(base, repeats=20)
        print(f"empty poll over the base data set's {big['files_listed']} files: {big}", flush=True)
        paced_folder = work / "watched2" / "log_data"
        paced_folder.mkdir(parents=True)
        sustain = sustained(server, paced, paced_folder, args.rate, args.sustain_file_events)
        print(f"sustained: {sustain}", flush=True)
        record = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "base": args.base,
            "stored_plays": stored,
            "base_load_s": base_load,
            "noop_load_s": noop,
            "settle_s": SETTLE,
            "freshness": {**fresh, "file_events": args.file_events},
            "one_file_load": costs,
            "one_file_onto_a_stored_day": stored_day,
            "empty_poll": poll,
            "empty_poll_base_folder": big,
            "sustained": {**sustain, "file_events": args.sustain_file_events, "rate_offered": args.rate},
        }
        save_results(args.out, f"freshness-{args.base}", record)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
