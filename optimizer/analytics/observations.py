"""A campaign's observations: its resolved requests with the values read from their results.

The requests carry the point and the model's provenance (what the optimizer
daemon proposed, and what it predicted); the results carry the data the
objectives and outcome constraints are read from (their ``path``, and for a
``*`` path their ``aggregate``, as :func:`labweave.schemas.campaign.read_quantity`
reads them). Observations are numbered in the order their results arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labweave.schemas.api import RequestDetail
from labweave.schemas.campaign import Objective, OutcomeConstraint, read_quantity, satisfies
from labweave.schemas.core import RequestStatus, ResultInfo, ResultStatus

from .terms import CampaignTerms


@dataclass(frozen=True)
class Observation:
    """One result of a campaign with its objective and outcome-constraint values.

    Args:
        n: 1-based, in the order the results arrived.
        values: the objectives and outcome constraints that could be read.
        parameters: the point measured (the request's ``provenance.parameters``; empty if it has none).
        method: the method that produced the result.
        feasible: whether the values satisfy every outcome constraint (a missing one does not).
        at_target: whether the result counts for the best value (see :meth:`CampaignTerms.at_target`).
        cost: what the evaluation cost (0 without a fidelity ladder).
        request_uuid: the request it answers.
        provenance: the request's provenance (the proposal: predictions, reason, model version).
        problems: by name, why an objective or constraint could not be read.
    """

    n: int
    values: dict[str, float]
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    feasible: bool = True
    at_target: bool = True
    cost: float = 0.0
    request_uuid: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every objective and outcome constraint was read."""
        return not self.problems

    @property
    def counts(self) -> bool:
        """Whether it counts for the best so far and the Pareto front: feasible, at the target fidelity."""
        return self.feasible and self.at_target


def live_results(results: Iterable[ResultInfo]) -> dict[str, ResultInfo]:
    """The result that stands for each request: its original, else its latest amendment (deleted ones never)."""
    out: dict[str, ResultInfo] = {}
    for info in results:
        uuid = info.result.request_uuid
        if not uuid or info.status == ResultStatus.DELETED:
            continue
        if uuid not in out or out[uuid].status != ResultStatus.ORIGINAL:
            out[uuid] = info
    return out


def read_values(terms: CampaignTerms, data: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Read the objectives and outcome constraints from a result's data.

    Returns:
        ``(values, problems)``: the values read, and by name why the others could not be.
    """
    values, problems = {}, {}
    items: list[Objective | OutcomeConstraint] = [*terms.objectives, *terms.outcome_constraints]
    for item in items:
        try:
            values[item.name] = read_quantity(data, item)
        except ValueError as exc:
            problems[item.name] = str(exc)
    return values, problems


def observations(terms: CampaignTerms, requests: Iterable[RequestDetail],
                 results: Iterable[ResultInfo]) -> list[Observation]:
    """The campaign's resolved requests that have a result, in the order the results arrived.

    Args:
        terms: what to read from each result.
        requests: the campaign's requests (any status).
        results: their results (any status; deleted ones are ignored).

    Returns:
        One observation per resolved request of the campaign's quantity with a result (a
        fine-tuning of the campaign's MLIP is none); values that cannot be read are named in
        its ``problems``.
    """
    live = live_results(results)
    answered = [(live[r.uuid], r) for r in requests if r.status == RequestStatus.RESOLVED and r.uuid in live
                and terms.measures(r.request.quantity)]
    answered.sort(key=lambda pair: (pair[0].ctime, pair[1].ctime))
    out = []
    for n, (info, request) in enumerate(answered, start=1):
        values, problems = read_values(terms, info.result.data)
        method = info.result.method[0]
        parameters = request.provenance.get("parameters")
        out.append(Observation(
            n, values, dict(parameters) if isinstance(parameters, Mapping) else {}, method,
            satisfies(terms.outcome_constraints, values), terms.at_target(method), terms.cost(method),
            request.uuid, dict(request.provenance), problems))
    return out
