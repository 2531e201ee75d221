"""Finding input files and reading them: song and log trees, gzip, hashing for the manifest."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from musicstream.errors import InputError

Kind = Literal["song", "log"]
SUFFIXES = (".json", ".json.gz")
_TREES: dict[str, Kind] = {"song_data": "song", "log_data": "log"}
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file: ``path`` as the manifest and rejects name it (absolute, symlinks not resolved)."""

    path: str
    kind: Kind
    size: int


def _is_input(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(SUFFIXES) and not name.startswith(".")


def _kind_from_parts(path: Path) -> Kind | None:
    for part in reversed(path.parts[:-1]):
        if part in _TREES:
            return _TREES[part]
    return None


def _sniff(path: Path) -> Kind:
    """The kind of a file outside song_data/log_data trees, from its first bytes."""
    try:
        with open_binary(path) as handle:
            head = handle.read(64 * 1024)
    except (OSError, EOFError, gzip.BadGzipFile):
        return "log"
    return "song" if b'"song_id"' in head and b'"page"' not in head else "log"


def discover(paths: Iterable[str | Path]) -> list[InputFile]:
    """Every input file under the given paths, sorted, each with its kind.

    A file's kind comes from the nearest ``song_data``/``log_data`` folder above it; files outside such trees
    are sniffed. Hidden folders (``.ipynb_checkpoints``) are not entered and symlinked folders are not
    followed, so a symlink loop cannot trap the walk.
    """
    found: dict[str, InputFile] = {}
    for given in paths:
        root = Path(os.path.abspath(given))
        if not root.exists():
            raise InputError(f"input path not found: {given}")
        if root.is_file():
            kind = _kind_from_parts(root) or _sniff(root)
            found[str(root)] = InputFile(str(root), kind, root.stat().st_size)
            continue
        for folder, dirs, files in os.walk(root, onerror=None, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                if not _is_input(name):
                    continue
                path = Path(folder, name)
                try:
                    size = path.stat().st_size
                except OSError:
                    size = 0  # a dangling link or unreadable entry: reading it will record why
                kind = _kind_from_parts(path) or _sniff(path)
                found[str(path)] = InputFile(str(path), kind, size)
    return sorted(found.values(), key=lambda f: (f.kind != "song", f.path))


def open_binary(path: str | Path) -> IO[bytes]:
    """The file's bytes, gunzipped when its name ends in .gz."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")
