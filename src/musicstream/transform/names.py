"""Rule 6's reading of names: damage done to a name before publication undone, the same in every reader and engine.

``repair_name`` is the rule's one definition. The Python records (``transform/records.py``) call it through a
``NameReader``, the polars reader (``engines/native.py``) on the distinct names of a block that are not plain
printable ASCII, and the Spark engine's executors read the files with those two; ``repair_names`` (``ops``) runs
it over the names a database already holds. ``tests/test_names.py`` holds the paths to each other.
"""

from __future__ import annotations

from functools import lru_cache

from musicstream.rules import CUT_QUOTES

_CUT = str.maketrans(CUT_QUOTES)


def repair_name(name: str) -> str:
    """A song title or artist name as its artist wrote it.

    Double-encoded UTF-8 is undone as ``ftfy.fix_encoding`` undoes it (``BjÃ\\x83Â¶rk`` → ``Björk``), its
    re-decoding repeated while it still applies cleanly where ftfy stops a layer short; nothing else of ftfy
    applies: quotes, widths, ligatures and HTML entities stay as written. A curly quote cut
    down to its low byte is restored (``rules.CUT_QUOTES``: ``Don\\x19t`` → ``Don’t``). A name of plain
    printable ASCII is its own repair, without a look (``fix_encoding`` leaves ASCII as it is:
    ``tests/test_names.py`` holds the shortcut to it).
    """
    if name.isascii():
        return name.translate(_CUT) if not name.isprintable() else name
    return _repair(name)


@lru_cache(maxsize=1 << 14)
def _repair(name: str) -> str:
    import ftfy  # 0.1 s to import: paid only by a run that reads a name outside plain ASCII

    text, plan = ftfy.fix_encoding_and_explain(name)
    # ftfy undoes a layer of double encoding only while the text still looks bad to it, and stops one layer short
    # on a few (the sample's `SÃ\x83Â¥ng` → `SÃ¥ng`): once it has found a name re-encoded, the same re-decoding is
    # applied again while it still decodes cleanly (`SÃ¥ng` → `Sång`).
    while plan and all(step in ("encode", "decode") for step, _ in plan):
        try:
            again = ftfy.apply_plan(text, [(step, encoding) for step, encoding in plan])
        except UnicodeError:
            break
        if again == text:
            break
        text = again
    return text.translate(_CUT)


def needs_look(name: str) -> bool:
    """Whether ``repair_name`` may change the name: anything but plain printable ASCII."""
    return not (name.isascii() and name.isprintable())


def looks_damaged(name: str) -> bool:
    """A name the repair would still change, or that holds a control character (what ``check`` reports)."""
    return needs_look(name) and (repair_name(name) != name or any(c < " " or "\x7f" <= c < "\xa0" for c in name))


class NameReader:
    """Rule 6's reading of names for one input file: each name repaired (unless ``repair`` is off: names then stay
    exactly as given), and each repair noted with the line it was first seen on and how often it was made."""

    __slots__ = ("line", "repair", "repairs")

    def __init__(self, repair: bool = True) -> None:
        self.repair = repair
        self.line = 0  # the line being read, set by the reader before each record
        self.repairs: dict[str, tuple[str, int, int]] = {}  # original → (repaired, first line, count)

    def __call__(self, name: str) -> str:
        if not self.repair or (name.isascii() and name.isprintable()):
            return name
        fixed = repair_name(name)
        if fixed != name:
            self.note(name, fixed, self.line, 1)
        return fixed

    def note(self, original: str, repaired: str, line: int, count: int) -> None:
        """A repair made ``count`` times, first on ``line`` (the native reader notes its own repairs here)."""
        seen = self.repairs.get(original)
        self.repairs[original] = (
            (repaired, line, count) if seen is None else (seen[0], min(seen[1], line), seen[2] + count)
        )

    def rows(self, path: str, base: int = 0) -> list[tuple[str, str, str, int, int]]:
        """The repairs as (file, original, repaired, first line, count) rows; ``base`` lines added (a slice's)."""
        return [
            (path, original, repaired, line + base, count) for original, (repaired, line, count) in self.repairs.items()
        ]
