"""musicstream benchmark: one run measures the loader, the classic row-by-row baseline and the bare COPY floor
side by side on the same machine, and prints one table plus ratios. Results go to benchmarks/results/*.json.

    python benchmarks/bench.py                 # 100K and 1M events
    python benchmarks/bench.py --large         # also 10M
    python benchmarks/bench.py --sizes 100k --smoke --repeats 1   # the CI smoke run: same steps, no claims

Data sets are generated once and cached in benchmarks/data/. Each measured command runs in its own process; peak
resident memory is the loader's own report (VmHWM of its main and worker processes, the largest of them) where it
gives one, else the kernel's (wait4). The database server's memory is not included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # this checkout's musicstream, installed or not

from parse_floor import parse_cost  # noqa: E402  (this folder is the script's, first on sys.path)

from musicstream.db.schema import ROLLUP_TABLES  # noqa: E402

SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
DAYS = 31  # 30 days to start from, and one more for the incremental run
CLASSIC_SLICE_DAYS = 1
CLASSIC_MAX_EVENTS = 40_000  # a bigger day is cut to its first lines (a copy in a temp folder): the rate is per event
DEFAULT_REPEATS = 3  # runs of each timed step, of which the median is kept (1 for the 10M set)


READER_ALONE = "reader alone: every file parsed, no database"


@dataclass
class Row:
    scenario: str
    events: int
    megabytes: float
    seconds: float
    peak_rss_mb: float | None
    note: str = ""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.seconds if self.seconds else 0.0


SETTLE_SECONDS = 2.0  # 0 in a smoke run: its times claim nothing


def settle() -> None:
    """Let the previous step's writes reach the disk before the next one is timed. Without it, two 1M loads run
    back to back (each on its own new database) gave the second one's insert_plays about 2 s more, whichever code
    ran second, five pairs out of five: the kernel was still writing out the first one's files."""
    os.sync()
    time.sleep(SETTLE_SECONDS)


def quiet(conninfo: str, limit_s: float = 300.0) -> float:
    """Wait until no autovacuum worker runs on the server (at most ``limit_s``), so that the next step is not
    timed against the vacuum of the tables a load just wrote: the star floor measured 13.2 s right after a 1M load
    and the check, 8.1–8.2 s (two runs of three) on the same database later. Returns the seconds waited."""
    import psycopg

    started = time.perf_counter()
    idle = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while idle < 2 and time.perf_counter() - started < limit_s:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            ).fetchone()
            idle = idle + 1 if row and row[0] == 0 else 0
            time.sleep(0.5)
    return time.perf_counter() - started


