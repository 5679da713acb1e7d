"""How far a campaign has got, in its budget's own unit (experiments, or cost units).

A request counts against the budget once it is resolved or while it is in
flight (proposed, pending, reserved); failed and retracted requests do not.
In a cost budget each request is charged its fidelity's cost: the one method
it names, or the fidelity of its proposal; a fine-tuning of the campaign's
MLIP is charged what it recorded (:func:`labweave.optimizer.mlip_learning.fine_tuning_charges`)
and does not count against a budget of requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from labweave.optimizer.mlip_learning import fine_tuning_charges, fine_tunings
from labweave.schemas.api import RequestDetail
from labweave.schemas.core import RequestStatus as S
from labweave.schemas.core import ResultInfo

from .observations import live_results
from .terms import COST, CampaignTerms, Unit

#: Statuses of a request that still runs (or waits to).
IN_FLIGHT = (S.PROPOSED, S.PENDING, S.RESERVED)
#: Statuses of a campaign that has ended.
ENDED = ("finished", "stopped")


@dataclass(frozen=True)
class Progress:
    """A campaign's progress.

    Args:
        status: the campaign's status (``running``, ``paused``, ``finished``, ``stopped``).
        unit: what ``done``, ``in_flight`` and ``total`` count: ``experiments`` or ``cost``.
        done: spent on resolved requests.
        in_flight: committed to requests still in flight.
        total: the budget, ``None`` if the campaign has none that is known.
        requests: requests resolved or in flight (what counts against a request budget).
    """

    status: str
    unit: Unit
    done: float
    in_flight: float
    total: float | None
    requests: int

    @property
    def finished(self) -> bool:
        """Whether the campaign has ended (finished, or stopped by someone)."""
        return self.status in ENDED

    @property
    def committed(self) -> float:
        """Spent and committed: what the budget has left to give is ``total - committed``."""
        return self.done + self.in_flight

    @property
    def fraction(self) -> float | None:
        """The share of the budget spent on results, 0..1 (``None`` without a budget)."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    def describe(self) -> str:
        """``12 / 16 experiments``, ``184 / 200 cost``, or ``12 experiments`` without a budget."""
        if self.total is None:
            return f"{self.done:g} {self.unit}"
        return f"{self.done:g} / {self.total:g} {self.unit}"


def charge(terms: CampaignTerms, request: RequestDetail) -> float:
    """What ``request`` costs the budget: 1 experiment, or in a cost budget its fidelity's cost."""
    if terms.unit != COST:
        return 1.0
    methods = request.request.methods
    if len(methods) == 1 and terms.cost(methods[0]):
        return terms.cost(methods[0])
    return terms.cost(request.provenance.get("fidelity"))


def progress(terms: CampaignTerms, status: str, requests: Iterable[RequestDetail],
             results: Iterable[ResultInfo] = ()) -> Progress:
    """The campaign's progress from its requests.

    Args:
        terms: gives the budget and its unit.
        status: the campaign's status.
        requests: the campaign's requests (any status).
        results: their results, for what the fine-tunings of the campaign's MLIP recorded
            (without them, a fine-tuning with no ``cost`` of its own is charged nothing).

    Returns:
        The progress in the budget's unit.
    """
    requests = list(requests)
    done = in_flight = 0.0
    if terms.unit == COST and terms.mlip_learning is not None:
        done, in_flight = fine_tuning_charges(terms.mlip_learning, fine_tunings(requests, live_results(results)))
    count = 0
    for r in requests:
        if not terms.measures(r.request.quantity):
            continue
        if r.status == S.RESOLVED:
            done += charge(terms, r)
        elif r.status in IN_FLIGHT:
            in_flight += charge(terms, r)
        else:
            continue
        count += 1
    return Progress(status, terms.unit, done, in_flight, terms.budget, count)
