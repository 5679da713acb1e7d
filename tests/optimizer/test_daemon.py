"""The optimizer daemon against an in-memory lab: it ends its campaign itself, as finished, when its
strategy has nothing more to propose (a pool used up, a cost budget spent), with its progress published."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from labweave.optimizer.campaign import Campaign
from labweave.schemas.api import CampaignRecord, RequestDetail, UserPublic
from labweave.schemas.campaign import CampaignSpec
from labweave.schemas.core import ResultInfo
from labweave.services.client.errors import NotFound
from labweave.services.optimizer_daemon import OptimizerDaemon
from tests.campaign_records import request, result

T0 = "2026-12-01T00:00:00+00:00"
POOL = [{"x": 0.1}, {"x": 0.5}, {"x": 0.9}]


class InstantLab:
    """What the daemon asks of a server (the typed client's answers), with every request measured the
    moment it is made."""

    def __init__(self) -> None:
        self.campaigns: dict[str, CampaignRecord] = {}
        self.requests: list[RequestDetail] = []
        self.results: list[ResultInfo] = []
        self.clock = itertools.count()

    async def me(self) -> UserPublic:
        return UserPublic(username="optimizer", role="requester", tenant_uuid="t")

    async def campaign(self, name: str) -> CampaignRecord:
        if name not in self.campaigns:
            raise NotFound(404, f"campaign {name!r} not found")
        return self.campaigns[name]

    async def put_campaign(self, name: str, spec: dict, status: str | None = None) -> CampaignRecord:
        old = self.campaigns.get(name)
        record = {"name": name, "status": status or (old.status if old else "running"), "spec": spec,
                  "state": old.state if old else {}, "created_by": "optimizer", "created": T0, "updated": T0}
        self.campaigns[name] = CampaignRecord.model_validate(record)
        return self.campaigns[name]

    async def put_campaign_state(self, name: str, state: dict) -> CampaignRecord:
        self.campaigns[name] = self.campaigns[name].model_copy(update={"state": state})
        return self.campaigns[name]

    async def list_requests(self, campaign: str) -> list[RequestDetail]:
        return [r for r in self.requests if r.campaign == campaign]

    async def list_results(self, campaign: str) -> list[ResultInfo]:
        mine = {r.uuid for r in self.requests if r.campaign == campaign}
        return [r for r in self.results if r.result.request_uuid in mine]

    async def create_request(self, body: dict, *, campaign: str, provenance: dict, **_: Any) -> RequestDetail:
        uuid = f"r{len(self.requests)}"
        x = body["parameters"]["m"]["x"]
        self.requests.append(request(uuid, provenance=provenance, second=next(self.clock), campaign=campaign))
        self.results.append(result(uuid, {"y": x}, second=next(self.clock)))
        return self.requests[-1]

    async def stream_events(self, **_: Any):
        await asyncio.Event().wait()  # no events: the daemon polls
        yield {}


def test_a_campaign_whose_strategy_runs_out_of_proposals_ends_finished():
    campaign = Campaign(CampaignSpec.model_validate({
        "name": "pool", "budget": 10, "initial_design": 1, "batch_size": 2,
        "request": {"quantity": "q", "methods": ["m"], "parameters": {"m": {"x": "{x}"}}},
        "space": {"parameters": [{"name": "x", "lower": 0.0, "upper": 1.0}]},
        "objectives": [{"name": "y", "path": "y"}],
        "strategy": {"name": "random", "settings": {"pool": {"kind": "explicit", "points": POOL}}},
    }))
    lab = InstantLab()
    daemon = OptimizerDaemon(lab, campaign, poll_seconds=0.05)
    reason = asyncio.run(asyncio.wait_for(daemon.run(), timeout=20))
    record = lab.campaigns["pool"]
    assert reason == "its strategy has nothing more to propose within its budget (3 / 10 experiments spent)"
    assert record.status == "finished" and record.state["finished"] == reason
    assert record.state["progress"] == {"status": "running", "unit": "experiments", "done": 3.0,
                                           "in_flight": 0.0, "total": 10, "requests": 3}
    assert record.state["best"] == {"value": 0.9, "parameters": {"x": 0.9}}
    values = [h["value"] for h in record.state["history"]]
    assert sorted(values) == [0.1, 0.5, 0.9]
    assert [h["best"] for h in record.state["history"]] == list(itertools.accumulate(values, max))
