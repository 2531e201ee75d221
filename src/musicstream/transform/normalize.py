"""Name normalisation for matching plays to the catalog (rule 6)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=1 << 16)
def name_key(name: str) -> str:
    """Unicode NFKC, case-folded, runs of white space collapsed to one space, trimmed.

    Plays repeat the same few thousand names, so the cache saves most of the cost.
    """
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def length_ms(seconds: float) -> int:
    """A play's length to the millisecond, the precision inferred tracks are keyed on (rule 7)."""
    return round(seconds * 1000)
