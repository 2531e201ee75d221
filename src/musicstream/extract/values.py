"""Reading bytes into JSON values: a song file's values with their line numbers, and what cannot be read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that cannot be loaded, and why."""

    reason: str


def iter_json_values(data: str) -> Iterator[tuple[int, Any, str]]:
    """The JSON values of a song file, as (line, value or Reject, raw text).

    A file may hold one object, a JSON array of objects, one object per line, or pretty-printed objects back to
    back (the way jq reads a stream). After a syntax error, reading resumes at the next line.
    """
    decoder = json.JSONDecoder()
    pos, end, line = 0, len(data), 1
    while True:
        start = pos
        while pos < end and data[pos] in " \t\r\n":
            pos += 1
        line += data.count("\n", start, pos)
        if pos >= end:
            return
        try:
            value, stop = decoder.raw_decode(data, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            nl = data.find("\n", pos)
            stop = end if nl < 0 else nl
            reason = f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            yield line, Reject(f"malformed JSON: {reason}"), data[pos:stop]
            pos = stop
            continue
        raw = data[pos:stop]
        if isinstance(value, list):
            for item in value:
                yield line, item, json.dumps(item, ensure_ascii=False)
        else:
            yield line, value, raw
        line += data.count("\n", pos, stop)
        pos = stop


RAW_LIMIT = 1 << 20  # a reject keeps at most 1 MiB of its raw text


def raw_text(raw: bytes | str) -> tuple[str, str]:
    """Storable raw text and a note: invalid UTF-8 shown as \\xNN, NUL as \\x00, cut at RAW_LIMIT."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")
    text = text.replace("\x00", "\\x00")
    if len(text) > RAW_LIMIT:
        return text[:RAW_LIMIT], f" (raw text cut to {RAW_LIMIT} of {len(text)} characters)"
    return text, ""
