"""Rows a run keeps on disk until it stages them (rejects, files read), so memory stays bounded however many there
are. How a reject's raw text is stored: ``extract.values.raw_text``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import orjson

from musicstream.extract.values import raw_text


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
