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
from matplotlib.ticker import MaxNLocator

ACCENT = "#3b6fb6"
SECOND = "#e07b39"
CATALOG = "#2f8a4c"
_RC: Any = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10.5,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11.5,
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


# Charts are drawn 4.4 in (317 pt) wide: on a 390 px phone their box is about 330 px, so text keeps about its
# size (10 pt tick labels show at about 10 px); on a desktop column the whole chart scales up.
WIDTH = 4.4


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _data(artist: Any, name: str, index: int = 0) -> None:
    """Marks an artist (or each bar of a container) as the chart's data, by its SVG group's id: the browser test
    holds every tick to the data's extent."""
    if isinstance(artist, tuple):
        for n, part in enumerate(artist):
            part.set_gid(f"{name}-data-{index}-{n}")
    else:
        artist.set_gid(f"{name}-data-{index}")


def _short(label: str, limit: int = 52) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bars(
    name: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    figures: bool = True,
    colors: Sequence[str] | None = None,
) -> str:
    """Horizontal bars, largest on top, each named on a line above it, so that long names keep the chart's width.
    ``figures``: each bar's value written at its end (no value axis then); otherwise a value axis from 0 to the
    largest value."""
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH, 0.42 * max(len(labels), 2) + 0.5)
        ax = fig.add_subplot()
        positions = [float(i) for i in range(len(labels))][::-1]
        drawn = ax.barh(positions, values, height=0.42, color=list(colors) if colors else ACCENT, align="edge")
        _data(drawn, name)
        top = max(values, default=0) or 1
        for pos, label, value in zip(positions, labels, values, strict=True):
            ax.text(0, pos + 0.47, _short(label), va="bottom", ha="left", fontsize=10)
            if figures:
                ax.annotate(
                    f"{value:,.0f}", (value, pos + 0.21), xytext=(3, 0), textcoords="offset points", va="center"
                )
        ax.set_ylim(-0.1, len(labels) + 0.05)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        if figures:
            ax.set_xlim(0, top * 1.18)
            ax.set_xticks([])
            ax.spines["bottom"].set_visible(False)
        else:
            ax.set_xlim(0, top)
            ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.set_title(title, loc="left")
        return _svg(fig, name)


def columns(name: str, title: str, labels: Sequence[str], values: Sequence[float], ylabel: str) -> str:
    """Vertical columns, one per label, every third label shown; the value axis from 0 to the largest value."""
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH, 2.6)
        ax = fig.add_subplot()
        _data(ax.bar(range(len(labels)), values, color=ACCENT), name)
        ax.set_xticks(range(0, len(labels), 3), labels[::3])
        ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_ylim(0, max(values, default=0) or 1)
        ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        return _svg(fig, name)


def heatmap(name: str, title: str, rows: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Plays by weekday (rows) and hour (columns)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH, 2.6)
        ax = fig.add_subplot()
        image = ax.imshow(matrix, aspect="auto", cmap="Blues", interpolation="nearest")
        _data(image, name)
        ax.set_yticks(range(len(rows)), [r[:3] for r in rows])
        ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)])
        ax.set_xlabel("hour of day (UTC)")
        ax.set_title(title, loc="left")
        for spine in ax.spines.values():
            spine.set_visible(False)
        bar = fig.colorbar(image, ax=ax, label="plays", shrink=0.9)
        bar.locator = MaxNLocator(4, integer=True)
        bar.update_ticks()
        _data(bar.outline, name, 1)  # the colour bar spans exactly the smallest to the largest value
        return _svg(fig, name)


def daily(name: str, title: str, days: Sequence[Any], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """One panel per series over the same days, each with its own single value axis; the date axis spans exactly
    the first to the last day (no tick past the data)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH, 1.5 + 1.3 * len(series))
        axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
        for index, (ax, (label, values)) in enumerate(zip(axes, series, strict=True)):
            color = ACCENT if index == 0 else SECOND
            (line,) = ax.plot(days, values, color=color, marker="o", markersize=2.5)
            _data(line, name, index)
            _data(ax.fill_between(days, 0, values, color=color, alpha=0.12, linewidth=0), name, index + len(series))
            ax.set_ylabel(label)
            ax.set_ylim(0, max(values, default=0) or 1)
            ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
        axes[0].set_title(title, loc="left")
        last = axes[-1]
        if len(days) > 1:
            last.set_xlim(days[0], days[-1])
            locator = mdates.AutoDateLocator(minticks=3, maxticks=6)  # type: ignore[no-untyped-call]
            last.xaxis.set_major_locator(locator)
            # no offset text: a "2018-Dec" under the axis reads as a tick past the data; the years go in the label
            concise = mdates.ConciseDateFormatter(locator, show_offset=False)  # type: ignore[no-untyped-call]
            last.xaxis.set_major_formatter(concise)
            years = sorted({f"{day:%Y}" for day in (days[0], days[-1])})
            last.set_xlabel(f"day (UTC), {'–'.join(years)}")
        else:
            day = mdates.date2num(days[0])  # type: ignore[no-untyped-call]
            last.set_xlim(day - 0.5, day + 0.5)
            last.set_xticks([day], [f"{days[0]:%Y-%m-%d}"])
        return _svg(fig, name)
