"""The dashboard's SVG charts: valid SVG, round axis ranges, every point where its value says."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from labweave.services.server.dashboard import charts
from labweave.services.server.dashboard.charts import ErrorPoint, Layout, LinearScale, Series

SVG = "{http://www.w3.org/2000/svg}"
L = Layout()  # 560 × 300, plot from x 68..542 and y 252 (bottom)..30 (top)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == f"0 0 {L.width} {L.height}"
    return root


def markers(root: ET.Element, series: str | None = None) -> list[ET.Element]:
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "series"
              and (series is None or g.get("data-series") == series)]
    return [c for g in groups for c in g.iter(f"{SVG}circle")]


def xy(circle: ET.Element) -> tuple[float, float]:
    return float(circle.get("cx")), float(circle.get("cy"))


@pytest.mark.parametrize("span, count, step", [(1.0, 5, 0.2), (4.0, 8, 0.5), (7.3, 5, 2.0), (2.0e-3, 4, 5e-4),
                                               (950.0, 5, 200.0), (3.0, 3, 1.0)])
def test_nice_steps_are_one_two_or_five_times_a_power_of_ten(span, count, step):
    assert charts.nice_step(span, count) == pytest.approx(step)


def test_a_scale_widens_to_round_ticks_and_maps_linearly():
    s = LinearScale(0.13, 0.91, 100.0, 500.0, ticks=4)
    assert (s.lo, s.hi, s.step) == (pytest.approx(0.0), pytest.approx(1.0), pytest.approx(0.2))
    assert s.ticks() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert s(0.0) == pytest.approx(100.0) and s(1.0) == pytest.approx(500.0) and s(0.25) == pytest.approx(200.0)
    assert [s.label(t) for t in s.ticks()] == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    flat = LinearScale(5.0, 5.0, 0.0, 10.0)  # one value: widened around it
    assert flat.lo < 5.0 < flat.hi
    with pytest.raises(ValueError, match="lo, hi"):
        LinearScale(0.0, float("inf"), 0.0, 1.0)


def test_line_chart_places_each_point_on_the_plot():
    points = [(1.0, 2.0), (3.0, 3.0), (5.0, 4.0)]
    root = parse(charts.line_chart([Series("best so far", points, step=True)], title="best",
                                   x_label="experiment number", y_label="volume"))
    found = markers(root, "best so far")
    assert len(found) == 3
    # x 1..5 and y 2..4 are already round: the extremes sit on the plot's corners, the middle in its centre
    assert xy(found[0]) == pytest.approx((L.x0, L.y0))
    assert xy(found[1]) == pytest.approx(((L.x0 + L.x1) / 2, (L.y0 + L.y1) / 2))
    assert xy(found[2]) == pytest.approx((L.x1, L.y1))
    assert [(float(c.get("data-x")), float(c.get("data-y"))) for c in found] == points
    path = next(p for p in root.iter(f"{SVG}path"))
    assert path.get("d").startswith(f"M{L.x0:.2f} {L.y0:.2f} H")  # a step line: horizontal, then vertical
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "experiment number" in texts and "volume" in texts and "best so far" in texts
    assert {"1", "2", "3", "4", "5"} <= set(texts)  # integer ticks on the experiment axis


def test_line_chart_escapes_text_and_refuses_non_finite_values():
    root = parse(charts.line_chart([Series("a<b & c", [(1, 1), (2, 2)])], title='<script>alert("x")</script>',
                                   x_label="n", y_label="y"))
    assert root.find(f"{SVG}title").text == '<script>alert("x")</script>'  # text, not markup
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    with pytest.raises(ValueError, match=r"obs\.y\[1\]"):
        charts.line_chart([Series("obs", [(1, 1.0), (2, float("nan"))])], title="t", x_label="x", y_label="y")
    with pytest.raises(ValueError, match="obs.labels"):
        charts.line_chart([Series("obs", [(1, 1.0)], labels=["a", "b"])], title="t", x_label="x", y_label="y")


def test_an_empty_chart_says_why():
    root = parse(charts.line_chart([], title="nothing", x_label="x", y_label="y"))
    assert [t.text for t in root.iter(f"{SVG}text")] == ["No observations yet"]


def test_error_scatter_draws_bars_of_one_sigma_and_the_diagonal():
    points = [ErrorPoint(1.0, 1.5, 0.5), ErrorPoint(3.0, 2.0, 1.0), ErrorPoint(2.0, 2.0, 0.0)]
    root = parse(charts.error_scatter(points, title="parity"))
    # both axes share one range, from the lowest value or bar end (1.0) to the highest (3.0 = 2.0 + 1.0)
    xs = LinearScale(1.0, 3.0, L.x0, L.x1)
    ys = LinearScale(1.0, 3.0, L.y0, L.y1)
    assert (xs.lo, xs.hi) == (1.0, 3.0)
    found = markers(root, "predictions")
    assert [xy(c) for c in found] == [pytest.approx((xs(p.x), ys(p.y))) for p in points]
    bars = [line for line in root.iter(f"{SVG}line") if line.get("class") == "error-bar"]
    assert len(bars) == 2  # no bar where the error is zero
    second = bars[1]
    assert float(second.get("y1")) == pytest.approx(ys(3.0)) and float(second.get("y2")) == pytest.approx(ys(1.0))
    diagonal = next(line for line in root.iter(f"{SVG}line") if line.get("class") == "diagonal")
    start = (float(diagonal.get("x1")), float(diagonal.get("y1")))
    end = (float(diagonal.get("x2")), float(diagonal.get("y2")))
    assert start == pytest.approx((L.x0, L.y0)) and end == pytest.approx((L.x1, L.y1))
    with pytest.raises(ValueError, match=r"points\[0\]\.error"):
        charts.error_scatter([ErrorPoint(1.0, 1.0, -0.1)], title="t")


def test_pareto_scatter_highlights_and_joins_the_front():
    points = [(1.0, 4.0), (2.0, 3.0), (1.5, 2.0), (3.0, 1.0)]
    front = [True, True, False, True]
    root = parse(charts.pareto_scatter(points, front, title="front", x_label="capacity ↑", y_label="cost ↓"))
    assert len(markers(root, "front")) == 3 and len(markers(root, "dominated")) == 1
    assert [c.get("data-x") for c in markers(root, "front")] == ["1", "2", "3"]
    line = next(p for p in root.iter(f"{SVG}path") if p.get("class") == "front-line")
    assert line.get("d").count("L") == 2  # three front points joined in order of x
    with pytest.raises(ValueError, match="front"):
        charts.pareto_scatter(points, [True], title="t", x_label="x", y_label="y")


def test_layout_refuses_a_size_without_room_to_plot():
    with pytest.raises(ValueError, match="width"):
        Layout(width=50)
