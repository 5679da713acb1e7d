"""The report's figures, drawn with matplotlib and saved as PNG files.

Each function draws one figure for one demo campaign and returns the path it
wrote; the campaign and its random baseline always share the axes. Figures
are drawn on matplotlib's Agg canvas directly (a :class:`~matplotlib.figure.Figure`
with a :class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`), so nothing
here chooses or changes pyplot's backend.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labweave.optimizer import analytics
from labweave.optimizer.analytics import Observation, Prediction
from labweave.optimizer.campaign import Campaign

from .analysis import Trace

log = logging.getLogger(__name__)

#: Colours of the optimised run and of the baseline; of the methods in a predictions figure.
OPTIMISED, BASELINE = "#1f6fb4", "#d9731a"
METHOD_COLOURS = ("#7a9a3a", "#8e3b8e", "#3b8e8a", "#a33c3c")
#: Markers of the methods (fidelities) in a progress figure.
MARKERS = ("x", "o", "^", "s")
DPI = 130


def _figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas of its own."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    log.info("wrote %s", path)
    return path


def progress_figure(path: Path, title: str, optimised: Trace, baseline: Trace) -> Path:
    """Best so far (or hypervolume) against experiments (or cost) for a campaign and its baseline.

    Args:
        path: the PNG to write.
        title: the campaign, for the title.
        optimised: the campaign's trace.
        baseline: the baseline's trace.

    Returns:
        ``path``.
    """
    fig = _figure(6.6, 4.2)
    ax = fig.subplots()
    first = optimised.curve
    scatter = not first.y_label.startswith("hypervolume")
    methods = sorted({p[2] for t in (optimised, baseline) for p in t.curve.points})
    marker_of = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(methods)} if len(methods) > 1 else {}
    for trace, colour, name in ((optimised, OPTIMISED, optimised.label), (baseline, BASELINE, "random baseline")):
        for method in methods if scatter else ():
            chosen = [p for p in trace.curve.points if p[2] == method]
            if chosen:
                ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], s=18, color=colour, alpha=0.4,
                           marker=marker_of.get(method, "o"), linewidths=0.8 if marker_of else 0)
        steps = trace.curve.steps()
        xs, ys = [x for x, _ in steps], [y for _, y in steps]
        if xs:
            ax.step(xs, ys, where="post", color=colour, linewidth=2.2, label=name)
            ax.plot(xs[-1:], ys[-1:], "o", color=colour)
    ax.set_xlabel(first.x_label)
    ax.set_ylabel(first.y_label)
    if first.x_label == "experiments":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for method, marker in marker_of.items():  # one legend entry per method's marker
        ax.scatter([], [], s=18, color="grey", marker=marker, label=f"{method} results")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9, title="lines: best so far" if scatter else None, title_fontsize=8)
    return _save(fig, path)


def pareto_figure(path: Path, campaign: Campaign, optimised: Sequence[Observation], baseline: Sequence[Observation],
                  reference: dict[str, float]) -> Path:
    """Every result of both runs in the plane of the first two objectives, with each run's Pareto front.

    Args:
        path: the PNG to write.
        campaign: gives the objectives.
        optimised: the campaign's observations.
        baseline: the baseline's observations.
        reference: the hypervolume reference point.

    Returns:
        ``path``.
    """
    a, b = campaign.spec.objectives[:2]
    everything = [*optimised, *baseline]
    xs_all, ys_all = [o.values[a.name] for o in everything], [o.values[b.name] for o in everything]
    shown = _near(reference[a.name], xs_all) and _near(reference[b.name], ys_all)
    if shown:
        xs_all.append(reference[a.name])
        ys_all.append(reference[b.name])
    limits = (_worst(xs_all, a.direction), _worst(ys_all, b.direction))
    fig = _figure(6.6, 4.6)
    ax = fig.subplots()
    runs = ((optimised, OPTIMISED, campaign.spec.strategy.name), (baseline, BASELINE, "random baseline"))
    for obs, colour, name in runs:
        ax.scatter([o.values[a.name] for o in obs], [o.values[b.name] for o in obs], s=26, color=colour, alpha=0.45,
                   linewidths=0, label=f"{name}: results")
        front = analytics.pareto_front(obs, campaign.spec.objectives)
        if front:
            xs, ys = _front_steps(front, a.name, b.name, a.direction, limits)
            ax.plot(xs, ys, color=colour, linewidth=2.0, label=f"{name}: Pareto front")
            ax.scatter([o.values[a.name] for o in front], [o.values[b.name] for o in front], s=42, color=colour,
                       edgecolors="black", linewidths=0.6, zorder=3)
    ref_text = f"reference point ({reference[a.name]:.3g}, {reference[b.name]:.3g})"
    if shown:
        ax.plot([reference[a.name]], [reference[b.name]], "x", color="black", markersize=9, label=ref_text)
    else:
        ax.plot([], [], " ", label=f"{ref_text}, off the view")
    ax.set_xlabel(f"{a.name} ({'lower' if a.direction == 'minimize' else 'higher'} is better)")
    ax.set_ylabel(f"{b.name} ({'lower' if b.direction == 'minimize' else 'higher'} is better)")
    ax.set_title(f"{campaign.spec.name}: Pareto fronts", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _front_steps(front: Sequence[Observation], a: str, b: str, dir_a: str, limits: tuple[float, float]
                 ) -> tuple[list[float], list[float]]:
    """The staircase bounding what a two-objective front dominates.

    Ordered from the best first objective to the worst, the second objective improves along the
    front; the staircase rises (or falls) at each point and runs across to the next. It starts
    and ends on ``limits``, the worst values of the two objectives in the figure.
    """
    ordered = sorted(front, key=lambda o: o.values[a], reverse=dir_a == "maximize")
    xs, ys = [ordered[0].values[a]], [limits[1]]
    for i, o in enumerate(ordered):
        xs.append(o.values[a])
        ys.append(o.values[b])
        xs.append(ordered[i + 1].values[a] if i + 1 < len(ordered) else limits[0])
        ys.append(o.values[b])
    return xs, ys


def _near(value: float, values: Sequence[float], reach: float = 0.5) -> bool:
    """Whether ``value`` lies within ``reach`` times the span of ``values`` beyond them."""
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    return low - reach * span <= value <= high + reach * span


def _worst(values: Sequence[float], direction: str) -> float:
    return min(values) if direction == "maximize" else max(values)


def predictions_figure(path: Path, title: str, label: str, predictions: Mapping[str, Sequence[Prediction]]) -> Path:
    """The model's predictions (mean and two standard deviations) against the measurements, one panel per objective.

    Args:
        path: the PNG to write.
        title: the campaign.
        label: the strategy that predicted.
        predictions: ``{objective: predictions}``.

    Returns:
        ``path``.
    """
    names = list(predictions)
    fig = _figure(5.4 * len(names), 5.0)
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, objective in zip(axes[0], names):
        preds = predictions[objective]
        methods = sorted({p.method for p in preds})
        several = len(methods) > 1
        for i, method in enumerate(methods):
            chosen = [p for p in preds if p.method == method]
            colour = METHOD_COLOURS[i % len(METHOD_COLOURS)] if several else OPTIMISED
            ax.errorbar([p.measured for p in chosen], [p.mean for p in chosen], yerr=[2 * p.std for p in chosen],
                        fmt="o", color=colour, ecolor=colour, alpha=0.75, capsize=3, markersize=5,
                        label=f"{label} ({method}): mean ± 2σ" if several else f"{label}: mean ± 2σ")
        values = [v for p in preds for v in (p.measured, p.mean - 2 * p.std, p.mean + 2 * p.std)]
        low, high = min(values), max(values)
        pad = 0.05 * (high - low or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="grey", linewidth=1,
                label="prediction = measurement")
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        stats = analytics.calibration(preds)
        assert stats is not None  # a panel per objective with predictions
        ax.set_title(f"{objective}: RMSE {stats.rmse:.3g}, {100 * stats.within_2_sigma:.0f}% of "
                     f"{stats.n} within 2σ", fontsize=9)
        ax.set_xlabel(f"measured {objective}")
        ax.set_ylabel(f"predicted {objective} before the experiment")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
