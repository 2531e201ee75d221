"""Fault injection for the crash-safety and concurrency tests.

``MUSICSTREAM_KILL_AT=merge:insert_plays musicstream load ...`` sends SIGKILL to the loader when it reaches that
point, exactly as the OOM killer or ``kill -9`` would. ``MUSICSTREAM_PAUSE_AT=merge:insert_plays`` makes it wait
there ``MUSICSTREAM_PAUSE_SECONDS`` (default 3) inside its transaction, first creating the file
``MUSICSTREAM_PAUSE_FILE`` when that is set (so that a test knows the run is there). Unset (always, outside tests),
``point`` does nothing.
"""

from __future__ import annotations

import os
import signal
import time

KILL = "MUSICSTREAM_KILL_AT"
PAUSE = "MUSICSTREAM_PAUSE_AT"


def point(name: str) -> None:
    if os.environ.get(KILL) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE) == name:
        marker = os.environ.get("MUSICSTREAM_PAUSE_FILE")
        if marker:
            with open(marker, "w", encoding="utf-8"):
                pass
        time.sleep(float(os.environ.get("MUSICSTREAM_PAUSE_SECONDS", "3")))
