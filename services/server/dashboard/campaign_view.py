"""What the dashboard shows of a campaign: progress, the best so far, and the model's view.

A campaign's ``state`` is written by the optimizer daemon; every key of it is
optional (``best``, ``history``, ``predictions``, ``next``, ``model_version``,
``formulas``, ``summary``), and malformed entries are left out rather than
breaking the page. Where the daemon has not written a history yet, it is
derived from the campaign's results and the objectives of its spec (the
objective's ``path`` into each result's data, as
:func:`labweave.schemas.campaign.read_quantity` reads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlmodel import Session, select

from labweave.schemas.campaign import read_quantity
from labweave.schemas.core import RequestStatus as S

from ..auth import Principal
from ..db.tables import Campaign, Request, Result, Tenant
from . import charts, text
from .views import QueueRow, queue_row

#: At most this many observations are read for the charts (the newest).
MAX_OBSERVATIONS = 5000


@dataclass(frozen=True)
class Objective:
    name: str
    path: str
    direction: str  # maximize | minimize

    @property
    def arrow(self) -> str:
        return "↑" if self.direction == "maximize" else "↓"


def objectives_of(spec: dict[str, Any]) -> list[Objective]:
    """The objectives a campaign spec names (malformed entries are skipped)."""
    out = []
    for item in spec.get("objectives") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        direction = item.get("direction", "maximize")
        out.append(Objective(item["name"], str(item.get("path", "")),
                             direction if direction in ("maximize", "minimize") else "maximize"))
    return out


@dataclass
class Observation:
    """One result of the campaign with its objective values."""

    n: int
    request_uuid: str
    values: dict[str, float]


def observations(lab, name: str, objectives: Sequence[Objective]) -> list[Observation]:
    """The campaign's results in the order they arrived, with the objective values read from each."""
    if not objectives:
        return []
    with Session(lab.db.read) as s:
        stmt = (select(Result.request_uuid, Result.data).join(Request, Request.uuid == Result.request_uuid)
                .where(Request.campaign == name, Result.status == "original")
                .order_by(Result.id.desc()).limit(MAX_OBSERVATIONS))
        rows = list(reversed(s.exec(stmt).all()))
    out = []
    for i, (request_uuid, data) in enumerate(rows, start=1):
        values = {}
        for o in objectives:
            try:
                values[o.name] = read_quantity(data, o)
            except ValueError:
                continue  # a result without this objective (failed, other method): not plotted
        out.append(Observation(i, request_uuid, values))
    return out


def best_so_far(values: Sequence[float], direction: str) -> list[float]:
    """The running best of ``values`` (running maximum, or minimum for ``minimize``).

    Args:
        values: the observed values in order.
        direction: ``maximize`` or ``minimize``.

    Returns:
        One best per value.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction: maximize or minimize, not {direction!r}")
    pick = max if direction == "maximize" else min
    out: list[float] = []
    for v in values:
        out.append(v if not out else pick(out[-1], v))
    return out


def pareto_mask(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[bool]:
    """Which points no other point dominates (at least as good in every objective, better in one).

    Args:
        points: each point's objective values, in the order of ``directions``.
        directions: ``maximize`` or ``minimize`` per objective.

    Returns:
        One flag per point: True on the Pareto front.
    """
    sign = []
    for i, d in enumerate(directions):
        if d not in ("maximize", "minimize"):
            raise ValueError(f"directions[{i}]: maximize or minimize, not {d!r}")
        sign.append(1.0 if d == "maximize" else -1.0)
    for i, p in enumerate(points):
        if len(p) != len(directions):
            raise ValueError(f"points[{i}]: {len(p)} values for {len(directions)} objectives")
    scored = [[s * v for s, v in zip(sign, p)] for p in points]
    front = []
    for i, a in enumerate(scored):
        dominated = any(
            j != i and all(bj >= aj for aj, bj in zip(a, b)) and any(bj > aj for aj, bj in zip(a, b))
            for j, b in enumerate(scored)
        )
        front.append(not dominated)
    return front


# -- the list of campaigns --------------------------------------------------------
@dataclass
class CampaignSummary:
    name: str
    status: str
    description: str
    created_by: str
    updated: float
    counts: dict[str, int]
    budget: int | None
    objectives: list[Objective]
    best_value: float | None
    requires_approval: bool
    model_version: str

    @property
    def done(self) -> int:
        return self.counts.get(S.RESOLVED.value, 0)

    @property
    def in_flight(self) -> int:
        return self.counts.get(S.PENDING.value, 0) + self.counts.get(S.RESERVED.value, 0)

    @property
    def awaiting(self) -> int:
        return self.counts.get(S.PROPOSED.value, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(S.FAILED.value, 0)

    @property
    def progress(self) -> float | None:
        """The share of the budget spent on results, 0..1 (None without a budget)."""
        if not self.budget:
            return None
        return min(1.0, self.done / self.budget)


def _best_value(state: dict[str, Any]) -> float | None:
    best = state.get("best")
    if isinstance(best, dict):
        return text.as_float(best.get("value"))
    return text.as_float(best)


def summary(lab, row: Campaign, counts: dict[str, int] | None = None) -> CampaignSummary:
    spec, state = row.spec or {}, row.state or {}
    budget = spec.get("budget")
    return CampaignSummary(
        name=row.name, status=row.status, description=str(spec.get("description", "")), created_by=row.created_by,
        updated=row.updated, counts=counts if counts is not None else lab.campaigns.counts(row.name),
        budget=budget if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0 else None,
        objectives=objectives_of(spec), best_value=_best_value(state),
        requires_approval=bool(spec.get("requires_approval", False)),
        model_version=str(state.get("model_version", "")),
    )


def summaries(lab) -> list[CampaignSummary]:
    return [summary(lab, row) for row in lab.campaigns.list()]


# -- one campaign -----------------------------------------------------------------------
@dataclass
class NextProposal:
    """A proposal of the model's next batch (from ``state.next``)."""

    rank: int
    parameters: dict[str, Any]
    acquisition_value: float | None
    predicted: str  # "mean ± std", per objective where the model predicts several
    fidelity: str
    reason: str


