"""What parsing alone costs: every log file of a data set through the load's reader (the native path, with its
Python fallback for odd lines), in this process, with no database, then the song files. Prints CPU and wall seconds
and microseconds per line. With the star floor (bench.py) it bounds what any load of these files can take here:
one core parsing while the other stores the rows is the best two cores can do.

    python benchmarks/parse_floor.py benchmarks/data/1m
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from musicstream.engines.read import LogTask, SongTask, parse_log, parse_songs


@dataclass
class ParseCost:
    """What the load's reader alone costs on a data set's files, in one process."""

    log_files: int
    lines: int
    plays: int
    csv_bytes: int
    log_cpu: float
    log_wall: float
    song_files: int
    song_cpu: float
    song_wall: float

    @property
    def cpu(self) -> float:
        return self.log_cpu + self.song_cpu


def parse_cost(data: Path) -> ParseCost:
    """Every log file under ``data``/log_data through the reader (native path, Python fallback for odd lines), then
    the song files, in this process, with no database; CPU counts every thread of the process."""
    logs = sorted(str(p) for p in (data / "log_data").rglob("*.json"))
    songs = sorted(str(p) for p in (data / "song_data").rglob("*.json"))

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
    return ParseCost(len(logs), lines, staged, csv_bytes, log_cpu, log_wall, len(songs), song_cpu, song_wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a folder with log_data/ and song_data/")
    args = parser.parse_args()
    cost = parse_cost(args.data)
    print(
        f"log files   {cost.log_files:>9,}  lines {cost.lines:>11,}  plays {cost.plays:>11,}  "
        f"CSV {cost.csv_bytes / 1e6:,.0f} MB"
    )
    print(
        f"  parse     cpu {cost.log_cpu:7.2f} s  wall {cost.log_wall:7.2f} s  "
        f"{cost.log_cpu / max(cost.lines, 1) * 1e6:5.2f} µs a line"
    )
    print(f"song files  {cost.song_files:>9,}")
    print(f"  parse     cpu {cost.song_cpu:7.2f} s  wall {cost.song_wall:7.2f} s")


if __name__ == "__main__":
    main()
