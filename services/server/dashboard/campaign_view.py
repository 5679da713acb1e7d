"""What the dashboard shows of a campaign: progress, the best so far, and the model's view.

Everything measured is computed by :mod:`labweave.optimizer.analytics` from
the campaign's requests and results, read from the database and converted
here, at the dashboard's edge, to the wire models; the campaign's terms
(objectives, budget, fidelities) are read from its stored spec by
:meth:`~labweave.optimizer.analytics.CampaignTerms.read`. The campaign's
``state``, written by the optimizer daemon, gives what only the model knows:
its next proposals, its version, its formulas and its summary; every key of it
is optional, and malformed entries are left out rather than breaking the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from labweave.optimizer import analytics
from labweave.optimizer.analytics import CampaignTerms, Observation, Progress
from labweave.schemas.api import RequestDetail
from labweave.schemas.campaign import Objective
from labweave.schemas.core import RequestStatus as S
from labweave.schemas.core import ResultInfo, ResultStatus

from .. import convert
from ..auth import Principal
from ..db.tables import Campaign, Request, Result, Tenant
from . import charts, text
from .views import QueueRow, queue_row

#: At most this many results are read for the charts (the newest).
MAX_OBSERVATIONS = 5000


@dataclass
class Records:
    """A campaign's requests and results, as the wire models the analytics read."""

    requests: list[RequestDetail]
    results: list[ResultInfo]


def records(lab, name: str) -> Records:
    """The campaign's requests and (the newest :data:`MAX_OBSERVATIONS`) results that are not deleted."""
    with Session(lab.db.read) as s:
        requests = s.exec(select(Request).where(Request.campaign == name).order_by(col(Request.id))).all()
        results = s.exec(select(Result).join(Request, col(Request.uuid) == col(Result.request_uuid))
                         .where(Request.campaign == name, Result.status != ResultStatus.DELETED.value)
                         .order_by(col(Result.id).desc()).limit(MAX_OBSERVATIONS)).all()
    return Records([RequestDetail.model_validate(convert.request_detail(r)) for r in requests],
                   [ResultInfo.model_validate(convert.result_info(r)) for r in reversed(results)])


