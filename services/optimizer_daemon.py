"""The optimizer daemon: keeps a campaign's batch full and learns from each result.

Everything the daemon knows is read back from the server on every turn: the
campaign's requests (each carrying its point and provenance) and their
results. So a daemon killed at any moment and started again (anywhere)
continues where it stopped, without losing or repeating a request; the only
thing it writes besides requests is the campaign's state for people to read
(best so far, history, predictions against measurements, next proposals).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from labweave.optimizer.campaign import Campaign
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import LabweaveError, NotFound

log = logging.getLogger(__name__)

IN_FLIGHT = ("pending", "reserved", "proposed")


@dataclass
class Turn:
    """What one look at the server found."""

    requests: list[dict]
    results: dict[str, dict]
    observations: list[tuple[dict, dict]] = field(default_factory=list)
    observed: list[dict] = field(default_factory=list)  # the resolved requests behind the observations

    @property
    def in_flight(self) -> list[dict]:
        return [r for r in self.requests if r["status"] in IN_FLIGHT]

    @property
    def spent(self) -> int:
        """Requests that count against the budget: resolved or still running (failed ones do not)."""
        return len(self.observations) + len(self.in_flight)


class OptimizerDaemon:
    """Drive ``campaign`` against the server of ``client`` (a requester bound to a tenant).

    Args:
        client: the requester's client.
        campaign: the loaded campaign file.
        poll_seconds: how often to look when no event arrives.
    """

    def __init__(self, client: AsyncLabClient, campaign: Campaign, poll_seconds: float = 2.0):
        self.client = client
        self.campaign = campaign
        self.name = campaign.spec.name
        self.strategy = campaign.make_strategy()
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
        if not me.get("tenant_uuid"):
            raise LabweaveError(f"user {me['username']} must be bound to a tenant to post requests "
                                "(labweave user add NAME --role requester --tenant UUID)")
        self.tenant_uuid = me["tenant_uuid"]
        spec = self.campaign.spec.model_dump(mode="json")
        try:
            record = await self.client.campaign(self.name)
            if record["status"] in ("finished", "stopped"):
                return f"campaign {self.name} is {record['status']}"
            await self.client.put_campaign(self.name, spec)
        except NotFound:
            await self.client.put_campaign(self.name, spec, "running")
        listener = asyncio.create_task(self._listen())
        try:
            while not self._stop:
                status = (await self.client.campaign(self.name))["status"]
                if status in ("finished", "stopped"):
                    return f"campaign {status} by an operator"
                turn = await self._look()
                reason = self.campaign.stop_reason(turn.observations, turn.spent)
                if reason and not turn.in_flight:
                    await self._write_state(turn, [], finished=reason)
                    await self.client.put_campaign(self.name, spec, "finished")
                    log.info("campaign %s finished: %s", self.name, reason)
                    return reason
                proposals = []
                if status == "running" and not reason:
                    wanted = self.campaign.proposals_wanted(turn.spent, len(turn.in_flight))
                    if wanted:
                        proposals = await self._propose(turn, wanted)
                await self._write_state(turn, proposals)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    pass
            return "stopped"
        finally:
            listener.cancel()

    async def _listen(self) -> None:
        try:
            async for event in self.client.stream_events(kinds=["request.status", "campaign.status"]):
                data = event.get("data") or {}
                if data.get("campaign") == self.name or event["subject"] == self.name:
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except LabweaveError as exc:
            log.warning("event stream unavailable (%s); polling", exc)

    async def _look(self) -> Turn:
        requests = await self.client.list_requests(campaign=self.name)
        results = {r["result"]["request_uuid"]: r for r in await self.client.list_results(campaign=self.name)}
        turn = Turn(requests, results)
        for req in requests:
            if req["status"] != "resolved" or req["uuid"] not in results:
                continue
            point = req["provenance"].get("parameters")
            try:
                values = self.campaign.read_values(results[req["uuid"]]["result"]["data"])
            except ValueError as exc:
                log.warning("result of %s not usable: %s", req["uuid"], exc)
                continue
            turn.observations.append((point, values))
            turn.observed.append(req)
        return turn

    async def _propose(self, turn: Turn, n: int) -> list[dict]:
        pending = [r["provenance"]["parameters"] for r in turn.in_flight if "parameters" in r["provenance"]]
        started = time.perf_counter()
        proposals = await asyncio.to_thread(self.strategy.propose, turn.observations, pending, n)
        seconds = (time.perf_counter() - started) / max(1, len(proposals))
        made = []
        template = self.campaign.spec.request
        for proposal in proposals:
            body = self.campaign.build_request(proposal.parameters) | {"tenant_uuid": self.tenant_uuid}
            if isinstance(proposal.fidelity, str) and proposal.fidelity in body["methods"]:
                body["methods"] = [proposal.fidelity]
                body["parameters"] = {proposal.fidelity: body["parameters"][proposal.fidelity]}
            provenance = proposal.model_dump(mode="json") | {"campaign": self.name, "seconds": round(seconds, 3)}
            created = await self.client.create_request(
                body, priority=template.priority, campaign=self.name, provenance=provenance,
                proposed=self.campaign.spec.requires_approval)
            self.proposed_now += 1
            log.info("%s: proposed %s (%s)", self.name, created["uuid"], proposal.reason)
            made.append(provenance | {"request_uuid": created["uuid"]})
        return made

    async def _write_state(self, turn: Turn, proposals: list[dict], finished: str | None = None) -> None:
        state = summarise(self.campaign, turn, proposals)
        if finished:
            state["finished"] = finished
        formulas = getattr(self.strategy, "formulas", None)
        if callable(formulas):
            try:
                state["formulas"] = formulas()
            except Exception as exc:  # a model not fitted yet has no formulas
                log.debug("no formulas yet: %s", exc)
        await self.client.put_campaign_state(self.name, state)


def summarise(campaign: Campaign, turn: Turn, proposals: list[dict]) -> dict[str, Any]:
    """The campaign's state for people: best so far, history, predictions, what comes next."""
    objectives = campaign.spec.objectives
    first = objectives[0]
    sign = 1 if first.direction == "maximize" else -1
    history, best, best_point = [], None, None
    target = campaign.target_fidelity()
    at = f" at {target[1]}" if target else ""
    for n, ((point, values), req) in enumerate(zip(turn.observations, turn.observed), start=1):
        value = values[first.name]
        counts = campaign.at_target(point)  # with a fidelity ladder, only target-fidelity results count
        if counts and campaign.feasible(values) and (best is None or sign * value > sign * best):
            best, best_point = value, point
        history.append({"n": n, "value": value, "best": best, "request_uuid": req["uuid"],
                        "fidelity": req["provenance"].get("fidelity"), "counts": counts})
    predictions = []
    for (point, values), req in zip(turn.observations, turn.observed):
        mean = req["provenance"].get("predicted_mean", {}).get(first.name)
        std = req["provenance"].get("predicted_std", {}).get(first.name)
        if mean is not None and std is not None and math.isfinite(mean):
            predictions.append({"request_uuid": req["uuid"], "mean": mean, "std": std,
                                "measured": values[first.name]})
    state: dict[str, Any] = {
        "objective": first.name,
        "direction": first.direction,
        "n_observations": len(turn.observations),
        "in_flight": len(turn.in_flight),
        "failed": sum(1 for r in turn.requests if r["status"] == "failed"),
        "budget": campaign.spec.budget,
        "best": {"value": best, "parameters": best_point},
        "history": history,
        "predictions": predictions,
        "next": proposals or [r["provenance"] for r in turn.in_flight],
        "model_version": proposals[-1]["model_version"] if proposals else None,
        "summary": f"{len(turn.observations)}/{campaign.spec.budget} results, best {first.name}{at} {best}",
    }
    if len(objectives) > 1:
        state["objectives"] = [o.name for o in objectives]
        state["points"] = [{o.name: values[o.name] for o in objectives} for _, values in turn.observations]
    return state
