"""Charts as inline SVG, drawn with matplotlib.

Why matplotlib: it writes plain SVG with no script, font or style fetched from anywhere, so the report opens
offline; it is the most widely installed, best-kept plotting library for Python; with ``svg.fonttype = 'none'``
text stays text (searchable, escaped by its XML writer) and with ``text.parse_math = False`` a ``$`` in a song
title is just a character. Altair would need Vega's JavaScript inlined (about 1 MB) and a converter.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.figure import Figure

ACCENT = "#3b6fb6"
SECOND = "#e07b39"
_RC: Any = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "svg.image_inline": True,
}
_XML_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ROOT_ATTRS = re.compile(r'\s(?:xmlns(?::\w+)?|width|height|version)="[^"]*"')


def _svg(fig: Figure, name: str) -> str:
    """The figure as an inline-ready <svg>: no XML prologue, metadata or namespace URLs; scales to its box."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": name}), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs for rare scripts: the browser's fonts still show them
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = _METADATA.sub("", _XML_HEAD.sub("", buffer.getvalue(), count=1))
    head_end = text.index(">")
    root = _ROOT_ATTRS.sub("", text[:head_end])
    root += f' role="img" aria-label="{name}" class="chart" preserveAspectRatio="xMidYMid meet"'
    return root + text[head_end:]


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _short(label: str, limit: int = 38) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bars(name: str, title: str, labels: Sequence[str], values: Sequence[float], xlabel: str) -> str:
    """Horizontal bars, largest on top."""
    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, 0.32 * max(len(labels), 3) + 0.9)
        ax = fig.add_subplot()
        positions = list(range(len(labels)))[::-1]
        ax.barh(positions, values, color=ACCENT)
        ax.set_yticks(positions, [_short(label) for label in labels])
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
        for pos, value in zip(positions, values, strict=True):
            ax.annotate(
                f"{value:,.0f}", (value, pos), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
            )
        return _svg(fig, name)


def columns(name: str, title: str, labels: Sequence[str], values: Sequence[float], ylabel: str) -> str:
    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, 3.0)
        ax = fig.add_subplot()
        ax.bar(range(len(labels)), values, color=ACCENT)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        return _svg(fig, name)


def heatmap(name: str, title: str, rows: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Plays by weekday (rows) and hour (columns)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(7.2, 3.0)
        ax = fig.add_subplot()
        image = ax.imshow(matrix, aspect="auto", cmap="Blues", interpolation="nearest")
        ax.set_yticks(range(len(rows)), [r[:3] for r in rows])
        ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
        ax.set_xlabel("hour of day (UTC)")
        ax.set_title(title, loc="left")
        for spine in ax.spines.values():
            spine.set_visible(False)
        fig.colorbar(image, ax=ax, label="plays", shrink=0.9)
        return _svg(fig, name)


def daily_line(name: str, title: str, days: Sequence[Any], listeners: Sequence[int], plays: Sequence[int]) -> str:
    with matplotlib.rc_context(_RC):
        fig = _figure(7.2, 3.0)
        ax = fig.add_subplot()
        ax.plot(days, listeners, color=ACCENT, marker="o", markersize=3, label="daily listeners")
        ax.set_ylabel("listeners", color=ACCENT)
        ax.set_ylim(bottom=0)
        other = ax.twinx()
        other.plot(days, plays, color=SECOND, linewidth=1, alpha=0.8, label="plays")
        other.set_ylabel("plays", color=SECOND)
        other.set_ylim(bottom=0)
        ax.set_title(title, loc="left")
        # Horizontal labels, short and spaced by the locator ("Nov", "05", "09", …; the year once), so that
        # they never overlap whatever the period's length.
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        return _svg(fig, name)
