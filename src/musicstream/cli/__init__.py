"""The command line: parses arguments, calls the library, maps errors to messages and exit codes.

Exit codes: 0 success, 1 failure (a load that failed, a check that failed), 2 usage or configuration error,
130 interrupted (Ctrl-C).

- ``app.py``: the ``musicstream`` group, its global options, the settings files' defaults, and ``main``;
- ``output.py``: messages, the console, JSON and tables, and the one error line of a failure; ``console.py``:
  what the commands print (the load summary, the progress bar, status and check tables);
- ``load_commands.py`` (init, load, status, check), ``analysis_commands.py`` (report, query, sql, export),
  ``operate_commands.py`` (runs, rejects, forget, repair-names, roles, psql, config, generate).
"""

from musicstream.cli import analysis_commands, load_commands, operate_commands
from musicstream.cli.app import add_global_options, cli, main

__all__ = ["cli", "main"]

_COMMANDS = (load_commands, analysis_commands, operate_commands)  # imported for their commands, registered on cli
add_global_options()
