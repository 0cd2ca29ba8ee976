"""Charts of the evaluation figures, drawn on the server as inline SVG.

No chart library and nothing fetched from a CDN: the pages must work on an intranet
and in WeChat's browser, and a chart must not be an empty box when a script fails.
Every label is Chinese (months as 「11月」, rates as 「85%」); a value that is not
given (样本不足) is a gap in a line, or a note in place of a bar.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

COLOURS = ("#c0392b", "#2471a3", "#229954", "#b9770e", "#7d3c98", "#17a589", "#566573")


def month_label(month: str, first: bool = False) -> str:
    """``2026-11`` → ``11月`` (``2026年11月`` for the first label and each January)."""
    year, number = month.split("-")
    return f"{year}年{int(number)}月" if first or number == "01" else f"{int(number)}月"


def _heading(title: str) -> str:
    return (
        f'<text x="4" y="18" font-size="15" font-weight="bold" fill="#333">{escape(title)}</text>'
    )


def _colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def line_chart(
    title: str, months: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> Markup:
    """One line per series over ``months`` (values in percent, None: a gap)."""
    left, right, top, bottom = 44, 12, 36, 28
    width, plot_height = 600, 180
    legend_rows = (len(series) + 2) // 3
    height = top + plot_height + bottom + 20 * legend_rows
    plot_width = width - left - right
    step = plot_width / max(len(months) - 1, 1)

    def x(i: int) -> float:
        return left + (i * step if len(months) > 1 else plot_width / 2)

    def y(value: float) -> float:
        return top + plot_height - value / 100 * plot_height

    parts = [
        f'<svg class="chart line" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        _heading(title),
    ]
    for level in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="#666">{level}%</text>'
        )
    label_every = max(1, -(-len(months) // 8))
    for i, month in enumerate(months):
        if i % label_every == 0 or i == len(months) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{top + plot_height + 18}" text-anchor="middle" '
                f'font-size="11" fill="#666">{month_label(month, first=i == 0)}</text>'
            )
    for index, (name, values) in enumerate(series):
        colour = _colour(index)
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append((x(i), y(value)))
        for run in runs:
            if len(run) > 1:
                path = " ".join(
                    f"{'M' if n == 0 else 'L'}{px:.1f},{py:.1f}" for n, (px, py) in enumerate(run)
                )
                parts.append(
                    f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
                    f'stroke-linejoin="round"/>'
                )
            for px, py in run:
                parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}"/>')
        row, column = divmod(index, 3)
        lx, ly = left + column * 190, top + plot_height + bottom + 8 + row * 20
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="14" height="10" fill="{colour}"/>'
            f'<text x="{lx + 20}" y="{ly + 9}" font-size="12" fill="#333">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    title: str, measures: Sequence[str], groups: Sequence[tuple[str, Sequence[float | None]]]
) -> Markup:
    """Horizontal bars: a group per unit, a bar per measure (percent; None: 样本不足)."""
    label_width, right, top = 120, 44, 32
    width = 440
    bar, gap = 12, 14
    group_height = bar * len(measures) + gap
    legend_top = top + group_height * len(groups) + 4
    height = legend_top + 24
    plot_width = width - label_width - right
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        _heading(title),
    ]
    for level in (0, 50, 100):
        gx = label_width + plot_width * level / 100
        parts.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{top}" y2="{legend_top - 4}" '
            f'stroke="#ddd" stroke-width="1"/>'
        )
    for g, (name, values) in enumerate(groups):
        gy = top + g * group_height
        parts.append(
            f'<text x="{label_width - 8}" y="{gy + bar * len(measures) / 2 + 4:.1f}" '
            f'text-anchor="end" font-size="12" fill="#333">{escape(name)}</text>'
        )
        for m, value in enumerate(values):
            by = gy + m * bar
            if value is None:
                parts.append(
                    f'<text x="{label_width + 4}" y="{by + bar - 2}" font-size="10" '
                    f'fill="#999">样本不足</text>'
                )
                continue
            length = max(plot_width * value / 100, 1.5)
            parts.append(
                f'<rect x="{label_width}" y="{by}" width="{length:.1f}" height="{bar - 2}" '
                f'fill="{_colour(m)}"><title>{escape(measures[m])} {value:.1f}%</title></rect>'
                f'<text x="{label_width + length + 4:.1f}" y="{by + bar - 2}" font-size="10" '
                f'fill="#333">{value:.0f}%</text>'
            )
    for m, measure in enumerate(measures):
        lx = label_width + m * 90
        parts.append(
            f'<rect x="{lx}" y="{legend_top + 6}" width="14" height="10" fill="{_colour(m)}"/>'
            f'<text x="{lx + 20}" y="{legend_top + 15}" font-size="12" '
            f'fill="#333">{escape(measure)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