# -- the list of campaigns --------------------------------------------------------
@dataclass
class CampaignSummary:
    name: str
    status: str
    description: str
    created_by: str
    updated: float
    counts: dict[str, int]
    objectives: list[Objective]
    progress: Progress
    best_value: float | None  # one objective: its best so far
    front_size: int | None  # several objectives: the results on the Pareto front
    requires_approval: bool
    model_version: str

    @property
    def in_flight(self) -> int:
        return self.counts.get(S.PENDING.value, 0) + self.counts.get(S.RESERVED.value, 0)

    @property
    def awaiting(self) -> int:
        return self.counts.get(S.PROPOSED.value, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(S.FAILED.value, 0)


def _summary(row: Campaign, terms: CampaignTerms, recs: Records, obs: list[Observation]) -> CampaignSummary:
    spec, state = row.spec or {}, row.state or {}
    counts: dict[str, int] = {}
    for r in recs.requests:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    objectives = list(terms.objectives)
    best = analytics.best(obs, objectives[0]) if len(objectives) == 1 else None
    return CampaignSummary(
        name=row.name, status=row.status, description=str(spec.get("description", "")), created_by=row.created_by,
        updated=row.updated, counts=counts, objectives=objectives,
        progress=analytics.progress(terms, row.status, recs.requests, recs.results),
        best_value=best.values[objectives[0].name] if best else None,
        front_size=len(analytics.pareto_front(obs, objectives)) if len(objectives) > 1 else None,
        requires_approval=bool(spec.get("requires_approval", False)),
        model_version=str(state.get("model_version", "")),
    )


def summary(lab, row: Campaign) -> CampaignSummary:
    terms = CampaignTerms.read(row.spec or {})
    recs = records(lab, row.name)
    return _summary(row, terms, recs, analytics.observations(terms, recs.requests, recs.results))


def summaries(lab, p: Principal) -> list[CampaignSummary]:
    return [summary(lab, row) for row in lab.campaigns.list(p)]


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
class CampaignDetail:
    summary: CampaignSummary
    spec_json: str
    strategy: str
    state_summary: str
    best_parameters: dict[str, Any]
    history_svg: str
    parity_svg: str
    pareto_svg: str | None
    check: analytics.Calibration | None
    pending_predictions: int
    next: list[NextProposal]
    awaiting: list[QueueRow]
    formulas: list[str]
    recent: list[Observation] = field(default_factory=list)
    formula_steps: list[analytics.FormulaStep] = field(default_factory=list)


def history_chart(name: str, terms: CampaignTerms, obs: list[Observation]) -> str:
    """Each result and the best after it (one objective), or the hypervolume after each result (several)."""
    if not terms.objectives:
        return charts.empty_chart(f"{name}: best so far", "The campaign names no objective that can be read.")
    curve = analytics.progress_curve(terms, obs)
    by_experiment = curve.x_label == "experiments"
    x_label = "experiment number" if by_experiment else curve.x_label
    if len(terms.objectives) > 1:
        series = [charts.Series("hypervolume", curve.steps(), color=charts.BLUE, step=True,
                                labels=[f"hypervolume after {x:g}: {y:.4g}" for x, y in curve.steps()])]
        return charts.line_chart([s for s in series if s.points], title=f"{name}: hypervolume so far",
                                 x_label=x_label, y_label=curve.y_label, integer_x=by_experiment)
    objective = terms.objectives[0]
    observed = [(x, v) for x, v, _ in curve.points]
    series = [charts.Series("observed", observed, color=charts.GREY,
                            labels=[f"{m or 'result'} at {x:g}: {v:.4g}" for x, v, m in curve.points]),
              charts.Series("best so far", curve.steps(), color=charts.BLUE, step=True,
                            labels=[f"best after {x:g}: {y:.4g}" for x, y in curve.steps()])]
    return charts.line_chart([s for s in series if s.points], title=f"{name}: best so far", x_label=x_label,
                             y_label=f"{objective.name} {text.arrow(objective.direction)}", integer_x=by_experiment)


def pareto_chart(name: str, obs: list[Observation], a: Objective, b: Objective) -> str:
    """Every result in the plane of two objectives, those on the Pareto front highlighted."""
    shown = [o for o in obs if a.name in o.values and b.name in o.values]
    front = {o.request_uuid for o in analytics.pareto_front(shown, [a, b])}
    return charts.pareto_scatter(
        [(o.values[a.name], o.values[b.name]) for o in shown], [o.request_uuid in front for o in shown],
        title=f"{name}: Pareto front", x_label=f"{a.name} {text.arrow(a.direction)}", y_label=f"{b.name} {text.arrow(b.direction)}",
        labels=[f"experiment {o.n} (request {text.short(o.request_uuid)})" for o in shown])


def _predictions(terms: CampaignTerms, obs: list[Observation]) -> list[analytics.Prediction]:
    if not terms.objectives:
        return []
    return analytics.predictions(terms, obs).get(terms.objectives[0].name, [])


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


def detail(lab, p: Principal, row: Campaign) -> CampaignDetail:
    """Everything the campaign page shows."""
    spec, state = row.spec or {}, row.state or {}
    terms = CampaignTerms.read(spec)
    recs = records(lab, row.name)
    obs = analytics.observations(terms, recs.requests, recs.results)
    head = _summary(row, terms, recs, obs)
    preds = _predictions(terms, obs)
    parity_svg = charts.error_scatter(
        [charts.ErrorPoint(q.measured, q.mean, q.std, f"request {text.short(q.request_uuid)}: measured "
                           f"{q.measured:.4g}, predicted {q.mean:.4g} ± {q.std:.2g}") for q in preds],
        title=f"{row.name}: predicted vs measured", x_label="measured", y_label="predicted (± 1σ)")
    objectives = list(terms.objectives)
    pareto_svg = pareto_chart(row.name, obs, objectives[0], objectives[1]) if len(objectives) >= 2 else None
    best = analytics.best(obs, objectives[0]) if len(objectives) == 1 else None
    with Session(lab.db.read) as s:
        tenant_names = dict(s.exec(select(Tenant.uuid, Tenant.name)).all())
    awaiting = [queue_row(r, tenant_names) for r in lab.requests.list(p, status=[S.PROPOSED.value], campaign=row.name,
                                                                   limit=200)]
    strategy = spec.get("strategy")
    return CampaignDetail(
        summary=head, spec_json=text.pretty_json(spec),
        strategy=str(strategy.get("name", "")) if isinstance(strategy, dict) else str(strategy or ""),
        state_summary=str(state.get("summary", "")), best_parameters=dict(best.parameters) if best else {},
        history_svg=history_chart(row.name, terms, obs), parity_svg=parity_svg, pareto_svg=pareto_svg,
        check=analytics.calibration(preds), pending_predictions=analytics.awaiting_measurement(terms, recs.requests),
        next=_next(state), awaiting=awaiting, formulas=analytics.formula_lines(state.get("formulas")),
        recent=list(reversed(obs[-8:])), formula_steps=analytics.formula_history(recs.requests),
    )
