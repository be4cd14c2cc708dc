"""Charts drawn on the server as SVG: nothing is loaded from the internet.

Every text placed in a chart goes through ``html.escape``; the result is returned as
``markupsafe.Markup`` so the templates' autoescape leaves the drawing alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

from domain.health import fmt_money
from domain.portfolio import Cell

BAND_COLOURS = {"RED": "#d64545", "AMBER": "#e0a526", "GREEN": "#3c9a5f", "UNSCORED": "#9aa5b1"}


def _e(x: object) -> str:
    return escape(str(x), quote=True)


def score_chart(
    points: Sequence[tuple[datetime, float | None, str | None]],
    green_min: float,
    amber_min: float,
    width: int = 720,
    height: int = 240,
) -> Markup:
    """Score history (0-100) with the band thresholds as shaded zones."""
    pad_l, pad_r, pad_t, pad_b = 36, 12, 10, 28
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def y(score: float) -> float:
        return pad_t + h * (1 - score / 100)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart score-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="Health score history with band thresholds">'
    ]
    zones = (
        ("GREEN", 100, green_min),
        ("AMBER", green_min, amber_min),
        ("RED", amber_min, 0),
    )
    for band, hi, lo in zones:
        parts.append(
            f'<rect x="{pad_l}" y="{y(hi):.1f}" width="{w}" height="{y(lo) - y(hi):.1f}" '
            f'fill="{BAND_COLOURS[band]}" fill-opacity="0.12"><title>{band}</title></rect>'
        )
    for label, v in (("GREEN", green_min), ("AMBER", amber_min)):
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="{BAND_COLOURS[label]}" stroke-dasharray="4 3"/>'
            f'<text x="{pad_l + w - 4}" y="{y(v) - 3:.1f}" text-anchor="end" class="threshold">'
            f"{label} &#8805; {_e(f'{v:g}')}</text>"
        )
    for v in (0, 50, 100):
        parts.append(
            f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{v}</text>'
        )
    scored = [(t, s, b) for t, s, b in points if s is not None]
    if scored:
        t0 = scored[0][0].timestamp()
        span = max(scored[-1][0].timestamp() - t0, 1.0)

        def x(t: datetime) -> float:
            return pad_l + (w * (t.timestamp() - t0) / span if len(scored) > 1 else w / 2)

        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(s):.1f}"  # type: ignore[arg-type]
            for i, (t, s, _) in enumerate(scored)
        )
        parts.append(f'<path d="{path}" fill="none" stroke="#1f3a5f" stroke-width="2"/>')
        for t, s, b in scored:
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(s):.1f}" r="3" '  # type: ignore[arg-type]
                f'fill="{BAND_COLOURS.get(b or "UNSCORED", "#333")}">'
                f"<title>{t:%Y-%m-%d}: {_e(s)} {_e(b or '')}</title></circle>"
            )
        edges = [(scored[0][0], "start")]
        if len(scored) > 1:
            edges.append((scored[-1][0], "end"))
        for t, anchor in edges:
            parts.append(
                f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}" class="axis">'
                f"{t:%Y-%m-%d}</text>"
            )
    else:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no scored snapshot yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap(
    grid: dict[str, dict[str, Cell]], rows: Sequence[str], cols: Sequence[str], width: int = 560
) -> Markup:
    """Rows x columns, each cell's colour weighted by its share of the largest cell's ARR."""
    label_w, top, cell_h = 90, 26, 46
    cell_w = (width - label_w) / max(len(cols), 1)
    height = top + cell_h * len(rows) + 4
    biggest = max((c.arr for r in grid.values() for c in r.values()), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="ARR by tier and health band">'
    ]
    for j, col in enumerate(cols):
        parts.append(
            f'<text x="{label_w + cell_w * (j + 0.5):.1f}" y="17" text-anchor="middle" '
            f'class="axis">{_e(col)}</text>'
        )
    for i, row in enumerate(rows):
        yy = top + i * cell_h
        parts.append(
            f'<text x="{label_w - 8}" y="{yy + cell_h / 2 + 4:.1f}" text-anchor="end" '
            f'class="axis">{_e(row)}</text>'
        )
        for j, col in enumerate(cols):
            c = grid.get(row, {}).get(col, Cell())
            share = c.arr / biggest
            colour = BAND_COLOURS.get(col, "#1f3a5f")
            xx = label_w + j * cell_w
            parts.append(
                f'<g class="cell" data-row="{_e(row)}" data-col="{_e(col)}" data-arr="{c.arr:.0f}">'
                f'<rect x="{xx + 1:.1f}" y="{yy + 1}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" '
                f'fill="{colour}" fill-opacity="{0.08 + 0.8 * share:.2f}" rx="3">'
                f"<title>{_e(row)} / {_e(col)}: {c.accounts} accounts, {_e(fmt_money(c.arr))} ARR</title></rect>"
                f'<text x="{xx + cell_w / 2:.1f}" y="{yy + cell_h / 2 - 2}" text-anchor="middle" '
                f'class="cell-arr">{_e(fmt_money(c.arr))}</text>'
                f'<text x="{xx + cell_w / 2:.1f}" y="{yy + cell_h / 2 + 13}" text-anchor="middle" '
                f'class="cell-n">{c.accounts} acct</text></g>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[str, float | None]]]],
    width: int = 720,
    height: int = 220,
    lo: float = 0.8,
    hi: float = 1.2,
) -> Markup:
    """Percent lines over categorical x labels (retention by month)."""
    pad_l, pad_r, pad_t, pad_b = 44, 12, 10, 28
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    labels = [lab for lab, _ in series[0][1]] if series else []
    n = max(len(labels) - 1, 1)
    colours = ("#1f3a5f", "#3c9a5f", "#d64545")

    def x(i: int) -> float:
        return pad_l + w * i / n

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return pad_t + h * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-label="retention">'
    ]
    for v in (lo, 1.0, hi):
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ccd"/>'
            f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{v:.0%}</text>'
        )
    for i, lab in enumerate(labels):
        if i in (0, len(labels) - 1) or i % 3 == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle" class="axis">{_e(lab)}</text>'
            )
    for k, (name, pts) in enumerate(series):
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(v):.1f}"
            for i, (_, v) in enumerate(pts)
            if v is not None
        )
        if d:
            parts.append(
                f'<path d="{d}" fill="none" stroke="{colours[k % 3]}" stroke-width="2"><title>{_e(name)}</title></path>'
            )
        parts.append(
            f'<text x="{pad_l + 8 + 60 * k}" y="{pad_t + 12}" fill="{colours[k % 3]}" class="axis">{_e(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
