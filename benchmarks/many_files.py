"""Memory with many small input files: a first load and a no-op re-run of N song files (one song each, as the
Million Song Dataset ships them), in a fresh embedded PostgreSQL. Prints wall seconds and the loader's peak
memory (VmHWM of its main process and workers, from `load --json`), and writes nothing under benchmarks/.

    python benchmarks/many_files.py                 # 1,000,000 files (generating them takes a few minutes)
    python benchmarks/many_files.py --files 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from musicstream.generate.many import write_song_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1_000_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="msb-files-"))
    env = {**os.environ, "MUSICSTREAM_HOME": str(scratch / "home")}
    env.pop("MUSICSTREAM_DATABASE_URL", None)
    cli = [sys.executable, "-m", "musicstream"]
    try:
        started = time.perf_counter()
        write_song_files(scratch / "data", args.files)
        print(f"{args.files:,} song files written in {time.perf_counter() - started:.0f} s", flush=True)
        subprocess.run([*cli, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        for label in ("first load", "no-op re-run"):
            started = time.perf_counter()
            done = subprocess.run(
                [*cli, "load", "--json", str(scratch / "data")], env=env, check=True, capture_output=True
            )
            run = json.loads(done.stdout)
            print(
                f"{label}: {time.perf_counter() - started:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB, "
                f"{run['files_read']:,} files read, {run['files_skipped']:,} skipped",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
