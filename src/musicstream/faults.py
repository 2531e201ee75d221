"""Fault injection for the crash-safety and concurrency tests.

``MUSICSTREAM_KILL_AT=merge:insert_plays musicstream load ...`` sends SIGKILL to the process when it reaches that
point, exactly as the OOM killer or ``kill -9`` would. ``MUSICSTREAM_PAUSE_AT=merge:insert_plays`` makes it wait
there ``MUSICSTREAM_PAUSE_SECONDS`` (default 3) inside its transaction, first creating the file
``MUSICSTREAM_PAUSE_FILE`` when that is set (so that a test knows the run is there; it holds the process id
that paused); ``MUSICSTREAM_KILL_ONCE_FILE`` kills only the first process that creates it; with
``MUSICSTREAM_PAUSE_ONCE`` set, a point whose file exists already goes on at once (a retried
Spark task does not pause again). Spark executors get these variables from the driver (``engines/tasks.py``). Unset
(always, outside tests), ``point`` does nothing.
"""

from __future__ import annotations

import os
import signal
import time

KILL = "MUSICSTREAM_KILL_AT"
PAUSE = "MUSICSTREAM_PAUSE_AT"
VARIABLES = (
    KILL,
    PAUSE,
    "MUSICSTREAM_KILL_ONCE_FILE",
    "MUSICSTREAM_PAUSE_SECONDS",
    "MUSICSTREAM_PAUSE_FILE",
    "MUSICSTREAM_PAUSE_ONCE",
)


def point(name: str) -> None:
    if os.environ.get(KILL) == name:
        once = os.environ.get("MUSICSTREAM_KILL_ONCE_FILE")  # kill the first process to get here, not a retry
        if once:
            try:
                with open(once, "x", encoding="utf-8") as out:
                    out.write(str(os.getpid()))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE) == name:
        marker = os.environ.get("MUSICSTREAM_PAUSE_FILE")
        if marker and os.environ.get("MUSICSTREAM_PAUSE_ONCE") and os.path.exists(marker):
            return
        if marker:
            with open(marker, "w", encoding="utf-8") as out:
                out.write(str(os.getpid()))
        time.sleep(float(os.environ.get("MUSICSTREAM_PAUSE_SECONDS", "3")))
