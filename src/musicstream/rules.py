"""The data contract's constants, defined once (docs/rules.md says what each rule means).

Every definition of a rule reads its constants here: the Python records (``transform/records.py``), the polars
reader (``engines/native.py``), the merge SQL (``sql/load/merge.sql``), the Spark SQL (``sql/spark/star.sql``) and
the checks (``sql/check/checks.sql``). The SQL files name them as ``{{name}}``: ``db/sqlfiles.read_sql`` writes
each in as a SQL literal (``sql_constants``), so both dialects get the same value from this module.
``tests/test_rules.py`` holds every file to these values.
"""

from __future__ import annotations

from decimal import Decimal

# Rule 3: a user's tier.
TIERS = ("free", "paid")

# Rule 1: a play's length in seconds is at least 0 and below this (a NextSong event with another is a reject).
MAX_LENGTH_S = 2_000_000

# Rule 6: a play matches a catalog track whose duration is within this many seconds of its length (inclusive).
MATCH_TOLERANCE_S = Decimal("1.0")

# Rule 6: a curly quote cut down to its low byte (U+2018 → U+0018, U+2019 → U+0019), and the quote it was.
CUT_QUOTES = {"\x18": "\u2018", "\x19": "\u2019"}

# Rule 7: the ids of inferred artists and tracks: a prefix, then the first characters of the md5 of their key.
INFERRED_ARTIST_PREFIX = "IA-"
INFERRED_TRACK_PREFIX = "IT-"
INFERRED_ID_HEX = 24  # md5 hex characters kept
KEY_SEPARATOR = chr(31)  # between the parts of an inferred track's key (title, artist id, length in ms)


def sql_constants() -> dict[str, str]:
    """Each constant as the SQL literal both dialects read alike, by its ``{{name}}`` in the .sql files."""
    return {
        "tiers": ", ".join(f"'{tier}'" for tier in TIERS),
        "max_length_s": str(MAX_LENGTH_S),
        "match_tolerance_s": str(MATCH_TOLERANCE_S),
        "match_tolerance_ms": str(int(MATCH_TOLERANCE_S * 1000)),
        "inferred_artist_prefix": f"'{INFERRED_ARTIST_PREFIX}'",
        "inferred_track_prefix": f"'{INFERRED_TRACK_PREFIX}'",
        "inferred_id_hex": str(INFERRED_ID_HEX),
        "key_separator_code": str(ord(KEY_SEPARATOR)),
    }
