"""Charts of a campaign as SVG drawn on the server: no JavaScript library, nothing fetched at run time.

Three charts serve the dashboard:

- :func:`line_chart`: series against the experiment number (the best value
  so far as a step line over the individual observations);
- :func:`error_scatter`: the model's prediction against the measurement, with
  ±1σ error bars and the line of perfect agreement (a parity plot);
- :func:`pareto_scatter`: two objectives against each other, the
  non-dominated points highlighted and joined.

Every function returns one ``<svg>`` element as text, with a ``viewBox`` so
the page can scale it, an ``aria-label`` naming the chart, a ``<title>`` on
each marker (the browser shows it on hover), and ``data-x``/``data-y`` on
each marker holding the plotted values. Axis ranges are extended to "nice"
round numbers (1, 2 or 5 times a power of ten), as plotting libraries do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

#: Colours of the series, chosen to stay distinguishable for common colour-vision deficiencies.
BLUE = "#2563eb"
ORANGE = "#ea580c"
GREY = "#94a3b8"
INK = "#1e293b"
MUTED = "#64748b"
GRID = "#e2e8f0"


@dataclass(frozen=True)
class Layout:
    """The size of a chart and the margins around its plotting area, in SVG user units (px).

    Args:
        width: total width.
        height: total height.
        left: margin for the y tick labels and axis label.
        right: margin right of the plot.
        top: margin for the legend.
        bottom: margin for the x tick labels and axis label.
    """

    width: int = 560
    height: int = 300
    left: int = 68
    right: int = 18
    top: int = 30
    bottom: int = 48

    def __post_init__(self) -> None:
        if self.width <= self.left + self.right:
            raise ValueError(f"width: {self.width} leaves no room between the margins")
        if self.height <= self.top + self.bottom:
            raise ValueError(f"height: {self.height} leaves no room between the margins")

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:
        """The bottom of the plot (SVG y grows downwards)."""
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:
        return float(self.top)


def nice_step(span: float, count: int) -> float:
    """The round step (1, 2 or 5 × 10^k) giving about ``count`` intervals over ``span``.

    Args:
        span: the width of the range (> 0).
        count: the wanted number of intervals (≥ 1).

    Returns:
        The step.
    """
    if span <= 0 or not math.isfinite(span):
        raise ValueError(f"span: must be positive and finite, not {span!r}")
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for mantissa in (1, 2, 5, 10):
        if raw <= mantissa * power * (1 + 1e-9):
            return mantissa * power
    return 10 * power


class LinearScale:
    """Maps data values on a nice range linearly onto pixels.

    Args:
        lo: the smallest value to show.
        hi: the largest value to show (may equal ``lo``: the range is widened).
        pixel_lo: the pixel of the range's low end.
        pixel_hi: the pixel of the range's high end.
        ticks: about how many tick intervals to use.
        integer: ticks only at whole numbers (experiment numbers).
    """

    def __init__(self, lo: float, hi: float, pixel_lo: float, pixel_hi: float, ticks: int = 5,
                 integer: bool = False):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"lo, hi: the range must be finite, not {lo!r}..{hi!r}")
        if hi < lo:
            lo, hi = hi, lo
        if hi == lo:
            pad = abs(lo) * 0.1 if lo else 1.0
            lo, hi = lo - pad, hi + pad
        step = nice_step(hi - lo, ticks)
        if integer:
            step = max(1.0, round(step))
        self.step = step
        self.lo = math.floor(lo / step + 1e-9) * step
        self.hi = math.ceil(hi / step - 1e-9) * step
        self.pixel_lo = pixel_lo
        self.pixel_hi = pixel_hi

    def __call__(self, value: float) -> float:
        return self.pixel_lo + (value - self.lo) / (self.hi - self.lo) * (self.pixel_hi - self.pixel_lo)

    def ticks(self) -> list[float]:
        n = int(round((self.hi - self.lo) / self.step))
        return [self.lo + i * self.step for i in range(n + 1)]

    def label(self, value: float) -> str:
        """A tick label with as many decimals as the step needs."""
        if value == 0:
            return "0"
        magnitude = max(abs(self.lo), abs(self.hi))
        if magnitude >= 1e5 or magnitude < 1e-3:
            return f"{value:.2g}"
        decimals = max(0, -math.floor(math.log10(self.step) + 1e-9))
        return f"{value:.{decimals}f}"


@dataclass(frozen=True)
class Series:
    """One set of points on a :func:`line_chart`.

    Args:
        name: shown in the legend.
        points: ``(x, y)`` pairs, finite.
        color: stroke and fill colour.
        line: join the points with straight lines.
        step: join them with a step line (the value holds until the next point).
        markers: draw a circle at each point.
        labels: hover text of each point (default: the coordinates).
    """

    name: str
    points: Sequence[tuple[float, float]]
    color: str = BLUE
    line: bool = False
    step: bool = False
    markers: bool = True
    labels: Sequence[str] | None = None


@dataclass(frozen=True)
class ErrorPoint:
    """A point with a symmetric vertical error bar (±``error``), for :func:`error_scatter`.

    Args:
        x: the measured value.
        y: the predicted value.
        error: half the bar's length (one standard deviation), ≥ 0.
        label: hover text.
    """

    x: float
    y: float
    error: float = 0.0
    label: str = ""


@dataclass
class _Canvas:
    layout: Layout
    title: str
    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def render(self) -> str:
        w, h = self.layout.width, self.layout.height
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" '
                f'width="{w}" height="{h}" role="img" aria-label="{escape(self.title)}" '
                f'font-family="system-ui, sans-serif" font-size="12">')
        return "".join([head, f"<title>{escape(self.title)}</title>", *self.parts, "</svg>"])


def _f(v: float) -> str:
    return f"{v:.2f}"


def _check_finite(values: Sequence[float], what: str) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"{what}[{i}]: must be a finite number, not {v!r}")


def _axes(c: _Canvas, xs: LinearScale, ys: LinearScale, x_label: str, y_label: str) -> None:
    L = c.layout
    grid, labels = [], []
    for t in ys.ticks():
        y = ys(t)
        grid.append(f'<line x1="{_f(L.x0)}" y1="{_f(y)}" x2="{_f(L.x1)}" y2="{_f(y)}"/>')
        labels.append(f'<text x="{_f(L.x0 - 6)}" y="{_f(y + 4)}" text-anchor="end">{escape(ys.label(t))}</text>')
    for t in xs.ticks():
        x = xs(t)
        grid.append(f'<line x1="{_f(x)}" y1="{_f(L.y1)}" x2="{_f(x)}" y2="{_f(L.y0)}"/>')
        labels.append(f'<text x="{_f(x)}" y="{_f(L.y0 + 16)}" text-anchor="middle">{escape(xs.label(t))}</text>')
    c.add(f'<g class="grid" stroke="{GRID}" stroke-width="1">{"".join(grid)}</g>')
    c.add(f'<g class="axes" stroke="{MUTED}" stroke-width="1">'
          f'<line x1="{_f(L.x0)}" y1="{_f(L.y0)}" x2="{_f(L.x1)}" y2="{_f(L.y0)}"/>'
          f'<line x1="{_f(L.x0)}" y1="{_f(L.y0)}" x2="{_f(L.x0)}" y2="{_f(L.y1)}"/></g>')
    c.add(f'<g class="ticks" fill="{MUTED}">{"".join(labels)}</g>')
    mid_x = (L.x0 + L.x1) / 2
    mid_y = (L.y0 + L.y1) / 2
    c.add(f'<text class="axis-label" x="{_f(mid_x)}" y="{_f(L.height - 8)}" text-anchor="middle" '
          f'fill="{INK}">{escape(x_label)}</text>')
    c.add(f'<text class="axis-label" x="14" y="{_f(mid_y)}" text-anchor="middle" fill="{INK}" '
          f'transform="rotate(-90 14 {_f(mid_y)})">{escape(y_label)}</text>')


def _legend(c: _Canvas, entries: Sequence[tuple[str, str, bool]]) -> None:
    """Swatches right-aligned above the plot: (name, colour, drawn as a line)."""
    x = c.layout.x1
    items = []
    for name, color, as_line in reversed(entries):
        width = 7.0 * len(name) + 26
        x -= width
        swatch = (f'<line x1="{_f(x)}" y1="13" x2="{_f(x + 14)}" y2="13" stroke="{color}" stroke-width="2.5"/>'
                  if as_line else f'<circle cx="{_f(x + 7)}" cy="13" r="4" fill="{color}"/>')
        items.append(f'{swatch}<text x="{_f(x + 19)}" y="17" fill="{INK}">{escape(name)}</text>')
    c.add(f'<g class="legend">{"".join(items)}</g>')


def _marker(x: float, y: float, px: float, py: float, color: str, label: str, r: float = 4.0,
            cls: str = "point") -> str:
    return (f'<circle class="{cls}" cx="{_f(px)}" cy="{_f(py)}" r="{r}" fill="{color}" '
            f'data-x="{x:g}" data-y="{y:g}"><title>{escape(label)}</title></circle>')


def empty_chart(title: str, message: str, layout: Layout = Layout()) -> str:
    """A framed placeholder saying why there is nothing to plot yet."""
    c = _Canvas(layout, title)
    c.add(f'<rect x="{_f(layout.x0)}" y="{_f(layout.y1)}" width="{_f(layout.x1 - layout.x0)}" '
          f'height="{_f(layout.y0 - layout.y1)}" fill="none" stroke="{GRID}" stroke-dasharray="4 4"/>')
    c.add(f'<text class="empty" x="{_f((layout.x0 + layout.x1) / 2)}" y="{_f((layout.y0 + layout.y1) / 2)}" '
          f'text-anchor="middle" fill="{MUTED}">{escape(message)}</text>')
    return c.render()


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               integer_x: bool = True, layout: Layout = Layout()) -> str:
    """Series of points against x (by default whole experiment numbers).

    Args:
        series: what to draw, first under last.
        title: the chart's accessible name.
        x_label: the x axis label.
        y_label: the y axis label.
        integer_x: ticks on the x axis only at whole numbers.
        layout: size and margins.

    Returns:
        The ``<svg>`` element; a placeholder if no series has a point.

    Raises:
        ValueError: a coordinate is not a finite number (naming the series and point).
    """
    points = [pt for s in series for pt in s.points]
    if not points:
        return empty_chart(title, "No observations yet", layout)
    for s in series:
        _check_finite([p[0] for p in s.points], f"{s.name}.x")
        _check_finite([p[1] for p in s.points], f"{s.name}.y")
        if s.labels is not None and len(s.labels) != len(s.points):
            raise ValueError(f"{s.name}.labels: {len(s.labels)} labels for {len(s.points)} points")
    xs = LinearScale(min(p[0] for p in points), max(p[0] for p in points), layout.x0, layout.x1,
                     ticks=8, integer=integer_x)
    ys = LinearScale(min(p[1] for p in points), max(p[1] for p in points), layout.y0, layout.y1)
    c = _Canvas(layout, title)
    _axes(c, xs, ys, x_label, y_label)
    for index, s in enumerate(series):
        parts = []
        ordered = sorted(range(len(s.points)), key=lambda i: s.points[i][0])
        if (s.line or s.step) and len(s.points) > 1:
            path = []
            for k, i in enumerate(ordered):
                x, y = s.points[i]
                if k == 0:
                    path.append(f"M{_f(xs(x))} {_f(ys(y))}")
                elif s.step:
                    path.append(f"H{_f(xs(x))} V{_f(ys(y))}")
                else:
                    path.append(f"L{_f(xs(x))} {_f(ys(y))}")
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{s.color}" stroke-width="2.5" '
                         f'stroke-linejoin="round"/>')
        if s.markers:
            for i in ordered:
                x, y = s.points[i]
                label = s.labels[i] if s.labels is not None else f"{x:g}, {y:.4g}"
                parts.append(_marker(x, y, xs(x), ys(y), s.color, label, r=3.5 if s.line or s.step else 4.0))
        c.add(f'<g class="series" data-series="{escape(s.name)}" data-index="{index}">{"".join(parts)}</g>')
    _legend(c, [(s.name, s.color, s.line or s.step) for s in series])
    return c.render()


def error_scatter(points: Sequence[ErrorPoint], *, title: str, x_label: str = "measured",
                  y_label: str = "predicted", diagonal: bool = True, layout: Layout = Layout()) -> str:
    """Predicted against measured values with ±1σ bars, on one common range for both axes.

    Args:
        points: the points; ``error`` ≥ 0.
        title: the chart's accessible name.
        x_label: the x axis label.
        y_label: the y axis label.
        diagonal: draw the line y = x (perfect prediction).
        layout: size and margins.

    Returns:
        The ``<svg>`` element; a placeholder without points.

    Raises:
        ValueError: a value is not finite, or an error is negative (naming the point).
    """
    if not points:
        return empty_chart(title, "No measured predictions yet", layout)
    _check_finite([p.x for p in points], "points.x")
    _check_finite([p.y for p in points], "points.y")
    _check_finite([p.error for p in points], "points.error")
    for i, p in enumerate(points):
        if p.error < 0:
            raise ValueError(f"points[{i}].error: must be ≥ 0, not {p.error!r}")
    lo = min(min(p.x for p in points), min(p.y - p.error for p in points))
    hi = max(max(p.x for p in points), max(p.y + p.error for p in points))
    xs = LinearScale(lo, hi, layout.x0, layout.x1)
    ys = LinearScale(lo, hi, layout.y0, layout.y1)
    c = _Canvas(layout, title)
    _axes(c, xs, ys, x_label, y_label)
    if diagonal:
        a, b = max(xs.lo, ys.lo), min(xs.hi, ys.hi)
        c.add(f'<line class="diagonal" x1="{_f(xs(a))}" y1="{_f(ys(a))}" x2="{_f(xs(b))}" y2="{_f(ys(b))}" '
              f'stroke="{MUTED}" stroke-width="1.5" stroke-dasharray="6 4"/>')
    bars, marks = [], []
    for p in points:
        px = xs(p.x)
        if p.error > 0:
            top, bottom = ys(p.y + p.error), ys(p.y - p.error)
            bars.append(f'<line class="error-bar" x1="{_f(px)}" y1="{_f(top)}" x2="{_f(px)}" y2="{_f(bottom)}" '
                        f'data-error="{p.error:g}"/>'
                        f'<line x1="{_f(px - 3)}" y1="{_f(top)}" x2="{_f(px + 3)}" y2="{_f(top)}"/>'
                        f'<line x1="{_f(px - 3)}" y1="{_f(bottom)}" x2="{_f(px + 3)}" y2="{_f(bottom)}"/>')
        label = p.label or f"measured {p.x:.4g}, predicted {p.y:.4g} ± {p.error:.2g}"
        marks.append(_marker(p.x, p.y, px, ys(p.y), BLUE, label))
    c.add(f'<g class="error-bars" stroke="{BLUE}" stroke-opacity="0.55" stroke-width="1.5">{"".join(bars)}</g>')
    c.add(f'<g class="series" data-series="predictions">{"".join(marks)}</g>')
    legend = [("prediction ± 1σ", BLUE, False)] + ([("y = x", MUTED, True)] if diagonal else [])
    _legend(c, legend)
    return c.render()


def pareto_scatter(points: Sequence[tuple[float, float]], front: Sequence[bool], *, title: str,
                   x_label: str, y_label: str, labels: Sequence[str] | None = None,
                   layout: Layout = Layout()) -> str:
    """Two objectives of every observation, the non-dominated ones highlighted and joined.

    Args:
        points: ``(objective 1, objective 2)`` of each observation.
        front: for each point, whether it is on the Pareto front.
        title: the chart's accessible name.
        x_label: the x axis label (say which direction is better).
        y_label: the y axis label.
        labels: hover text of each point.
        layout: size and margins.

    Returns:
        The ``<svg>`` element; a placeholder without points.

    Raises:
        ValueError: a value is not finite, or ``front``/``labels`` do not match ``points`` in length.
    """
    if len(front) != len(points):
        raise ValueError(f"front: {len(front)} flags for {len(points)} points")
    if labels is not None and len(labels) != len(points):
        raise ValueError(f"labels: {len(labels)} labels for {len(points)} points")
    if not points:
        return empty_chart(title, "No observations yet", layout)
    _check_finite([p[0] for p in points], "points.x")
    _check_finite([p[1] for p in points], "points.y")
    xs = LinearScale(min(p[0] for p in points), max(p[0] for p in points), layout.x0, layout.x1)
    ys = LinearScale(min(p[1] for p in points), max(p[1] for p in points), layout.y0, layout.y1)
    c = _Canvas(layout, title)
    _axes(c, xs, ys, x_label, y_label)
    on_front = sorted((p for p, f in zip(points, front) if f), key=lambda p: p[0])
    if len(on_front) > 1:
        d = " ".join(("M" if i == 0 else "L") + f"{_f(xs(x))} {_f(ys(y))}" for i, (x, y) in enumerate(on_front))
        c.add(f'<path class="front-line" d="{d}" fill="none" stroke="{ORANGE}" stroke-width="2" '
              f'stroke-dasharray="5 3"/>')
    dominated, best = [], []
    for i, ((x, y), f) in enumerate(zip(points, front)):
        label = labels[i] if labels is not None else f"{x:.4g}, {y:.4g}"
        if f:
            best.append(_marker(x, y, xs(x), ys(y), ORANGE, label + " (Pareto-optimal)", r=5.0, cls="point front"))
        else:
            dominated.append(_marker(x, y, xs(x), ys(y), GREY, label))
    c.add(f'<g class="series" data-series="dominated">{"".join(dominated)}</g>')
    c.add(f'<g class="series" data-series="front">{"".join(best)}</g>')
    _legend(c, [("observations", GREY, False), ("Pareto front", ORANGE, False)])
    return c.render()
