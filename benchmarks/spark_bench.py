"""Local engine vs the Spark engine (local[2]) on one cached data set: load time and peak memory.

    python benchmarks/spark_bench.py                       # the 1M set of benchmarks/data (bench.py makes it)
    python benchmarks/spark_bench.py --data DIR --engines spark

Each load is `musicstream load --json` into a fresh embedded database, in its own process. Peak memory is sampled
every 0.2 s as the sum of the resident memory (RSS) of the command's whole process tree — the CLI, its parsing
workers, and for Spark the driver JVM and its Python workers — with the PostgreSQL server left out; the loader's
own `peak_rss_mb` (the largest single process, VmHWM) is reported beside it.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data" / "1m"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_rss_mb(root: int) -> float:
    """RSS of ``root`` and its descendants, PostgreSQL server processes excluded."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        name = status.split("\n", 1)[0].split()[-1]
        if name != "postgres":
            total += next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)
        stack += _children(pid)
    return total / 1024


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    peak = 0.0
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_mb(proc.pid))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--engines", nargs="+", default=["local", "spark"], choices=["local", "spark"])
    args = parser.parse_args()
    if not (args.data / "log_data").is_dir():
        raise SystemExit(f"no data set at {args.data}: run `python benchmarks/bench.py` once to generate it")
    cli = [sys.executable, "-m", "musicstream"]
    print("| engine | events read | wall s | events/s | peak RSS, process tree MB | loader peak_rss_mb |")
    print("|---|---:|---:|---:|---:|---:|")
    for engine in args.engines:
        home = Path(tempfile.mkdtemp(prefix="msb-", dir="/tmp"))
        env = {**os.environ, "MUSICSTREAM_HOME": str(home)}
        env.pop("MUSICSTREAM_DATABASE_URL", None)
        try:
            subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
            seconds, peak, out = measure([*cli, "load", "--engine", engine, "--json", str(args.data)], env)
            run = json.loads(out)
            events = run["event_records"]
            print(
                f"| {engine}{' local[2]' if engine == 'spark' else ''} | {events:,} | {seconds:.1f} | "
                f"{events / seconds:,.0f} | {peak:,.0f} | {run['peak_rss_mb']:,.0f} |",
                flush=True,
            )
        finally:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
