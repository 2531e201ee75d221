"""Finding input files and reading them: song and log trees, gzip, hashing for the manifest.

Inputs are local paths or object-storage URLs (``s3://bucket/prefix``, through fsspec: ``pip install
'musicstream[s3]'``); credentials and endpoint come from the usual AWS variables. A URL names its files in the
manifest and the rejects table.
"""

from __future__ import annotations

import gzip
import operator
import os
from collections.abc import Iterable, Iterator
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
    """One input file: ``path`` as the manifest and rejects name it: absolute, symlinks resolved, so that one file
    reached through two paths (a link, ``./data`` and ``/abs/data``) is one file. A link that leads to no file
    (dangling, a loop) keeps its own path, so the reject names what the user has."""

    path: str
    kind: Kind
    size: int
    mtime_ns: int | None = None  # local files: st_mtime_ns; object storage: not used


def _is_input(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(SUFFIXES) and not name.startswith(".")


def kind_of_path(path: Path) -> Kind | None:
    for part in reversed(path.parts[:-1]):
        if part in _TREES:
            return _TREES[part]
    return None


def _real(path: str) -> str:
    """The file a local path leads to, or the path itself when it leads to no file."""
    real = os.path.realpath(path)
    return real if os.path.isfile(real) else path


def _folder_kind(folder: str) -> Kind | None:
    """The kind of the files in ``folder``: from its nearest song_data/log_data part."""
    for part in reversed(folder.split(os.sep)):
        if part in _TREES:
            return _TREES[part]
    return None


def _sniff(path: str | Path) -> Kind:
    """The kind of a file outside song_data/log_data trees, from its first bytes."""
    try:
        with open_input(path) as stored:
            handle = gzip.GzipFile(fileobj=stored) if str(path).lower().endswith(".gz") else stored
            head = handle.read(64 * 1024)
    except (OSError, EOFError, gzip.BadGzipFile):
        return "log"
    return "song" if b'"song_id"' in head and b'"page"' not in head else "log"


def is_url(path: str | Path) -> bool:
    """Whether ``path`` names object storage (``s3://…``) rather than a local file."""
    return isinstance(path, str) and "://" in path


HADOOP_SCHEMES = ("s3a", "s3n", "hdfs", "abfs", "abfss", "wasb", "wasbs", "viewfs")


def _filesystem(url: str) -> tuple[object, str]:
    """The fsspec file system serving ``url``, and the protocol to put back in front of its paths."""
    protocol = url.split("://", 1)[0].lower()
    if protocol in HADOOP_SCHEMES:
        raise InputError(
            f"{protocol}:// is a Hadoop file system: only the Spark engine reads it (--engine spark, with the "
            "Hadoop connector on the cluster); the local engine reads s3:// URLs"
        )
    try:
        import fsspec
    except ImportError:
        raise InputError(f"reading {protocol}:// needs fsspec and s3fs: pip install 'musicstream[s3]'") from None
    try:
        return fsspec.filesystem(protocol), protocol
    except (ImportError, ValueError) as exc:
        raise InputError(f"cannot read {protocol}:// URLs: {exc}. For S3: pip install 'musicstream[s3]'") from None


def in_hidden_folder(relative: str) -> bool:
    """Whether a path below the given root (``a/.ipynb_checkpoints/b.json``) passes through a hidden folder: the
    local walk does not enter those, and listings of URLs skip them the same way."""
    return any(part.startswith(".") for part in relative.strip("/").split("/")[:-1])


def _discover_url(url: str, found: list[InputFile]) -> None:
    listed = False
    for path, size, mtime_ns, kind in walk_url(url):
        listed = True
        if path is not None:
            found.append(InputFile(path, kind or _sniff(path), size, mtime_ns))
    if not listed:
        raise InputError(f"input path not found (or empty): {url}")


def walk_url(url: str) -> Iterator[tuple[str | None, int, int | None, Kind | None]]:
    """The input objects under an object-storage prefix, as ``walk_inputs`` gives local files: each URL, size,
    last-modified time (ns; S3 keeps whole seconds, and a load trusts a time only once it is two seconds old) and
    kind (None when only its bytes can tell). Every object listed yields, inputs or not (those with a path of None),
    so that a prefix with no objects at all can be told from one holding other files."""
    fs, protocol = _filesystem(url)
    try:
        listing = fs.find(url, detail=True)  # type: ignore[attr-defined]
    except Exception as exc:  # fsspec back ends raise their own types (botocore's among them)
        raise InputError(f"cannot list {url}: {exc}. Check the URL and the AWS_* variables") from None
    root = url.split("://", 1)[1].rstrip("/")
    for key, info in sorted(listing.items()):
        name = key.rsplit("/", 1)[-1]
        if info.get("type") != "file" or not _is_input(name) or in_hidden_folder(key[len(root) :]):
            yield None, 0, None, None
            continue
        modified = info.get("LastModified") or info.get("mtime")
        mtime_ns = int(modified.timestamp() * 1_000_000) * 1000 if hasattr(modified, "timestamp") else None
        yield f"{protocol}://{key}", int(info.get("size") or 0), mtime_ns, kind_of_path(Path(key))


def walk_inputs(root: str) -> Iterator[tuple[str, int, int | None, Kind | None]]:
    """The input files under the real folder ``root``, as ``discover`` finds them: each file's path (a link
    resolved), size, modification time and kind (None when only its bytes can tell). Nothing is read, so listing
    a folder again costs its ``stat`` calls only (``musicstream watch`` lists its folders this way at each poll).
    """
    # Plain strings, not Path objects, in this loop: pathlib interns every file name it parses, which would
    # keep about 50 bytes per file for the life of the process.
    for folder, dirs, files in os.walk(root, onerror=None, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folder_kind = _folder_kind(folder)
        for name in files:
            if not _is_input(name):
                continue
            path = os.path.join(folder, name)
            real, size, mtime_ns = _stat_input(path)
            kind = folder_kind or (_folder_kind(os.path.dirname(real)) if real != path else None)
            yield real, size, mtime_ns, kind


def _stat_input(path: str) -> tuple[str, int, int | None]:
    """A listed input's real path, size and modification time."""
    real = _real(path) if os.path.islink(path) else path  # resolving every path costs 0.07 ms each
    try:
        stat = os.stat(real)
        return real, stat.st_size, stat.st_mtime_ns
    except OSError:
        return real, 0, None  # a dangling link or unreadable entry: reading it will record why


def input_at(root: str, path: str) -> tuple[str, int, int | None] | None:
    """One path under the real folder ``root`` as ``walk_inputs(root)`` would list it now (its real path, size and
    modification time), or None when it would not: gone, a folder, not an input's name, under a hidden folder."""
    relative = os.path.relpath(path, root)
    if relative.startswith(os.pardir) or in_hidden_folder(relative.replace(os.sep, "/")):
        return None
    if not _is_input(os.path.basename(path)) or not os.path.lexists(path) or os.path.isdir(path):
        return None
    return _stat_input(path)


def discover(paths: Iterable[str | Path]) -> list[InputFile]:
    """Every input file under the given paths, sorted, each with its kind.

    A file's kind comes from the nearest ``song_data``/``log_data`` folder above it; files outside such trees
    are sniffed. Hidden folders (``.ipynb_checkpoints``) are not entered and symlinked folders are not
    followed, so a symlink loop cannot trap the walk.
    """
    found: list[InputFile] = []
    for given in paths:
        if is_url(given):
            _discover_url(str(given), found)
            continue
        root = Path(os.path.abspath(given))
        if not root.exists():
            raise InputError(f"input path not found: {given}")
        root = Path(os.path.realpath(root))  # once: the walk below follows no folder link, so its folders are real
        if root.is_file():
            kind = kind_of_path(root) or _sniff(root)
            stat = root.stat()
            found.append(InputFile(str(root), kind, stat.st_size, stat.st_mtime_ns))
            continue
        for path, size, mtime_ns, known in walk_inputs(str(root)):
            found.append(InputFile(path, known or _sniff(path), size, mtime_ns))
    return _sorted_unique(found)


def _sorted_unique(found: list[InputFile]) -> list[InputFile]:
    """Song files first, each kind by path; one entry per path (a file reached twice, through a link, is one: the
    last one found, as before). Sorted in place, without a dictionary or key tuples: a million listed files cost
    their listing and little more."""
    found.sort(key=operator.attrgetter("path"))  # stable: equal paths stay in the order found
    songs: list[InputFile] = []
    logs: list[InputFile] = []
    for number, f in enumerate(found):
        if number + 1 == len(found) or found[number + 1].path != f.path:
            (songs if f.kind == "song" else logs).append(f)
    found.clear()
    songs.extend(logs)
    return songs


def open_input(path: str | Path) -> IO[bytes]:
    """The stored bytes of a local file or an object-storage URL (fsspec), as a binary file object."""
    if not is_url(path):
        return open(path, "rb")
    fs, _ = _filesystem(str(path))
    try:
        return fs.open(str(path), "rb")  # type: ignore[attr-defined,no-any-return]
    except OSError:
        raise
    except Exception as exc:  # a back end's own error type: report it like an unreadable file
        raise OSError(f"cannot open {path}: {exc}") from None


def open_binary(path: str | Path) -> IO[bytes]:
    """The file's bytes, gunzipped when its name ends in .gz."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")