@dataclass
class PredictionCheck:
    """How well the model's predictions matched the measurements."""

    n: int
    rmse: float
    coverage: float  # share of measurements within ±2σ of the prediction


@dataclass
class CampaignDetail:
    summary: CampaignSummary
    spec_json: str
    strategy: str
    state_summary: str
    best_parameters: dict[str, Any]
    history_svg: str
    parity_svg: str
    pareto_svg: str | None
    check: PredictionCheck | None
    pending_predictions: int
    next: list[NextProposal]
    awaiting: list[QueueRow]
    formulas: list[str]
    recent: list[Observation] = field(default_factory=list)


def history_points(state: dict[str, Any], obs: list[Observation], objectives: list[Objective]):
    """``(n, value)`` and ``(n, best)`` points: the daemon's history, else derived from results."""
    values, bests = [], []
    history = state.get("history")
    if isinstance(history, list) and history:
        for i, item in enumerate(history):
            if not isinstance(item, dict):
                continue
            n = text.as_float(item.get("n"))
            n = n if n is not None else float(i + 1)
            value, best = text.as_float(item.get("value")), text.as_float(item.get("best"))
            if value is not None:
                values.append((n, value))
            if best is not None:
                bests.append((n, best))
        daemon_kept_best = any(isinstance(item, dict) and "best" in item for item in history)
        if not bests and values and len(objectives) == 1 and not daemon_kept_best:  # an older daemon's history
            ys = best_so_far([v for _, v in values], objectives[0].direction)
            bests = [(n, b) for (n, _), b in zip(values, ys)]
        return values, bests
    if len(objectives) != 1:
        return [], []
    o = objectives[0]
    measured = [(float(ob.n), ob.values[o.name]) for ob in obs if o.name in ob.values]
    ys = best_so_far([v for _, v in measured], o.direction)
    return measured, [(n, b) for (n, _), b in zip(measured, ys)]


def pareto_points(state: dict[str, Any], obs: list[Observation], a: Objective, b: Objective):
    """The two objectives of every observation: the daemon's ``points``, else read from the results.

    Returns:
        ``(points, labels)``: ``(value of a, value of b)`` pairs and their hover texts.
    """
    points, labels = [], []
    published = state.get("points")
    if isinstance(published, list) and published:
        for i, item in enumerate(published, start=1):
            if isinstance(item, dict):
                x, y = text.as_float(item.get(a.name)), text.as_float(item.get(b.name))
                if x is not None and y is not None:
                    points.append((x, y))
                    labels.append(f"experiment {i}")
        return points, labels
    for ob in obs:
        if a.name in ob.values and b.name in ob.values:
            points.append((ob.values[a.name], ob.values[b.name]))
            labels.append(f"experiment {ob.n} (request {text.short(ob.request_uuid)})")
    return points, labels


def _predictions(state: dict[str, Any]) -> tuple[list[charts.ErrorPoint], int]:
    points, pending = [], 0
    for item in state.get("predictions") or []:
        if not isinstance(item, dict):
            continue
        mean, std = text.as_float(item.get("mean")), text.as_float(item.get("std"))
        measured = text.as_float(item.get("measured"))
        if mean is None:
            continue
        if measured is None:
            pending += 1
            continue
        std = abs(std) if std is not None else 0.0
        label = f"request {text.short(str(item.get('request_uuid', '')))}: measured {measured:.4g}, " \
                f"predicted {mean:.4g} ± {std:.2g}"
        points.append(charts.ErrorPoint(measured, mean, std, label))
    return points, pending


