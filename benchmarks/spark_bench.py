"""Local engine vs the Spark engine, in local mode (local[2]) and on a standalone cluster, on one cached data set:
load time, the merge's share, and peak memory by kind of process.

    python benchmarks/spark_bench.py                       # the 1M set of benchmarks/data (bench.py makes it)
    python benchmarks/spark_bench.py --data DIR --engines spark
    python benchmarks/spark_bench.py --database-url postgresql://user:pw@127.0.0.1:5432/postgres \
        --engines local spark cluster                      # + a standalone cluster (2 workers × 1 core, 1 GB)

Each load is `musicstream load --json` into a fresh database, in its own process: an embedded one, or with
`--database-url` a database created for the run on that server (the cluster's executors need one they reach over
TCP, so `cluster` needs `--database-url`; give it for every engine to compare on the same server). The cluster is
a master and two workers started from PySpark's bin/spark-class on 127.0.0.1 (tests/spark_cluster.py), each its own
JVM with its own executors. Memory is sampled every 0.2 s over every process on the machine, summed by kind (the
CLI, the local engine's parsing workers, the driver JVM, executor JVMs, PySpark's Python workers; the cluster's
daemons and PostgreSQL left out); the loader's own `peak_rss_mb` (the largest single process it saw) is beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data" / "1m"


KINDS = ("CLI", "parse workers", "driver JVM", "executor JVMs", "Python workers")


def _kind(pid: str, cli: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return None
    if b"CoarseGrainedExecutorBackend" in command:
        return "executor JVMs"
    if b"pyspark.daemon" in command or b"pyspark.worker" in command:
        return "Python workers"
    if b"org.apache.spark.deploy.SparkSubmit" in command:
        return "driver JVM"
    if int(pid) == cli:
        return "CLI"
    if b"multiprocessing" in command and _ancestor(int(pid), cli):
        return "parse workers"
    return None


def _ancestor(pid: int, root: int) -> bool:
    while pid > 1:
        if pid == root:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def rss_by_kind(cli: int) -> dict[str, float]:
    """Resident memory (MB) of this machine's processes of each kind in KINDS."""
    found = dict.fromkeys(KINDS, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        kind = _kind(entry.name, cli)
        if kind is None:
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        found[kind] += next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0) / 1024
    return found


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, float], str]:
    peak = dict.fromkeys(KINDS, 0.0)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for kind, mb in rss_by_kind(proc.pid).items():
                peak[kind] = max(peak[kind], mb)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{err[-3000:]}")
    return seconds, peak, out


@contextlib.contextmanager
def _database(url: str | None, name: str) -> Iterator[dict[str, str]]:
    """The environment of a run: a fresh embedded server, or a fresh database ``name`` on the server at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICSTREAM_", "PYSPARK_"))}
    home = Path(tempfile.mkdtemp(prefix="msb-", dir="/tmp"))
    env["MUSICSTREAM_HOME"] = str(home)
    if url is None:
        yield env
        shutil.rmtree(home, ignore_errors=True)
        return
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    env["MUSICSTREAM_DATABASE_URL"] = make_conninfo(url, dbname=name)
    try:
        yield env
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--engines", nargs="+", default=["local", "spark"], choices=["local", "spark", "cluster"])
    parser.add_argument("--database-url", help="a PostgreSQL server reached over TCP (needed for cluster)")
    args = parser.parse_args()
    if not (args.data / "log_data").is_dir():
        raise SystemExit(f"no data set at {args.data}: run `python benchmarks/bench.py` once to generate it")
    if "cluster" in args.engines and not args.database_url:
        raise SystemExit("--engines cluster needs --database-url: the executors connect to PostgreSQL over TCP")
    cli = [sys.executable, "-m", "musicstream"]
    print(
        "| engine | events read | wall s | events/s | merge s (share) | peak MB: "
        + " / ".join(KINDS)
        + " | loader peak_rss_mb |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    with contextlib.ExitStack() as stack:
        master = None
        if "cluster" in args.engines:
            sys.path.insert(0, str(HERE.parent / "tests"))
            from spark_cluster import standalone_cluster

            base = Path(tempfile.mkdtemp(prefix="msb-cluster-", dir="/tmp"))
            stack.callback(shutil.rmtree, base, True)
            master = stack.enter_context(standalone_cluster(base))["master"]
        for engine in args.engines:
            with _database(args.database_url, f"msb_{engine}") as env:
                subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
                command = [*cli, "load", "--engine", "local" if engine == "local" else "spark", "--json"]
                if engine == "cluster":
                    command += ["--master", str(master)]
                    env["PYSPARK_PYTHON"] = sys.executable  # the executors' Python: this one, which has musicstream
                seconds, peak, out = measure([*command, str(args.data)], env)
                run = json.loads(out)
                events = run["event_records"]
                merge = run["seconds"] - run["timings"].get("read_and_copy", 0.0)
                label = {"local": "local engine", "spark": "Spark local[2]", "cluster": "Spark cluster 2 × 1 core"}
                print(
                    f"| {label[engine]} | {events:,} | {seconds:.1f} | {events / seconds:,.0f} | "
                    f"{merge:.1f} ({merge / seconds:.0%}) | {' / '.join(f'{peak[k]:,.0f}' for k in KINDS)} | "
                    f"{run['peak_rss_mb']:,.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
