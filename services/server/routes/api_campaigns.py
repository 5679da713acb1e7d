"""``/api/v1/campaigns``: campaigns, their state, pause and resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..deps import CurrentUser, LabDep

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


class CampaignPut(BaseModel):
    spec: dict[str, Any] = Field(default_factory=dict)
    status: str | None = None


class StatePut(BaseModel):
    state: dict[str, Any]


@router.get("")
def list_campaigns(lab: LabDep, p: CurrentUser) -> list[dict[str, Any]]:
    return [lab.campaigns.public(c) for c in lab.campaigns.list(p)]


@router.get("/{name}")
def get_campaign(lab: LabDep, p: CurrentUser, name: str) -> dict[str, Any]:
    return lab.campaigns.public(lab.campaigns.get(p, name))


@router.put("/{name}")
def put_campaign(lab: LabDep, p: CurrentUser, name: str, body: CampaignPut) -> dict[str, Any]:
    return lab.campaigns.public(lab.campaigns.put(p, name, body.spec, body.status))


@router.put("/{name}/state")
def put_state(lab: LabDep, p: CurrentUser, name: str, body: StatePut) -> dict[str, Any]:
    return lab.campaigns.public(lab.campaigns.put_state(p, name, body.state))


@router.post("/{name}/pause")
def pause(lab: LabDep, p: CurrentUser, name: str) -> dict[str, Any]:
    return lab.campaigns.public(lab.campaigns.set_status(p, name, "paused"))


@router.post("/{name}/resume")
def resume(lab: LabDep, p: CurrentUser, name: str) -> dict[str, Any]:
    return lab.campaigns.public(lab.campaigns.set_status(p, name, "running"))
