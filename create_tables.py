"""The classic first step: (re)create the database schema, dropping any previous tables.

Usage: ``python create_tables.py [--yes]`` (uses MUSICSTREAM_DATABASE_URL, or the embedded PostgreSQL). The same
code as ``musicstream init --reset``: it lists the tables it drops with their row counts and, on a terminal,
asks first (``--yes`` skips the question). Not on a terminal it drops without asking, as the original script did.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import musicstream  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

try:
    from musicstream.cli import main
except ImportError as missing:  # a Python without the package's dependencies (not the project's .venv)
    print(
        f"error: musicstream is not installed for {sys.executable} (no module {missing.name!r}): run `make "
        f"setup-run` (or pip install -e .) and use .venv/bin/python {Path(__file__).name}",
        file=sys.stderr,
    )
    sys.exit(1)

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0)
    unknown = [a for a in args if a not in ("--yes", "-y")]
    if unknown:
        print(f"usage: python create_tables.py [--yes]; unknown argument {unknown[0]!r}", file=sys.stderr)
        sys.exit(2)
    answer = ["--yes"] if args or not sys.stdin.isatty() else []
    main(["init", "--reset", *answer], prog_name="create_tables.py")
