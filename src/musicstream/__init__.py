"""musicstream: a music-streaming app's JSON song files and event logs → a PostgreSQL star schema.

Library entry points: :func:`musicstream.run_load` (``api.py``, with :class:`musicstream.LoadOptions`, returning a
:class:`musicstream.LoadResult`), :class:`musicstream.db.connection.Database`, :class:`musicstream.config.Settings`.

The package reads as the pipeline: ``extract`` (files and bytes → JSON values and fields), ``transform`` (the
rules of the data contract on one record), ``engines`` (local processes or Spark: files → staging tables),
``load`` (one run: lock, merge, commit), ``db`` (connections, schema, bulk helpers), ``report`` and ``queries``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["LoadOptions", "LoadResult", "run_load"]

if TYPE_CHECKING:
    from musicstream.api import run_load
    from musicstream.load.state import LoadOptions
    from musicstream.load.stats import LoadResult


def __getattr__(name: str) -> Any:  # imported on first use: `import musicstream` stays cheap for the CLI
    if name == "run_load":
        from musicstream.api import run_load

        return run_load
    if name == "LoadOptions":
        from musicstream.load.state import LoadOptions

        return LoadOptions
    if name == "LoadResult":
        from musicstream.load.stats import LoadResult

        return LoadResult
    raise AttributeError(f"module 'musicstream' has no attribute {name!r}")


def main() -> None:
    """The ``musicstream`` command. The command line's modules are imported here, inside the interrupt's handling:
    a Ctrl-C while they load is one message and exit code 130 too, not a traceback."""
    import sys

    try:
        from musicstream.cli import main as command_line
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted — nothing was done\n")
        raise SystemExit(130) from None
    command_line()