def prediction_check(points: Sequence[charts.ErrorPoint]) -> PredictionCheck | None:
    """RMSE of the predictions and the share of measurements within ±2σ (about 95 % if calibrated)."""
    if not points:
        return None
    rmse = math.sqrt(sum((p.y - p.x) ** 2 for p in points) / len(points))
    covered = sum(1 for p in points if abs(p.y - p.x) <= 2 * p.error)
    return PredictionCheck(len(points), rmse, covered / len(points))


def _next(state: dict[str, Any]) -> list[NextProposal]:
    out = []
    for i, item in enumerate(state.get("next") or [], start=1):
        if not isinstance(item, dict):
            continue
        params = item.get("parameters")
        out.append(NextProposal(
            rank=i, parameters=params if isinstance(params, dict) else {},
            acquisition_value=text.as_float(item.get("acquisition_value")),
            predicted=text.prediction(item.get("predicted_mean"), item.get("predicted_std")),
            fidelity=text.number(item["fidelity"]) if item.get("fidelity") is not None else "",
            reason=str(item.get("reason", "") or ""),
        ))
    return out


def _formulas(state: dict[str, Any]) -> list[str]:
    found = state.get("formulas")
    if found is None:
        return []
    if isinstance(found, str):
        return [found]
    if isinstance(found, dict):
        return [f"{k}: {v}" for k, v in found.items()]
    out = []
    for item in found if isinstance(found, list) else []:
        if isinstance(item, dict):
            formula = item.get("formula") or item.get("expression")
            extra = ", ".join(f"{k} {text.number(v)}" for k, v in item.items() if k not in ("formula", "expression"))
            out.append(f"{formula}" + (f"  ({extra})" if extra else "") if formula else text.pretty_json(item))
        else:
            out.append(str(item))
    return out


def detail(lab, p: Principal, row: Campaign) -> CampaignDetail:
    """Everything the campaign page shows."""
    spec, state = row.spec or {}, row.state or {}
    head = summary(lab, row)
    objectives = head.objectives
    obs = observations(lab, row.name, objectives)
    values, bests = history_points(state, obs, objectives)
    y_label = f"{objectives[0].name} {objectives[0].arrow}" if len(objectives) == 1 else str(
        state.get("history_label", "value"))
    series = [charts.Series("observed", values, color=charts.GREY,
                            labels=[f"experiment {n:g}: {v:.4g}" for n, v in values]),
              charts.Series("best so far", bests, color=charts.BLUE, step=True,
                            labels=[f"best after {n:g}: {v:.4g}" for n, v in bests])]
    history_svg = charts.line_chart([s for s in series if s.points], title=f"{row.name}: best so far",
                                    x_label="experiment number", y_label=y_label)
    points, pending = _predictions(state)
    parity_svg = charts.error_scatter(points, title=f"{row.name}: predicted vs measured",
                                      x_label="measured", y_label="predicted (± 1σ)")
    pareto_svg = None
    if len(objectives) >= 2:
        a, b = objectives[0], objectives[1]
        pts, labels = pareto_points(state, obs, a, b)
        pareto_svg = charts.pareto_scatter(
            pts, pareto_mask(pts, [a.direction, b.direction]), title=f"{row.name}: Pareto front",
            x_label=f"{a.name} {a.arrow}", y_label=f"{b.name} {b.arrow}", labels=labels)
    best = state.get("best")
    best_parameters = best.get("parameters") if isinstance(best, dict) and isinstance(best.get("parameters"),
                                                                                      dict) else {}
    if head.best_value is None and bests and len(objectives) == 1:
        head.best_value = bests[-1][1]
    with Session(lab.db.read) as s:
        tenant_names = dict(s.exec(select(Tenant.uuid, Tenant.name)).all())
    awaiting = [queue_row(r, tenant_names) for r in lab.requests.list(p, status=[S.PROPOSED.value], campaign=row.name,
                                                                   limit=200)]
    strategy = spec.get("strategy")
    return CampaignDetail(
        summary=head, spec_json=text.pretty_json(spec),
        strategy=str(strategy.get("name", "")) if isinstance(strategy, dict) else str(strategy or ""),
        state_summary=str(state.get("summary", "")), best_parameters=best_parameters,
        history_svg=history_svg, parity_svg=parity_svg, pareto_svg=pareto_svg,
        check=prediction_check(points), pending_predictions=pending, next=_next(state), awaiting=awaiting,
        formulas=_formulas(state), recent=list(reversed(obs[-8:])),
    )
