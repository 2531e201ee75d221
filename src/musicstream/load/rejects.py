"""Rejected records, kept on disk until the run stages them, so memory stays bounded however many there are."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import orjson

RAW_LIMIT = 1 << 20  # a reject keeps at most 1 MiB of its raw text


def raw_text(raw: bytes | str) -> tuple[str, str]:
    """Storable raw text and a note: invalid UTF-8 shown as \\xNN, NUL as \\x00, cut at RAW_LIMIT."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")
    text = text.replace("\x00", "\\x00")
    if len(text) > RAW_LIMIT:
        return text[:RAW_LIMIT], f" (raw text cut to {RAW_LIMIT} of {len(text)} characters)"
    return text, ""


class RejectSink:
    """Rejects of a run: (file, line, reason, raw), spooled to a temporary file."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, file: str, line: int, reason: str, raw: bytes | str) -> None:
        text, note = raw_text(raw)
        self._file.write(orjson.dumps([file, line, reason + note, text]) + b"\n")
        self.count += 1

    def add_text(self, file: str, line: int, reason: str, text: str) -> None:
        """A reject whose raw text went through ``raw_text`` already (in a worker)."""
        self._file.write(orjson.dumps([file, line, reason, text]) + b"\n")
        self.count += 1

    def rows(self) -> Iterator[tuple[str, int, str, str]]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            file, number, reason, raw = orjson.loads(line)
            yield file, number, reason, raw

    def close(self) -> None:
        self._file.close()
