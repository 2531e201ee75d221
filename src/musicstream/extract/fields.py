"""Typed access to JSON fields, with the lossless conversions of docs/rules.md ("Inputs").

Each getter returns the converted value or raises ``BadField`` with a reason fit for the rejects table.
"""

from __future__ import annotations

import math
from typing import Any

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class BadField(ValueError):
    """A field that is missing, or of a type that does not convert without loss."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


MAX_KEY_CHARS = 1000  # names and ids are index keys: PostgreSQL's btree entries hold at most about 2.7 kB


def key_text(obj: dict[str, Any], key: str) -> str:
    """A required text field that becomes (part of) an index key, so its length is bounded."""
    value = text(obj, key, required=True)
    assert value is not None
    if len(value) > MAX_KEY_CHARS:
        raise BadField(f"field '{key}' is longer than {MAX_KEY_CHARS} characters ({len(value)}), too long to index")
    return value


def text(obj: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    """A text field; numbers convert (an artist named 112); empty strings are None; NUL is refused."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise BadField(f"missing required field '{key}'")
        return None
    if isinstance(value, str):
        if "\x00" in value:
            raise BadField(f"field '{key}' contains a NUL character, which PostgreSQL text cannot hold")
        return value
    if isinstance(value, bool):
        raise BadField(f"field '{key}': expected text, got {_show(value)}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise BadField(f"field '{key}': expected text, got {_show(value)}")


def integer(
    obj: dict[str, Any], key: str, *, required: bool = False, lo: int = INT_MIN, hi: int = INT_MAX
) -> int | None:
    """An integer field; integral floats and numeric strings convert ("39" → 39)."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise BadField(f"missing required field '{key}'")
        return None
    result: int
    if isinstance(value, bool):
        raise BadField(f"field '{key}': expected an integer, got {_show(value)}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        stripped = value.strip()
        try:
            result = int(stripped)
        except ValueError:
            try:
                as_float = float(stripped)
            except ValueError:
                raise BadField(f"field '{key}': expected an integer, got {_show(value)}") from None
            if not as_float.is_integer():
                raise BadField(f"field '{key}': expected an integer, got {_show(value)}") from None
            result = int(as_float)
    else:
        raise BadField(f"field '{key}': expected an integer, got {_show(value)}")
    if not lo <= result <= hi:
        raise BadField(f"field '{key}': {result} is out of range")
    return result


def number(obj: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    """A finite number; numeric strings convert."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise BadField(f"missing required field '{key}'")
        return None
    if isinstance(value, bool):
        raise BadField(f"field '{key}': expected a number, got {_show(value)}")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise BadField(f"field '{key}': expected a number, got {_show(value)}") from None
    else:
        raise BadField(f"field '{key}': expected a number, got {_show(value)}")
    if not math.isfinite(result):
        raise BadField(f"field '{key}': expected a finite number, got {_show(value)}")
    return result
