"""What a process holds in memory, as /proc tells (the loader, its workers and Spark's JVM report it)."""

from __future__ import annotations


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM), in MB (this one by default); 0 where /proc does not tell."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