def run_rss(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Like run_measured, but reaps the child with os.wait4 to read its own peak RSS."""
    settle()
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out_file, stderr=err_file, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{err[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def dataset(size: str, root: Path) -> Path:
    """Generate (once) the data set of a size: 31 days, users and catalog scaled with the events."""
    events = SIZES[size]
    folder = root / size
    marker = folder / ".complete"
    params = {"events": events, "days": DAYS, "users": max(200, events // 200), "songs": max(2000, events // 100)}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating {size} data set in {folder} ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "musicstream",
            "generate",
            str(folder),
            "--events",
            str(events),
            "--days",
            str(DAYS),
            "--users",
            str(params["users"]),
            "--songs",
            str(params["songs"]),
            "--seed",
            "42",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    marker.write_text(json.dumps(params))
    return folder


def split(folder: Path) -> tuple[list[Path], Path]:
    logs = sorted(folder.glob("log_data/**/*.json"))
    return [folder / "song_data", *logs[:-1]], logs[-1]


def count_events(paths: list[Path]) -> tuple[int, float]:
    events, size = 0, 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*.json") if "log_data" in p.parts]
        for file in files:
            data = file.read_bytes()
            events += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            size += len(data)
    return events, size / 1e6


def tree_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*.json")) / 1e6


class Embedded:
    """A fresh embedded PostgreSQL (its own MUSICSTREAM_HOME) for one data set."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="msb-", dir="/tmp"))
        self.env = {**os.environ, "MUSICSTREAM_HOME": str(self.home)}
        self.env.pop("MUSICSTREAM_DATABASE_URL", None)
        self.url = self.conninfo()  # the server starts here and stays up while this process lives, so the
        # measured commands attach to it instead of each starting (and stopping) it

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "musicstream", *args]

    def reset(self) -> None:
        subprocess.run(self.cli("init", "--reset", "--yes"), check=True, env=self.env, stdout=subprocess.DEVNULL)

    def database(self) -> Any:
        """The library's handle on this server (``musicstream.db.connection.Database``), for in-process runs."""
        sys.path.insert(0, str(HERE.parent / "src"))
        from musicstream.config import Settings
        from musicstream.db.connection import Database

        os.environ["MUSICSTREAM_HOME"] = str(self.home)
        return Database(Settings(database_url=None, home=self.home))

    def conninfo(self) -> str:
        return str(self.database().conninfo)

    def close(self) -> None:
        # stop the server before its folder goes: its own stop-at-exit reads a file in that folder, and without it
        # the server would run on, orphaned, after the bench (as tests/conftest.py does)
        from musicstream.db import embedded

        server = embedded._servers.pop(self.home / "pgdata", None)
        if server is not None:
            server.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def bare_copy_floor(conninfo: str, reps: int = 3) -> tuple[float, int, float]:
    """Median seconds to COPY the loaded fact rows into a fresh logged table with a primary key."""
    import psycopg

    csv_path = Path(tempfile.mkstemp(suffix=".csv")[1])
    with psycopg.connect(conninfo, autocommit=True) as conn:
        query = "COPY (SELECT * FROM trackplays ORDER BY trackplay_id) TO STDOUT (FORMAT csv)"
        with conn.cursor().copy(query) as copy, csv_path.open("wb") as out:
            for chunk in copy:
                out.write(chunk)
        rows = conn.execute("SELECT count(*) FROM trackplays").fetchone()[0]  # type: ignore[index]
        times = []
        for _ in range(reps):
            conn.execute("DROP TABLE IF EXISTS bench_floor")
            conn.execute("CREATE TABLE bench_floor (LIKE trackplays INCLUDING DEFAULTS)")
            conn.execute("ALTER TABLE bench_floor ADD PRIMARY KEY (trackplay_id)")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            with conn.cursor().copy("COPY bench_floor FROM STDIN (FORMAT csv)") as copy, csv_path.open("rb") as src:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
            times.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_floor")
    megabytes = csv_path.stat().st_size / 1e6
    csv_path.unlink()
    return statistics.median(times), rows, megabytes


# Every table a load writes rows to: the star, the play names, and the report's rollups (as the schema lists them).
STAR_TABLES = ("trackplays", "timetb", "users", "tracks", "artists", "play_names", *ROLLUP_TABLES)


def star_floor(conninfo: str, reps: int = 3) -> dict[str, Any]:
    """What PostgreSQL needs just to store every row the load wrote: the star's tables (and the report's rollups)
    COPYed in binary into empty copies, with their indexes built after the COPY, and with them in place during it.

    Median seconds of ``reps`` runs each; the copies are dropped after each run. Foreign keys are not included.
    """
    import psycopg
    from psycopg import sql

    scratch = Path(tempfile.mkdtemp(prefix="msb-floor-"))
    out: dict[str, Any] = {"tables": {}}
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            indexes: dict[str, list[str]] = {}
            for table in STAR_TABLES:
                with (
                    conn.cursor().copy(
                        sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier(table))
                    ) as copy,
                    (scratch / table).open("wb") as dump,
                ):
                    for chunk in copy:
                        dump.write(chunk)
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
                out["tables"][table] = int(count[0]) if count else 0
                indexes[table] = [
                    str(d)
                    for (d,) in conn.execute(
                        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass", (table,)
                    )
                ]
            out["rows"] = sum(out["tables"].values())
            for variant in ("indexes built after", "indexes in place"):
                times = []
                for _ in range(reps):
                    for table in STAR_TABLES:
                        copy_of = sql.Identifier(f"floor_{table}")
                        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(copy_of))
                        conn.execute(
                            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                                copy_of, sql.Identifier(table)
                            )
                        )
                    conn.execute("CHECKPOINT")
                    started = time.perf_counter()
                    with conn.transaction():
                        if variant == "indexes in place":
                            _floor_indexes(conn, indexes)
                        for table in STAR_TABLES:
                            with (
                                conn.cursor().copy(
                                    sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(
                                        sql.Identifier(f"floor_{table}")
                                    )
                                ) as copy,
                                (scratch / table).open("rb") as src,
                            ):
                                while chunk := src.read(1 << 20):
                                    copy.write(chunk)
                        if variant == "indexes built after":
                            _floor_indexes(conn, indexes)
                    times.append(time.perf_counter() - started)
                out[variant] = statistics.median(times)
            for table in STAR_TABLES:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"floor_{table}")))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["megabytes"] = 0.0
    return out


