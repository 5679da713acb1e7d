"""``/api/v1/campaigns``: campaigns, their state, pause and resume."""

from __future__ import annotations

from fastapi import APIRouter

from labweave.schemas.api import CampaignPut, CampaignRecord, CampaignStatePut, CampaignStatus

from .. import convert
from ..db.tables import Campaign
from ..deps import CurrentUser, LabDep
from ..lab import Lab

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


def record(lab: Lab, row: Campaign) -> CampaignRecord:
    return convert.campaign(row, lab.campaigns.counts(row.name))


@router.get("")
def list_campaigns(lab: LabDep, p: CurrentUser) -> list[CampaignRecord]:
    return [record(lab, c) for c in lab.campaigns.list(p)]


@router.get("/{name}")
def get_campaign(lab: LabDep, p: CurrentUser, name: str) -> CampaignRecord:
    return record(lab, lab.campaigns.get(p, name))


@router.put("/{name}")
def put_campaign(lab: LabDep, p: CurrentUser, name: str, body: CampaignPut) -> CampaignRecord:
    """Create a campaign, or change the spec (and status) of one's own."""
    return record(lab, lab.campaigns.put(p, name, body.spec, body.status))


@router.put("/{name}/state")
def put_state(lab: LabDep, p: CurrentUser, name: str, body: CampaignStatePut) -> CampaignRecord:
    return record(lab, lab.campaigns.put_state(p, name, body.state))


@router.post("/{name}/pause")
def pause(lab: LabDep, p: CurrentUser, name: str) -> CampaignRecord:
    return record(lab, lab.campaigns.set_status(p, name, CampaignStatus.PAUSED.value))


@router.post("/{name}/resume")
def resume(lab: LabDep, p: CurrentUser, name: str) -> CampaignRecord:
    return record(lab, lab.campaigns.set_status(p, name, CampaignStatus.RUNNING.value))
