"""Small inline SVG charts drawn on the server (no script, no external library)."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H, PAD = 640, 220, 36


def lines(series: dict[str, dict[int, int]], title: str) -> str:
    """One line per station over hourly buckets (x: hour, y: items)."""
    hours = sorted({h for s in series.values() for h in s})
    top = max([v for s in series.values() for v in s.values()] or [1])
    x = (lambda i: PAD + i * (W - 2 * PAD) / max(1, len(hours) - 1))
    y = (lambda v: H - PAD - v * (H - 2 * PAD) / top)
    parts = [_frame(title, top)]
    for n, (station, points) in enumerate(sorted(series.items())):
        colour = PALETTE[n % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(points.get(h, 0)):.1f}" for i, h in enumerate(hours))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        parts += [f'<circle cx="{x(i):.1f}" cy="{y(points.get(h, 0)):.1f}" r="3" fill="{colour}"/>' for i, h in enumerate(hours)]
        parts.append(f'<text x="{W - PAD + 4}" y="{PAD + 14 * n}" fill="{colour}" font-size="11">{escape(station)}</text>')
    return _svg(parts, W + 80)


def bars(values: dict[str, float | None], title: str, percent: bool = True) -> str:
    """One bar per station; None draws no bar."""
    top = max([v for v in values.values() if v] or [1.0])
    step = (W - 2 * PAD) / max(1, len(values))
    parts = [_frame(title, round(top * 100, 1) if percent else top)]
    for n, (station, v) in enumerate(sorted(values.items())):
        x0 = PAD + n * step + 4
        if v:
            h = v * (H - 2 * PAD) / top
            parts.append(f'<rect x="{x0:.1f}" y="{H - PAD - h:.1f}" width="{step - 8:.1f}" height="{h:.1f}"'
                         f' fill="{PALETTE[n % len(PALETTE)]}"/>')
        label = "-" if v is None else (f"{v * 100:.1f}%" if percent else f"{v:g}")
        parts.append(f'<text x="{x0:.1f}" y="{H - PAD + 14}" font-size="11">{escape(station)} {label}</text>')
    return _svg(parts, W)


def _frame(title: str, top: float) -> str:
    return (f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
            f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#888"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>'
            f'<text x="2" y="{PAD + 4}" font-size="10">{top:g}</text>')


def _svg(parts: list[str], width: int) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" role="img">{"".join(parts)}</svg>'