def _floor_indexes(conn: Any, indexes: dict[str, list[str]]) -> None:
    """The tables' own index definitions, pointed at the floor copies (a unique constraint as a unique index)."""
    for table, definitions in indexes.items():
        for number, definition in enumerate(definitions):
            head, _, rest = definition.partition(" ON ")
            unique = "UNIQUE " if head.startswith("CREATE UNIQUE") else ""
            rest = rest.replace(f"public.{table} ", f"public.floor_{table} ", 1)
            conn.execute(f"CREATE {unique}INDEX floor_{table}_{number} ON {rest}")


_Run = TypeVar("_Run", bound=tuple[Any, ...])


def _median_run(runs: Sequence[_Run]) -> _Run:
    """Of several runs of one command (each a tuple whose first item is its seconds), the one of median time."""
    return sorted(runs, key=lambda run: run[0])[len(runs) // 2]


def _spread(runs: Sequence[tuple[Any, ...]]) -> str:
    """The runs' times, smallest first (how far apart one machine put the same command), for a row's note; nothing
    for a single run."""
    if len(runs) < 2:
        return ""
    times = " / ".join(f"{seconds:.1f}" for seconds in sorted(run[0] for run in runs))
    return f"; median of {len(runs)}: {times} s"


def classic_slice(folder: Path, conninfo: str) -> tuple[float, float, int, float]:
    """Run the classic loader on one day of logs and a proportional share of the song files."""
    songs = sorted(folder.glob("song_data/**/*.json"))
    logs = sorted(folder.glob("log_data/**/*.json"))[:CLASSIC_SLICE_DAYS]
    song_share = songs[: max(1, len(songs) * CLASSIC_SLICE_DAYS // DAYS)]
    with tempfile.TemporaryDirectory(prefix="msb-classic-") as scratch:
        logs = [_first_lines(log, Path(scratch), CLASSIC_MAX_EVENTS) for log in logs]
        return _run_classic(logs, song_share, conninfo, Path(scratch))


def _first_lines(path: Path, scratch: Path, limit: int) -> Path:
    """The file itself, or a copy of its first ``limit`` lines when it has more (inputs are never changed)."""
    with path.open("rb") as src:
        head = [line for _, line in zip(range(limit + 1), src, strict=False)]
    if len(head) <= limit:
        return path
    cut = scratch / path.name
    cut.write_bytes(b"".join(head[:limit]))
    return cut


def _run_classic(
    logs: list[Path], song_share: list[Path], conninfo: str, scratch: Path
) -> tuple[float, float, int, float]:
    # The file lists go in files: thousands of song paths do not fit on a command line.
    song_list, log_list = scratch / "songs.txt", scratch / "logs.txt"
    song_list.write_text("\n".join(map(str, song_share)))
    log_list.write_text("\n".join(map(str, logs)))
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import classic; from pathlib import Path;"
        "paths = lambda f: [Path(p) for p in Path(f).read_text().splitlines()];"
        "print(classic.run(sys.argv[2], paths(sys.argv[3]), paths(sys.argv[4])))"
    )
    seconds, rss, out = run_rss(
        [sys.executable, "-c", script, str(HERE), conninfo, str(song_list), str(log_list)], dict(os.environ)
    )
    return seconds, rss, int(out.strip().splitlines()[-1]), sum(p.stat().st_size for p in logs) / 1e6


CURATED = ("top_tracks", "artist_listeners", "session_lengths", "free_to_paid", "hourly_pattern")
REPORT_TARGET_S = 2.0  # musicstream report --json at 10M
QUERY_TARGET_S = 1.0  # every curated query at 10M
SCAN = "one aggregate scan of the plays"  # the report's budget at each size


def query_times(db: Embedded) -> dict[str, float]:
    """Wall seconds of the commands an analyst runs, each twice in a row: "cold" is the first run after the load
    and its check (PostgreSQL's buffers hold what they left; the OS page cache is not dropped), "warm" the second."""
    timings: dict[str, float] = {}
    seconds, _, out = run_rss(db.cli("report", "--json"), db.env)
    coverage = json.loads(out)["coverage"]
    first = dt.date.fromisoformat(coverage["first_day"])
    week = ["--since", str(first + dt.timedelta(days=7)), "--until", str(first + dt.timedelta(days=13))]
    timings["report (cold)"] = seconds
    timings["report (warm)"] = run_rss(db.cli("report", "--json"), db.env)[0]
    for label in ("cold", "warm"):
        timings[f"report, one week, paid ({label})"] = run_rss(
            db.cli("report", "--json", *week, "--tier", "paid"), db.env
        )[0]
    for name in CURATED:
        for label in ("cold", "warm"):
            timings[f"query {name} ({label})"] = run_rss(db.cli("query", name, "--json"), db.env)[0]
    timings.update(report_against_scan(db.url))
    return timings


def report_against_scan(conninfo: str) -> dict[str, float]:
    """The report's budget: its database work (`build_report`, in this process: no Python start) against one
    aggregate scan of the plays, the question an analyst would ask the fact table without rollups (the ten most
    played tracks: `count(*)` by `track_id`), the better of two runs each."""
    import psycopg

    from musicstream.report import build_report

    report_s: list[float] = []
    scan_s: list[float] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for _ in range(2):
            start = time.perf_counter()
            build_report(conn)
            report_s.append(time.perf_counter() - start)
        for _ in range(2):
            start = time.perf_counter()
            conn.execute("SELECT track_id, count(*) FROM trackplays GROUP BY 1 ORDER BY 2 DESC LIMIT 10").fetchall()
            scan_s.append(time.perf_counter() - start)
    return {"report, database work": min(report_s), SCAN: min(scan_s)}


def query_targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The report and query times next to issue 12's targets: at the largest size measured, and how the report
    grows from the smallest to the largest (it should not: at most 2 ×)."""
    sized = [r for r in results if "queries" in r]
    if not sized:
        return {}
    small, large = sized[0], sized[-1]
    q = large["queries"]
    report_worst = max(
        q["report (cold)"], q["report (warm)"], q["report, one week, paid (cold)"], q["report, one week, paid (warm)"]
    )
    query_worst = max(v for k, v in q.items() if k.startswith("query "))
    out: dict[str, Any] = {
        "size": large["size"],
        f"slowest report, s (target < {REPORT_TARGET_S:g})": report_worst,
        f"slowest curated query, s (target < {QUERY_TARGET_S:g})": query_worst,
    }
    for sized_result in sized:
        sq = sized_result["queries"]
        if SCAN in sq:
            out[f"report's database work ÷ {SCAN}, {sized_result['size']} (budget ≤ 1)"] = (
                sq["report, database work"] / sq[SCAN]
            )
    if small is not large:
        out[f"report {large['size']} ÷ report {small['size']}, warm (target ≤ 2)"] = (
            q["report (warm)"] / small["queries"]["report (warm)"]
        )
    return out


def results_file(folder: Path, name: str) -> Path:
    """Where a run's results go: ``folder/<UTC time now>-<name>.json`` (benchmarks/results/ is the history
    of every figure)."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{name}.json"


def save_results(folder: Path, name: str, record: dict[str, Any]) -> Path:
    """Write one run's results (``results_file``) with the machine's description, and say where."""
    target = results_file(folder, name)
    target.write_text(json.dumps({"machine": machine(), **record}, indent=2) + "\n")
    print(f"results: {target}")
    return target


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def bench_size(size: str, data_root: Path, repeats: int | None = None) -> dict[str, Any]:
    folder = dataset(size, data_root)
    base, new_day = split(folder)
    all_events, all_mb = count_events([folder / "log_data"])
    base_events, _ = count_events(base)
    day_events, day_mb = count_events([new_day])
    db = Embedded()
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    # the full load, the classic slice and the floors: the median of reps runs each
    reps = repeats or (1 if all_events > 3_000_000 else DEFAULT_REPEATS)
    extra["repeats"] = reps
    try:
        loads = []  # (seconds, peak RSS, the run's --json), one per full load from empty
        for _ in range(reps):
            db.reset()
            seconds, rss, out = run_rss(db.cli("load", str(folder), "--json"), db.env)
            run = json.loads(out)
            loads.append((seconds, run.get("peak_rss_mb") or rss, run))  # the loader's own VmHWM, workers included
        seconds, _, run = _median_run(loads)
        rss = max(load[1] for load in loads)
        check_s, _, _ = run_rss(db.cli("check"), db.env)
        rows.append(
            Row(
                "musicstream full load",
                all_events,
                all_mb,
                seconds,
                rss,
                f"+ check {check_s:.1f} s{_spread(loads)}",
            )
        )
        extra["full_load_timings"] = run["timings"]
        extra["full_load_seconds"] = [round(load[0], 3) for load in loads]
        extra["rows_added"] = run["rows_added"]
        # the analyst's commands right after the load and its check, as on the morning after a nightly load (the
        # floors below write and drop copies of every table: measured after them, "cold" would time their
        # checkpoint instead)
        extra["queries"] = query_times(db)
        conninfo = db.url
        quiet(conninfo)
        floor_reps = repeats or DEFAULT_REPEATS  # small even at 10M: one COPY of the fact rows
        floor_s, fact_rows, floor_mb = bare_copy_floor(conninfo, floor_reps)
        rows.append(
            Row(
                "bare COPY of the fact rows (floor)",
                all_events,
                floor_mb,
                floor_s,
                None,
                f"{fact_rows:,} rows into a keyed table, median of {floor_reps}",
            )
        )
        star = star_floor(conninfo, reps=reps)
        extra["star_floor"] = star
        for variant in ("indexes built after", "indexes in place"):
            rows.append(
                Row(
                    f"star floor: binary COPY, {variant}",
                    all_events,
                    0.0,
                    star[variant],
                    None,
                    f"{star['rows']:,} rows of {len(STAR_TABLES)} tables, median of {reps}",
                )
            )

        db.reset()
        run_rss(db.cli("load", *map(str, base)), db.env)
        quiet(conninfo)  # the next day's load comes a day later, when the vacuum of the base is long done
        seconds, rss, out = run_rss(db.cli("load", *map(str, base), str(new_day), "--json"), db.env)
        incremental = json.loads(out)
        rss = incremental.get("peak_rss_mb") or rss
        extra["incremental_timings"] = incremental["timings"]
        rows.append(
            Row(
                "incremental: 1 new day onto 30",
                day_events,
                day_mb,
                seconds,
                rss,
                f"database held {base_events:,} events",
            )
        )
        day_alone = Embedded()
        try:
            day_alone.reset()
            seconds_alone, _, _ = run_rss(day_alone.cli("load", str(folder / "song_data"), str(new_day)), day_alone.env)
        finally:
            day_alone.close()
        rows.append(Row("the same day into an empty database", day_events, day_mb, seconds_alone, None))
        quiet(conninfo)
        seconds, rss, out = run_rss(db.cli("load", str(folder), "--json"), db.env)
        rss = json.loads(out).get("peak_rss_mb") or rss
        rows.append(Row("no-op re-run (nothing new)", all_events, all_mb, seconds, rss, "every file skipped"))

        classics = []
        for _ in range(reps):
            quiet(conninfo)
            classics.append(classic_slice(folder, conninfo))
        classic_s, classic_rss, classic_events, classic_mb = _median_run(classics)
        extra["classic_seconds"] = [round(c[0], 3) for c in classics]
        rate = classic_events / classic_s
        rows.append(
            Row(
                "classic row-by-row (1-day slice, ≤ 40K events)",
                classic_events,
                classic_mb,
                classic_s,
                classic_rss,
                f"extrapolated to all: {all_events / rate:,.0f} s{_spread(classics)}",
            )
        )
        # The reader alone: with the star floor, a bound on any load of these files by this reader into PostgreSQL
        settle()
        cost = parse_cost(folder)
        rows.append(
            Row(
                READER_ALONE,
                all_events,
                all_mb,
                cost.cpu,
                None,
                f"CPU s, one process: logs {cost.log_cpu:.1f} s ({cost.log_cpu / max(cost.lines, 1) * 1e6:.1f} µs a "
                f"line), song files {cost.song_cpu:.1f} s",
            )
        )
    finally:
        db.close()
    full, floor, star_after, star_during, classic, reader = rows[0], rows[1], rows[2], rows[3], rows[-2], rows[-1]
    cores = os.cpu_count() or 1
    # Parsing on every core while PostgreSQL stores the rows, and nothing else to do: no load is faster.
    bound = (reader.seconds + star_after.seconds) / cores
    ratios = {
        "musicstream events/s ÷ classic events/s (target ≥ 150)": full.events_per_s / classic.events_per_s,
        "the must's time, s: every event at 150 × classic events/s": all_events / (150 * classic.events_per_s),
        f"parse-and-store bound, s: (reader CPU + star floor) ÷ {cores} cores": bound,
        "full load ÷ that bound": full.seconds / bound,
        "full load ÷ star floor, indexes built after (aim ≤ 2)": full.seconds / star_after.seconds,
        "full load ÷ star floor, indexes in place": full.seconds / star_during.seconds,
        "full load ÷ bare COPY of the fact rows": full.seconds / floor.seconds,
        "incremental day ÷ same day into empty db": rows[4].seconds / rows[5].seconds,
        "peak RSS of the full load, MB (target < 500)": full.peak_rss_mb or 0.0,
    }
    return {
        "size": size,
        "events": all_events,
        "megabytes": all_mb,
        "rows": [asdict(r) | {"events_per_s": r.events_per_s, "mb_per_s": r.mb_per_s} for r in rows],
        "ratios": ratios,
        **extra,
    }


def show(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    for res in results:
        table = Table(title=f"{res['size']}: {res['events']:,} events, {res['megabytes']:.0f} MB", title_justify="left")
        for col in ("scenario", "events", "events/s", "MB/s", "wall s", "peak RSS MB", "note"):
            table.add_column(col, justify="left" if col in ("scenario", "note") else "right")
        for r in res["rows"]:
            table.add_row(
                r["scenario"],
                f"{r['events']:,}",
                f"{r['events_per_s']:,.0f}",
                f"{r['mb_per_s']:.1f}",
                f"{r['seconds']:.2f}",
                "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}",
                r["note"],
            )
        console.print(table)
        for name, value in res["ratios"].items():
            console.print(f"  {name}: {value:.2f}")
        console.print("  report and query times (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res["queries"].items()))
        before = res.get("previous")
        if before:
            pairs = [
                f"{r['scenario']} {before['seconds'][r['scenario']]:.2f} → {r['seconds']:.2f} s"
                for r in res["rows"]
                if r["scenario"] in before["seconds"]
            ]
            console.print(f"  before ({before['file']}) → now: " + "; ".join(pairs))


def previous(size: str, folder: Path) -> dict[str, Any] | None:
    """The last kept run of this size (the "before" of a before/after pair): its file, wall seconds and ratios."""
    for path in sorted(folder.glob("*.json"), reverse=True):
        if path.stem.endswith("-smoke"):
            continue
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for res in kept.get("results", []):
            if res.get("size") == size:
                return {
                    "file": path.name,
                    "seconds": {r["scenario"]: r["seconds"] for r in res["rows"]},
                    "ratios": res.get("ratios", {}),
                }
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated: 100k, 1m, 10m")
    parser.add_argument("--large", action="store_true", help="add the 10M data set")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI smoke run: results are not kept in benchmarks/, and timed steps do not wait for the disk to settle",
    )
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where data sets are cached")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where results JSON goes")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs of each timed step, the median kept (default {DEFAULT_REPEATS}; 1 for 10M)",
    )
    args = parser.parse_args()
    if args.smoke:
        global SETTLE_SECONDS
        SETTLE_SECONDS = 0.0
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if args.large and "10m" not in sizes:
        sizes.append("10m")
    target = results_file(args.out, f"{'-'.join(sizes)}{'-smoke' if args.smoke else ''}")
    stamp = target.name.split("-", 1)[0]
    results: list[dict[str, Any]] = []
    for size in sizes:  # each size's table is shown and saved as soon as it is measured
        results.append(bench_size(size, args.data, args.repeats))
        results[-1]["previous"] = previous(size, HERE / "results")
        show(results[-1:])
        targets = query_targets(results)
        target.write_text(
            json.dumps(
                {"machine": machine(), "when": stamp, "results": results, "report_targets": targets},
                indent=2,
                default=str,
            )
        )
    for name, value in query_targets(results).items():
        print(f"  {name}: {value if isinstance(value, str) else f'{value:.2f}'}")
    print(f"results: {target}")


if __name__ == "__main__":
    main()
