"""The optimizer daemon: keeps a campaign's batch full and learns from each result.

Everything the daemon knows is read back from the server on every turn: the
campaign's requests (each carrying its point and provenance) and their
results. So a daemon killed at any moment and started again (anywhere)
continues where it stopped, without losing or repeating a request; the only
thing it writes besides requests is the campaign's state for people to read
(best so far, history, predictions against measurements, next proposals).
For the same reason it rides out a server that is down or answering 503: it
waits and looks again, and a request whose answer was lost on the way is
found on the server at the next look rather than posted twice.

A campaign with ``[mlip_learning]`` also teaches its MLIP: when the plan says a
fine-tuning is due and none is in flight, the daemon posts one (quantity
``mlip_fine_tuning``, under the campaign, its provenance naming the results it
was asked on, so the next look finds it and does not ask again); the newest
model made is the current one, named in every CHGNet request it proposes and
in every proposal's provenance (``mlip_model``), and each screen by it hands
the strategy its committee's variance as noise (:mod:`labweave.optimizer.mlip_learning`).
While a fine-tuning runs, the strategy's screens wait for its model (a screen
by the model about to be superseded would be left out of the strategy's
model); its evaluations at the dearer fidelities go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from labweave.optimizer import analytics
from labweave.optimizer import mlip_learning as ml
from labweave.optimizer.analytics import CampaignTerms, Observation, Progress
from labweave.optimizer.campaign import Campaign
from labweave.optimizer.strategies import Observation as Point
from labweave.optimizer.strategies import Strategy
from labweave.optimizer.strategies.multifidelity import MultiFidelityStrategy
from labweave.schemas.api import RequestDetail
from labweave.schemas.core import ResultInfo
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import TRANSIENT, LabweaveError, NotFound, retry_after
from labweave.services.logs import new_request_id, request_id_bound

log = logging.getLogger(__name__)

#: The longest wait before looking again while the server is unavailable.
MAX_PAUSE = 10.0


@dataclass
class Turn:
    """What one look at the server found: the campaign's requests, its observations, its progress.

    Args:
        requests: the requests that evaluate points (the fine-tunings of its MLIP are in ``mlip``).
        observations: their results, as observations.
        progress: the campaign's progress (fine-tunings charged to a cost budget).
        learnt: what the strategy learns from (:func:`learning_points`; None: every complete observation).
        mlip: the campaign's MLIP, with ``[mlip_learning]``.
        spent_elsewhere: what the budget was charged outside ``points`` and the requests in flight.
        learning: a fine-tuning of the MLIP is in flight (or was asked for this turn).
    """

    requests: list[RequestDetail]
    observations: list[Observation]
    progress: Progress
    learnt: Learnt | None = None
    mlip: ml.CampaignMlip | None = None
    spent_elsewhere: float = 0.0
    learning: bool = False

    @property
    def in_flight(self) -> list[RequestDetail]:
        return [r for r in self.requests if r.status in analytics.IN_FLIGHT]

    @property
    def points(self) -> list[Point]:
        """What the strategy learns from: ``(parameters, values)`` of each complete observation, or ``learnt``."""
        if self.learnt is not None:
            return self.learnt.points
        return [(o.parameters, o.values) for o in self.observations if o.complete and o.parameters]


@dataclass(frozen=True)
class Learnt:
    """What the strategy learns from this turn (:func:`learning_points`).

    Args:
        points: ``(parameters, values)`` of each observation it learns from.
        left_out: what the observations it does not learn from cost the budget.
        screens: with a learning MLIP, its screens by the current model (``current``), of those the
            ones carrying their committee's variance (``with_noise``), and those by a superseded
            model (``superseded``).
    """

    points: list[Point]
    left_out: float = 0.0
    screens: dict[str, int] | None = None


def learning_points(terms: CampaignTerms, observations: list[Observation], live: Mapping[str, ResultInfo],
                    mlip: ml.CampaignMlip | None, noise: bool) -> Learnt:
    """What the strategy learns from, and what the observations it does not see cost the budget.

    Every complete observation is ``(parameters, values)``; with a learning MLIP, a screen by a
    superseded model is left out (:meth:`~labweave.optimizer.mlip_learning.CampaignMlip.screen`
    says why) and one by the current model carries its committee's variance under
    :data:`~labweave.optimizer.mlip_learning.NOISE_VALUE` when ``noise`` (the strategy reads it).
    """
    points: list[Point] = []
    left_out = 0.0
    screens = {"current": 0, "with_noise": 0, "superseded": 0}
    path = terms.objectives[0].path if terms.objectives else ""
    for o in observations:
        if not (o.complete and o.parameters):
            continue
        values = dict(o.values)
        if mlip is not None and o.method == ml.MLIP_METHOD and o.request_uuid in live:
            current, variance = mlip.screen(live[o.request_uuid].result.data, path)
            if not current:
                screens["superseded"] += 1
                left_out += o.cost
                continue
            screens["current"] += 1
            if noise and variance is not None:
                values[ml.NOISE_VALUE] = variance
                screens["with_noise"] += 1
        points.append((o.parameters, values))
    return Learnt(points, left_out, screens if mlip is not None else None)


class OptimizerDaemon:
    """Drive ``campaign`` against the server of ``client`` (a requester bound to a tenant).

    Args:
        client: the requester's client.
        campaign: the loaded campaign file.
        poll_seconds: how often to look when no event arrives.
        strategy: the campaign's strategy, if already built (else built here).
    """

    def __init__(self, client: AsyncLabClient, campaign: Campaign, poll_seconds: float = 2.0,
                 strategy: Strategy | None = None):
        self.client = client
        self.campaign = campaign
        self.name = campaign.spec.name
        self.terms = CampaignTerms.of(campaign.spec)
        self.strategy = strategy if strategy is not None else campaign.make_strategy()
        self.poll_seconds = poll_seconds
        self.tenant_uuid: str | None = None
        self._wake = asyncio.Event()
        self._stop = False
        self.proposed_now = 0

    def shutdown(self) -> None:
        self._stop = True
        self._wake.set()

    async def run(self) -> str:
        """Run until the budget or the stopping rule ends the campaign; returns why it ended."""
        me = await self.client.me()
        if not me.tenant_uuid:
            raise LabweaveError(f"user {me.username} must be bound to a tenant to post requests "
                                "(labweave user add NAME --role requester --tenant UUID)")
        self.tenant_uuid = me.tenant_uuid
        spec = self.campaign.spec.model_dump(mode="json")
        try:
            record = await self.client.campaign(self.name)
            if record.status in analytics.ENDED:
                return f"campaign {self.name} is {record.status.value}"
            await self.client.put_campaign(self.name, spec)
        except NotFound:
            await self.client.put_campaign(self.name, spec, "running")
        listener = asyncio.create_task(self._listen())
        try:
            while not self._stop:
                pause = self.poll_seconds
                try:
                    ended = await self._turn(spec)
                except TRANSIENT as exc:  # the client's own retries are spent: wait, and look again
                    pause = min(MAX_PAUSE, max(self.poll_seconds, retry_after(exc) or 0.0))
                    log.warning("%s: server unavailable (%s); looking again in %.1f s", self.name, exc, pause)
                else:
                    if ended:
                        return ended
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), pause)
                except asyncio.TimeoutError:
                    pass
            return "stopped"
        finally:
            listener.cancel()

    async def _turn(self, spec: dict) -> str | None:
        """One look at the campaign and what it calls for; why the campaign ended, or None to go on."""
        status = (await self.client.campaign(self.name)).status.value
        if status in analytics.ENDED:
            return f"campaign {status} by an operator"
        turn = await self._look(status)
        reason = self.campaign.stop_reason(turn.points, turn.progress.requests)
        if reason and not turn.in_flight:
            return await self._finish(turn, spec, reason)
        proposals = []
        room = turn.progress.total is None or turn.progress.committed < turn.progress.total
        if status == "running" and not reason and room and turn.mlip is not None and turn.mlip.due():
            await self._fine_tune(turn.mlip)
            turn.learning = True
        if status == "running" and not reason:
            wanted = self.campaign.proposals_wanted(turn.progress.requests, len(turn.in_flight))
            if wanted:
                proposals = await self._propose(turn, wanted)
                if not proposals and not turn.in_flight and not turn.learning:  # screens wait for a new model
                    return await self._finish(turn, spec, exhausted(turn.progress))
        await self._write_state(turn, proposals)
        return None

    async def _listen(self) -> None:
        try:
            async for event in self.client.stream_events(kinds=["request.status", "campaign.status"]):
                if event.data.get("campaign") == self.name or event.subject == self.name:
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except LabweaveError as exc:
            log.warning("event stream unavailable (%s); polling", exc)

    async def _look(self, status: str) -> Turn:
        requests = await self.client.list_requests(campaign=self.name)
        results = await self.client.list_results(campaign=self.name)
        observations = analytics.observations(self.terms, requests, results)
        for o in observations:
            if o.problems:
                log.warning("result of %s not usable: %s", o.request_uuid, "; ".join(o.problems.values()))
        progress = analytics.progress(self.terms, status, requests, results)
        evaluations = [r for r in requests if self.terms.measures(r.request.quantity)]
        live = analytics.live_results(results)
        mlip = None
        learning = self.campaign.spec.mlip_learning
        target = self.terms.target
        if learning is not None and target is not None:
            mlip = ml.CampaignMlip.read(learning, target, requests, live)
            for uuid, why in mlip.skipped.items():
                log.warning("%s: result of %s is no training example: %s", self.name, uuid, why)
        noise = self.campaign.spec.strategy.settings.get("noise_value") == ml.NOISE_VALUE
        learnt = learning_points(self.terms, observations, live, mlip, noise)
        fine_tunings = sum(mlip.charges()) if mlip is not None and self.terms.unit == analytics.COST else 0.0
        return Turn(evaluations, observations, progress, learnt, mlip, learnt.left_out + fine_tunings,
                    mlip is not None and mlip.in_flight)

    async def _fine_tune(self, mlip: ml.CampaignMlip) -> None:
        """Post the fine-tuning the plan says is due (found again at the next look, so asked for once)."""
        parameters, provenance = mlip.request()
        body = {"quantity": ml.FINE_TUNING, "methods": [ml.MLIP_METHOD], "parameters": {ml.MLIP_METHOD: parameters},
                "tenant_uuid": self.tenant_uuid}
        created = await self.client.create_request(
            body, priority=self.campaign.spec.request.priority, campaign=self.name,
            provenance=provenance | {"campaign": self.name}, proposed=self.campaign.spec.requires_approval)
        log.info("%s: asked the MLIP to learn from %d results (%s)", self.name, len(mlip.examples), created.uuid)

    async def _finish(self, turn: Turn, spec: dict, reason: str) -> str:
        """Publish the last state and mark the campaign finished; returns why it ended."""
        await self._write_state(turn, [], finished=reason)
        await self.client.put_campaign(self.name, spec, "finished")
        log.info("campaign %s finished: %s", self.name, reason)
        return reason

    async def _propose(self, turn: Turn, n: int) -> list[dict]:
        """Propose and post ``n`` requests, logged and sent under one request id for the batch."""
        with request_id_bound(f"{self.name}:batch:{new_request_id()[:12]}"):
            return await self._propose_batch(turn, n)

    async def _propose_batch(self, turn: Turn, n: int) -> list[dict]:
        pending = [r.provenance["parameters"] for r in turn.in_flight if "parameters" in r.provenance]
        if isinstance(self.strategy, MultiFidelityStrategy):
            self.strategy.spent_elsewhere = turn.spent_elsewhere
        started = time.perf_counter()
        proposals = await asyncio.to_thread(self.strategy.propose, turn.points, pending, n)
        seconds = (time.perf_counter() - started) / max(1, len(proposals))
        made = []
        template = self.campaign.spec.request
        for proposal in proposals:
            if turn.learning and proposal.fidelity == ml.MLIP_METHOD:
                # A screen now would be by the model about to be superseded, and left out of the model
                # once the new one is made (CampaignMlip.screen): it waits for the new model instead,
                # while evaluations at the dearer fidelities go on.
                log.info("%s: screen held until the MLIP's fine-tuning is done (%s)", self.name, proposal.reason)
                continue
            body = self.campaign.build_request(proposal.parameters) | {"tenant_uuid": self.tenant_uuid}
            if isinstance(proposal.fidelity, str) and proposal.fidelity in body["methods"]:
                body["methods"] = [proposal.fidelity]
                body["parameters"] = {proposal.fidelity: body["parameters"][proposal.fidelity]}
            provenance = proposal.model_dump(mode="json") | {"campaign": self.name, "seconds": round(seconds, 3)}
            if turn.mlip is not None:  # the model that screens from now on, and that informed this proposal
                if ml.MLIP_METHOD in body["parameters"]:
                    body["parameters"][ml.MLIP_METHOD] = ml.with_model(body["parameters"][ml.MLIP_METHOD],
                                                                       turn.mlip.model)
                provenance[ml.MODEL_KEY] = turn.mlip.model
            created = await self.client.create_request(
                body, priority=template.priority, campaign=self.name, provenance=provenance,
                proposed=self.campaign.spec.requires_approval)
            self.proposed_now += 1
            log.info("%s: proposed %s (%s)", self.name, created.uuid, proposal.reason)
            made.append(provenance | {"request_uuid": created.uuid})
        return made

    async def _write_state(self, turn: Turn, proposals: list[dict], finished: str | None = None) -> None:
        state = summarise(self.campaign, self.terms, turn, proposals)
        if finished:
            state["finished"] = finished
        formulas = getattr(self.strategy, "formulas", None)
        if callable(formulas):
            try:
                state["formulas"] = formulas()
            except Exception as exc:  # a model not fitted yet has no formulas
                log.debug("no formulas yet: %s", exc)
        await self.client.put_campaign_state(self.name, state)


def exhausted(progress: Progress) -> str:
    """Why a campaign ends whose strategy proposes nothing more with nothing in flight."""
    budget = "within its cost budget" if progress.unit == analytics.COST else "within its budget"
    return f"its strategy has nothing more to propose {budget} ({progress.describe()} spent)"


def summarise(campaign: Campaign, terms: CampaignTerms, turn: Turn, proposals: list[dict]) -> dict[str, Any]:
    """The campaign's state for people: best so far, history, predictions, progress, what comes next."""
    objectives = campaign.spec.objectives
    first = objectives[0]
    obs = turn.observations
    curve = analytics.best_so_far(terms, obs, by=analytics.EXPERIMENTS)
    history = [{"n": o.n, "value": o.values[first.name], "best": best, "request_uuid": o.request_uuid,
                "fidelity": o.provenance.get("fidelity"), "counts": o.counts}
               for o, best in zip(obs, curve.y) if first.name in o.values]
    top = analytics.best(obs, first)
    predictions = [{"request_uuid": p.request_uuid, "mean": p.mean, "std": p.std, "measured": p.measured}
                   for p in analytics.predictions(terms, obs).get(first.name, [])]
    at = f" at {terms.target}" if terms.target else ""
    best_value = top.values[first.name] if top else None
    state: dict[str, Any] = {
        "objective": first.name,
        "direction": first.direction,
        "n_observations": len(obs),
        "in_flight": len(turn.in_flight),
        "failed": sum(1 for r in turn.requests if r.status == "failed"),
        "budget": campaign.spec.budget,
        "progress": asdict(turn.progress),
        "best": {"value": best_value, "parameters": top.parameters if top else None},
        "history": history,
        "predictions": predictions,
        "next": proposals or [r.provenance for r in turn.in_flight],
        "model_version": proposals[-1]["model_version"] if proposals else None,
        "summary": f"{turn.progress.describe()}, best {first.name}{at} {best_value}",
    }
    if turn.mlip is not None:
        state["mlip"] = turn.mlip.summary() | {"screens": turn.learnt.screens if turn.learnt else None}
    if len(objectives) > 1:
        state["objectives"] = [o.name for o in objectives]
        state["points"] = [{o.name: x.values[o.name] for o in objectives} for x in obs if x.complete]
    return state
