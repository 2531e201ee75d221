"""What parsing alone costs: every log file of a data set through the load's reader (the native path, with its
Python fallback for odd lines), in this process, with no database, then the song files. Prints CPU and wall seconds
and microseconds per line. With the star floor (bench.py) it bounds what any load of these files can take here:
one core parsing while the other stores the rows is the best two cores can do.

    python benchmarks/parse_floor.py benchmarks/data/1m
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from musicstream.engines.read import LogTask, SongTask, parse_log, parse_songs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a folder with log_data/ and song_data/")
    args = parser.parse_args()
    logs = sorted(str(p) for p in (args.data / "log_data").rglob("*.json"))
    songs = sorted(str(p) for p in (args.data / "song_data").rglob("*.json"))

    cpu, wall = time.process_time(), time.perf_counter()
    lines = staged = csv_bytes = 0
    for path in logs:
        parsed = parse_log(LogTask(path, native=True))
        lines += parsed.lines
        staged += parsed.staged
        csv_bytes += len(parsed.csv)
    log_cpu, log_wall = time.process_time() - cpu, time.perf_counter() - wall

    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(songs), 2000):
        parse_songs(SongTask(tuple(songs[start : start + 2000])))
    song_cpu, song_wall = time.process_time() - cpu, time.perf_counter() - wall

    print(f"log files   {len(logs):>9,}  lines {lines:>11,}  plays {staged:>11,}  CSV {csv_bytes / 1e6:,.0f} MB")
    print(f"  parse     cpu {log_cpu:7.2f} s  wall {log_wall:7.2f} s  {log_cpu / max(lines, 1) * 1e6:5.2f} µs a line")
    print(f"song files  {len(songs):>9,}")
    print(f"  parse     cpu {song_cpu:7.2f} s  wall {song_wall:7.2f} s")


if __name__ == "__main__":
    main()
