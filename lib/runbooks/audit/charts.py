"""Small inline SVG pictures for the audit site: a status strip per check across runs, and trend lines.

Plain SVG strings (no JavaScript, no external resources), so they render from disk and in print. Every
mark has a ``<title>`` (a tooltip: the run and its value) and, where it names a run, links to its page.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: a procedure page draws the same runs' links and labels on every check's strip: escaped once
_escape = functools.lru_cache(maxsize=8192)(escape)

STATUS_FILL = {"PASS": "#2e9e4f", "WARN": "#e0a800", "FAIL": "#c62828", "MISSED": "#1c1c1c", "": "#d5d8dc"}
CELL, GAP, LABEL_W = 9, 2, 0


@dataclass(frozen=True)
class Mark:
    """One run's mark on a strip: its status (``PASS``/``WARN``/``FAIL``, ``""`` when the check is absent)."""

    run_id: str
    href: str
    status: str
    label: str  #: tooltip


def status_strip(marks: Sequence[Mark], *, caption: str) -> str:
    """One row of squares, oldest left, coloured by status; absent checks are grey."""
    width = max(1, len(marks)) * (CELL + GAP)
    parts = [
        f'<svg class="strip" role="img" aria-label="{escape(caption)}" width="{width}" height="{CELL + 2}" '
        f'viewBox="0 0 {width} {CELL + 2}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, m in enumerate(marks):
        fill = STATUS_FILL.get(m.status, "#7f8c8d")
        x = i * (CELL + GAP)
        parts.append(
            f'<a href="{_escape(m.href)}"><rect x="{x}" y="1" width="{CELL}" height="{CELL}" fill="{fill}" '
            f'data-status="{_escape(m.status or "absent")}"><title>{_escape(m.label)}</title></rect></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Point:
    run_id: str
    href: str
    when: str  #: label of the x position (a date)
    value: float


def _fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {name}"
        return f"{value:.0f} B"
    if unit == "s":
        if abs(value) >= 7200:
            return f"{value / 3600:.1f} h"
        return f"{value / 60:.1f} min" if abs(value) >= 120 else f"{value:.1f} s"
    return f"{value:g}"


def trend(points: Sequence[Point], *, caption: str, unit: str, width: int = 640, height: int = 120) -> str:
    """A line of ``points`` (oldest left) with its min and max labelled; each point links to its run."""
    if not points:
        return f'<p class="muted">No {escape(caption)} recorded.</p>'
    lo, hi = min(p.value for p in points), max(p.value for p in points)
    span = (hi - lo) or 1.0
    left, right, top, bottom = 70, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top + plot_h - (v - lo) / span * plot_h

    coords = [xy(i, p.value) for i, p in enumerate(points)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [
        f'<svg class="trend" role="img" aria-label="{escape(caption)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{escape(_fmt(hi, unit))}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{escape(_fmt(lo, unit))}</text>',
        f'<text x="{left}" y="{height - 6}">{escape(points[0].when)}</text>',
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">{escape(points[-1].when)}</text>',
        f'<polyline fill="none" class="line" points="{line}"/>',
    ]
    if len(points) <= 200:  # individual marks stay clickable; beyond that the line alone reads better
        for (x, y), p in zip(coords, points, strict=True):
            parts.append(
                f'<a href="{escape(p.href)}"><circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" class="dot">'
                f"<title>{escape(p.when)} {escape(p.run_id)}: {escape(_fmt(p.value, unit))}</title></circle></a>"
            )
    parts.append("</svg>")
    return "".join(parts)
