"""musicstream: a music-streaming app's JSON song files and event logs → a PostgreSQL star schema.

Library entry points: :func:`musicstream.load.run_load`, :class:`musicstream.db.connection.Database`,
:class:`musicstream.config.Settings`.
"""

__version__ = "0.1.0"
