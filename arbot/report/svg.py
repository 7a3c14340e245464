"""Tiny dependency-free SVG charts for self-contained HTML reports.

Reports must open from a file on a machine with no network and no plotting library,
so the charts are plain SVG strings: a line chart (several series, optional markers)
and a histogram. Values are floats; x may be epoch seconds (shown as UTC times).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

WIDTH = 720
HEIGHT = 260
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MAX_POINTS = 2000  # per series; longer series are thinned (min/max per bucket kept)


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str | None = None
    step: bool = False


@dataclass
class Markers:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str = "#000000"
    symbol: str = "circle"  # circle | up | down


@dataclass
class _Frame:
    x0: float
    x1: float
    y0: float
    y1: float
    lines: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        span = self.x1 - self.x0 or 1.0
        return MARGIN_LEFT + (value - self.x0) / span * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, value: float) -> float:
        span = self.y1 - self.y0 or 1.0
        return (
            HEIGHT
            - MARGIN_BOTTOM
            - (value - self.y0) / span * (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)
        )


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float, time_axis: bool, span: float) -> str:
    if time_axis:
        moment = datetime.fromtimestamp(value, tz=UTC)
        return moment.strftime("%H:%M:%S" if span < 86_400 else "%m-%d %H:%M")
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.4g}"


def _thin(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    bucket = math.ceil(len(points) / (MAX_POINTS / 2))
    out: list[tuple[float, float]] = []
    for start in range(0, len(points), bucket):
        chunk = points[start : start + bucket]
        low = min(chunk, key=lambda p: p[1])
        high = max(chunk, key=lambda p: p[1])
        out.extend(sorted({low, high}))
    return out


def _open(title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]


def _axes(frame: _Frame, time_axis: bool, y_label: str) -> list[str]:
    out = []
    bottom = HEIGHT - MARGIN_BOTTOM
    out.append(
        f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{WIDTH - MARGIN_RIGHT}" y2="{bottom}" '
        'stroke="#444"/>'
    )
    out.append(
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{bottom}" '
        'stroke="#444"/>'
    )
    for tick in _nice_ticks(frame.y0, frame.y1):
        y = frame.y(tick)
        out.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - MARGIN_RIGHT}" y2="{y:.1f}" '
            'stroke="#eee"/>'
        )
        out.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_label(tick, False, 0))}</text>"
        )
    span = frame.x1 - frame.x0
    for tick in _nice_ticks(frame.x0, frame.x1, 6):
        x = frame.x(tick)
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(_label(tick, time_axis, span))}</text>"
        )
    if y_label:
        out.append(
            f'<text x="14" y="{(MARGIN_TOP + bottom) / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(MARGIN_TOP + bottom) / 2:.1f})">{escape(y_label)}</text>'
        )
    return out


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    markers: Sequence[Markers] = (),
    y_label: str = "",
    time_axis: bool = True,
) -> str:
    """Lines (``step=True`` for cumulative values such as PnL) with optional markers."""
    xs = [p[0] for s in series for p in s.points] + [p[0] for m in markers for p in m.points]
    ys = [p[1] for s in series for p in s.points] + [p[1] for m in markers for p in m.points]
    parts = _open(title)
    if not xs:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">'
            "no data</text></svg>"
        )
        return "\n".join(parts)
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
    frame = _Frame(min(xs), max(xs), y0 - pad, y1 + pad)
    parts += _axes(frame, time_axis, y_label)
    legend_x = WIDTH - MARGIN_RIGHT
    for index, line in enumerate(series):
        colour = line.colour or COLOURS[index % len(COLOURS)]
        points = _thin(line.points)
        coords: list[str] = []
        previous_y: float | None = None
        for x, y in points:
            if line.step and previous_y is not None:
                coords.append(f"{frame.x(x):.1f},{frame.y(previous_y):.1f}")
            coords.append(f"{frame.x(x):.1f},{frame.y(y):.1f}")
            previous_y = y
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.4" '
            f'points="{" ".join(coords)}"/>'
        )
        legend_x -= 8 + 7 * len(line.name)
        parts.append(f'<text x="{legend_x}" y="16" fill="{colour}">{escape(line.name)}</text>')
    for mark in markers:
        for x, y in mark.points[:MAX_POINTS]:
            cx, cy = frame.x(x), frame.y(y)
            if mark.symbol in ("up", "down"):
                tip = -4 if mark.symbol == "up" else 4
                shape = (
                    f"M{cx - 4:.1f},{cy - tip * 0.75:.1f} L{cx + 4:.1f},{cy - tip * 0.75:.1f} "
                    f"L{cx:.1f},{cy + tip:.1f} Z"
                )
                parts.append(f'<path d="{shape}" fill="{mark.colour}"/>')
            else:
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{mark.colour}"/>')
        legend_x -= 8 + 7 * len(mark.name)
        parts.append(f'<text x="{legend_x}" y="16" fill="{mark.colour}">{escape(mark.name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def histogram(title: str, values: Sequence[float], *, bins: int = 30, x_label: str = "") -> str:
    """Counts of ``values`` in ``bins`` equal-width bins."""
    parts = _open(title)
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">'
            "no data</text></svg>"
        )
        return "\n".join(parts)
    low, high = min(finite), max(finite)
    if high == low:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / bins
    counts = [0] * bins
    for value in finite:
        counts[min(int((value - low) / width), bins - 1)] += 1
    frame = _Frame(low, high, 0.0, max(counts) * 1.05)
    parts += _axes(frame, False, "count")
    for index, count in enumerate(counts):
        if not count:
            continue
        x = frame.x(low + index * width)
        x_end = frame.x(low + (index + 1) * width)
        y = frame.y(count)
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(x_end - x - 1, 1):.1f}" '
            f'height="{HEIGHT - MARGIN_BOTTOM - y:.1f}" fill="{COLOURS[0]}"/>'
        )
    if x_label:
        parts.append(
            f'<text x="{(MARGIN_LEFT + WIDTH - MARGIN_RIGHT) / 2}" y="{HEIGHT - 4}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
