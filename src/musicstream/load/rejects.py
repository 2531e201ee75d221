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


class RowSpool:
    """Rows of plain values (text, numbers, None) written to a temporary file and read back in order: a run keeps
    per-file and per-reject rows here, not in memory, so memory stays flat with a million files or rejects."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, row: tuple[object, ...]) -> None:
        self._file.write(orjson.dumps(row) + b"\n")
        self.count += 1

    def rows(self) -> Iterator[tuple[object, ...]]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield tuple(orjson.loads(line))

    def close(self) -> None:
        self._file.close()


class RejectSink:
    """Rejects of a run: (file, line, reason, raw), spooled to a temporary file."""

    def __init__(self) -> None:
        self._spool = RowSpool()

    @property
    def count(self) -> int:
        return self._spool.count

    def add(self, file: str, line: int, reason: str, raw: bytes | str) -> None:
        text, note = raw_text(raw)
        self._spool.add((file, line, reason + note, text))

    def add_text(self, file: str, line: int, reason: str, text: str) -> None:
        """A reject whose raw text went through ``raw_text`` already (in a worker)."""
        self._spool.add((file, line, reason, text))

    def rows(self) -> Iterator[tuple[str, int, str, str]]:
        for file, number, reason, raw in self._spool.rows():
            yield str(file), int(number), str(reason), str(raw)  # type: ignore[call-overload]

    def close(self) -> None:
        self._spool.close()
