"""The classic second step: load ./data (song_data/ and log_data/) into the star schema.

Usage: ``python etl.py [PATH ...]`` (default: the ``data`` folder beside this script). The same code as
``musicstream load``: bulk, atomic, re-runnable (files loaded before are skipped), bad records kept in the rejects
table; the same summary and exit codes (0 success, 1 failure, 2 usage).
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
    main(["load", *(args or [str(Path(__file__).resolve().parent / "data")])], prog_name="etl.py")
