"""Tiny inline-SVG charts, so ``report.html`` needs no scripts, fonts or network.

Two shapes cover the report: grouped bars (recall per condition / per category) and
lines (training curves). Values are drawn as numbers too, so a chart is readable even
where colours are not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#1a73e8", "#f29900", "#0f9d58", "#9334e6", "#d93025", "#5f6368", "#12a4af", "#e52592")
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if v <= step * 5:
            return step * 5
    return v * 1.1


def bar_chart(
    groups: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[str],
    *,
    colors: Sequence[str] = PALETTE,
    title: str = "",
    y_max: float | None = 1.0,
    fmt: Callable[[float], str] = _pct,
    width: int = 640,
    height: int = 280,
) -> str:
    """Grouped vertical bars: one group per label, one bar per series (``None`` = no bar)."""
    left, right, top, bottom = 44, 12, 40 if title else 18, 56
    legend_h = 20 if len(series) > 1 else 0
    plot_w, plot_h = width - left - right, height - top - bottom - legend_h
    vals = [v for _, vs in groups for v in vs if v is not None]
    ymax = y_max if y_max is not None else _nice_max(max(vals, default=0.0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="{escape(title)}" style="max-width:{width}px;{FONT}">']
    if title:
        parts.append(f'<text x="{left}" y="18" font-size="14" font-weight="600" fill="#202124">{escape(title)}</text>')
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5f6368">'
                     f'{escape(fmt(ymax * i / 4))}</text>')
    n = max(len(groups), 1)
    gw = plot_w / n
    bw = min(48.0, gw * 0.8 / max(len(series), 1))
    for gi, (label, vs) in enumerate(groups):
        x0 = left + gi * gw + (gw - bw * len(series)) / 2
        for si, v in enumerate(vs):
            if v is None:
                continue
            h = max(0.0, min(v / ymax, 1.0)) * plot_h if ymax else 0.0
            x, y = x0 + si * bw, top + plot_h - h
            color = colors[si % len(colors)]
            parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="{color}" rx="2">'
                         f'<title>{escape(label)} · {escape(series[si])}: {escape(fmt(v))}</title></rect>')
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle" '
                         f'fill="#202124">{escape(fmt(v))}</text>')
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{top + plot_h + 16:.1f}" font-size="11" '
                     f'text-anchor="middle" fill="#202124">{escape(short)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9aa0a6"/>')
    if legend_h:
        parts.append(_legend(series, colors, left, height - 10))
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: Sequence[str], colors: Sequence[str], x: float, y: float) -> str:
    out = []
    for i, name in enumerate(names):
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colors[i % len(colors)]}" rx="2"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{y:.1f}" font-size="11" fill="#202124">{escape(name)}</text>')
        x += 24 + 6.5 * len(name)
    return "".join(out)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    colors: Sequence[str] = PALETTE,
    title: str = "",
    x_label: str = "",
    fmt: Callable[[float], str] = lambda v: f"{v:.2f}",
    width: int = 640,
    height: int = 280,
) -> str:
    """Lines through (x, y) points; a series with one point is drawn as a dot."""
    pts = [p for _, ps in series for p in ps]
    if not pts:
        return ""
    left, right, top, bottom = 48, 12, 36 if title else 12, 44
    legend_h = 20
    plot_w, plot_h = width - left - right, height - top - bottom - legend_h
    xmin, xmax = min(p[0] for p in pts), max(p[0] for p in pts)
    ymin, ymax = min(0.0, min(p[1] for p in pts)), _nice_max(max(p[1] for p in pts))
    xspan = (xmax - xmin) or 1.0
    yspan = (ymax - ymin) or 1.0

    def sx(x: float) -> float:
        return left + (x - xmin) / xspan * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - ymin) / yspan * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="{escape(title)}" style="max-width:{width}px;{FONT}">']
    if title:
        parts.append(f'<text x="{left}" y="18" font-size="14" font-weight="600" fill="#202124">{escape(title)}</text>')
    for i in range(5):
        v = ymin + yspan * i / 4
        y = sy(v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5f6368">{escape(fmt(v))}</text>')
    for i in range(5):
        x = xmin + xspan * i / 4
        label = f"{x:.0f}" if xspan >= 4 else f"{x:.2g}"
        parts.append(f'<text x="{sx(x):.1f}" y="{top + plot_h + 16:.1f}" font-size="11" text-anchor="middle" '
                     f'fill="#5f6368">{escape(label)}</text>')
    if x_label:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32:.1f}" font-size="11" '
                     f'text-anchor="middle" fill="#5f6368">{escape(x_label)}</text>')
    for si, (name, ps) in enumerate(series):
        color = colors[si % len(colors)]
        ps = sorted(ps)
        if len(ps) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ps)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(ps) <= 30:
            for x, y in ps:
                parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                             f'<title>{escape(name)} @ {x:g}: {escape(fmt(y))}</title></circle>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9aa0a6"/>')
    parts.append(_legend([n for n, _ in series], colors, left, height - 8))
    parts.append("</svg>")
    return "".join(parts)
