"""Small inline SVG charts drawn on the server (no script, no external library)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H, PAD = 640, 220, 36


def lines(series: dict[str, dict[int, int]], title: str, axes: tuple[str, str] = ("hour (UTC)", "items"),
          empty: str = "no data") -> str:
    """One line per station over hourly buckets (x: hour, y: items); `axes` names them; `empty` is drawn
    when there is nothing to draw."""
    hours = sorted({h for s in series.values() for h in s})
    if not hours:
        return _empty(title, empty)
    top = max([v for s in series.values() for v in s.values()] or [1])
    x = (lambda i: PAD + i * (W - 2 * PAD) / max(1, len(hours) - 1))
    y = (lambda v: H - PAD - v * (H - 2 * PAD) / top)
    parts = [_frame(title, top, axes)]
    ticks = sorted({0, len(hours) // 2, len(hours) - 1})
    parts += [f'<text class="tick" x="{x(i):.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">'
              f'{datetime.fromtimestamp(hours[i], UTC):%d/%m %H:00}</text>' for i in ticks]
    for n, (station, points) in enumerate(sorted(series.items())):
        colour = PALETTE[n % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(points.get(h, 0)):.1f}" for i, h in enumerate(hours))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        parts += [f'<circle cx="{x(i):.1f}" cy="{y(points.get(h, 0)):.1f}" r="3" fill="{colour}"/>' for i, h in enumerate(hours)]
        parts.append(f'<text x="{W - PAD + 4}" y="{PAD + 14 * n}" fill="{colour}" font-size="11">{escape(station)}</text>')
    return _svg(parts, W + 80)


def bars(values: dict[str, float | None], title: str, percent: bool = True, axes: tuple[str, str] = ("station", ""),
         empty: str = "no data") -> str:
    """One bar per station; None draws no bar; `empty` is drawn when no station has a value."""
    if all(v is None for v in values.values()):
        return _empty(title, empty)
    top = max([v for v in values.values() if v] or [1.0])
    step = (W - 2 * PAD) / max(1, len(values))
    parts = [_frame(title, round(top * 100, 1) if percent else top, (axes[0], axes[1] or ("%" if percent else "")))]
    for n, (station, v) in enumerate(sorted(values.items())):
        x0 = PAD + n * step + 4
        if v:
            h = v * (H - 2 * PAD) / top
            parts.append(f'<rect x="{x0:.1f}" y="{H - PAD - h:.1f}" width="{step - 8:.1f}" height="{h:.1f}"'
                         f' fill="{PALETTE[n % len(PALETTE)]}"/>')
        label = "-" if v is None else (f"{v * 100:.1f}%" if percent else f"{v:g}")
        parts.append(f'<text x="{x0:.1f}" y="{H - PAD + 14}" font-size="11">{escape(station)} {label}</text>')
    return _svg(parts, W)


def _frame(title: str, top: float, axes: tuple[str, str]) -> str:
    """Title, both axes with their names, the y axis' 0 and top."""
    return (f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
            f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#888"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>'
            f'<text x="2" y="{PAD + 4}" font-size="10">{top:g}</text>'
            f'<text x="2" y="{H - PAD}" font-size="10">0</text>'
            f'<text class="axis-x" x="{W - PAD}" y="{H - 4}" font-size="11" text-anchor="end">{escape(axes[0])}</text>'
            f'<text class="axis-y" x="2" y="{PAD - 8}" font-size="11">{escape(axes[1])}</text>')


def _empty(title: str, text: str) -> str:
    return _svg([f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
                 f'<text class="no-data" x="{W / 2}" y="{H / 2}" font-size="14" text-anchor="middle" fill="#666">'
                 f'{escape(text)}</text>'], W)


def _svg(parts: list[str], width: int) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" role="img">{"".join(parts)}</svg>'
