"""Browser and platform families from a user agent string.

Ordered substring rules, enough for the families a listening report shows; an unknown agent is "Other".
Order matters: Edge and Opera agents also say Chrome and Safari; Chrome agents also say Safari.
"""

from __future__ import annotations

_BROWSERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Edge", ("Edg/", "Edge/", "EdgA/", "EdgiOS/")),
    ("Opera", ("OPR/", "Opera")),
    ("Internet Explorer", ("MSIE ", "Trident/")),
    ("Firefox", ("Firefox/", "FxiOS/")),
    ("Chrome", ("Chrome/", "CriOS/", "Chromium/")),
    ("Safari", ("Safari/",)),
)
_PLATFORMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("iPhone", ("iPhone",)),
    ("iPad", ("iPad",)),
    ("Android", ("Android",)),
    ("Windows", ("Windows",)),
    ("Mac OS X", ("Macintosh", "Mac OS X")),
    ("Linux", ("Linux", "X11")),
)


def _family(agent: str, rules: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    if not agent:
        return "Unknown"
    for name, needles in rules:
        if any(needle in agent for needle in needles):
            return name
    return "Other"


def browser_family(agent: str) -> str:
    return _family(agent, _BROWSERS)


def platform_family(agent: str) -> str:
    return _family(agent, _PLATFORMS)
