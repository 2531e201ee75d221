"""JSON text exactly as the reference files spell it, written by hand for speed.

The event logs were written by a JSON library that escapes ``/`` as ``\\/`` and every non-ASCII
character as ``\\uXXXX``, with no spaces between tokens; the song files use Python's default
``json.dumps`` spacing (``", "`` and ``": "``) and do not escape ``/``.  Building event lines from
pre-encoded fragments (see :mod:`musicstream.generate.sessions`) is several times faster than calling a
serializer per event, and lets the output match the real files byte for byte in style.
"""

from __future__ import annotations

import json


def log_str(value: str | None) -> str:
    """A string (or null) as it appears in an event log line: ASCII-only, with ``/`` escaped."""
    if value is None:
        return "null"
    return json.dumps(value).replace("/", "\\/")


def log_float(value: float | None) -> str:
    """A float (or null) as it appears in an event log line, e.g. ``246.30812`` or ``1540919166796.0``."""
    if value is None:
        return "null"
    return repr(float(value))


def song_file_text(record: dict[str, object]) -> str:
    """One song file: a single JSON object, default ``json.dumps`` spacing, no trailing newline."""
    return json.dumps(record)
