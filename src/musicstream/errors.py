"""One exception root, so that the CLI can turn every expected failure into a clear message.

Each message ends with what to do next.
"""

from __future__ import annotations


class MusicstreamError(Exception):
    """Root of every error musicstream raises on purpose."""

    exit_code = 1


class ConfigError(MusicstreamError):
    """The configuration (database URL, paths, options) is not usable."""

    exit_code = 2


class DatabaseError(MusicstreamError):
    """The database could not be reached or refused an operation."""


class SchemaError(MusicstreamError):
    """The database schema is missing or newer than this version of musicstream."""


class InputError(MusicstreamError):
    """An input path cannot be read at all (a bad record is a reject, not an error)."""


class LoadError(MusicstreamError):
    """A load failed; the database is as it was before the run."""


class TooManyRejects(LoadError):
    """More records were rejected than --max-rejects allows; the run was rolled back."""


class EngineError(MusicstreamError):
    """An engine cannot run here: a missing optional package or runtime (PySpark, Java, a Hadoop connector)."""


class ExportError(MusicstreamError):
    """An export cannot write its files: they exist already (without --overwrite) or the folder cannot be written."""


class QueryError(MusicstreamError):
    """A query the user wrote failed in the database (a syntax error, an unknown table or column, ...)."""
