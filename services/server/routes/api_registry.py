"""``/api/v1/`` registration of capabilities, tenants and users (operators), and tenant self-service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from labweave.schemas.api import UserCreate
from labweave.schemas.capability import Capability
from labweave.schemas.tenant import LimitationEntry, TenantDefinition

from ..auth import add_user
from ..deps import CurrentOperator, CurrentUser, LabDep
from ..errors import Forbidden, NotFound

router = APIRouter(prefix="/api/v1", tags=["registry"])


def tenant_public(lab, t) -> dict[str, Any]:
    return {"tenant_uuid": t.uuid, "name": t.name, "limitations": t.limitations, "contact_person": t.contact_person,
            "is_active": t.is_active, "last_seen": t.last_seen, "stop_requested": t.stop_requested}


@router.post("/capabilities", status_code=201)
def add_capability(lab: LabDep, p: CurrentOperator, body: Capability) -> dict[str, Any]:
    row = lab.registry.add_capability(body, p.username)
    return {"quantity": row.quantity, "method": row.method, "is_active": row.is_active}


@router.get("/capabilities")
def list_capabilities(lab: LabDep, p: CurrentUser) -> list[dict[str, Any]]:
    cat = lab.registry.catalogue()
    return [
        {"quantity": q, "method": m, "is_active": c.is_active, "offered_by": sorted(cat.offers.get((q, m), {})),
         "json_schema_specifications": c.input_schema, "json_schema_result_output": c.output_schema}
        for (q, m), c in sorted(cat.capabilities.items())
    ]


@router.post("/tenants", status_code=201)
def add_tenant(lab: LabDep, p: CurrentOperator, body: TenantDefinition) -> dict[str, Any]:
    return tenant_public(lab, lab.registry.add_tenant(body, p.username))


@router.get("/tenants")
def list_tenants(lab: LabDep, p: CurrentUser) -> list[dict[str, Any]]:
    lab.registry.invalidate()
    return [tenant_public(lab, t) for t in lab.registry.catalogue().tenants.values()]


@router.get("/tenants/{tenant_uuid}")
def get_tenant(lab: LabDep, p: CurrentUser, tenant_uuid: str) -> dict[str, Any]:
    t = lab.registry.catalogue().tenants.get(tenant_uuid)
    if t is None:
        raise NotFound(f"tenant {tenant_uuid} not found")
    return tenant_public(lab, t)


@router.put("/tenants/{tenant_uuid}/limitations")
def set_limitations(lab: LabDep, p: CurrentUser, tenant_uuid: str, body: list[LimitationEntry]) -> dict[str, Any]:
    """A tenant publishes its own limitations within what it was granted (or an operator grants them)."""
    if not p.is_operator and p.tenant_uuid != tenant_uuid:
        raise Forbidden("a tenant user may change only its own tenant's limitations")
    if not p.is_operator:  # a tenant narrows what it was granted; it never widens it nor turns itself on
        return tenant_public(lab, lab.registry.publish_limitations(tenant_uuid, body, p.username))
    t = lab.registry.catalogue().tenants.get(tenant_uuid)
    if t is None:
        raise NotFound(f"tenant {tenant_uuid} not found")
    definition = TenantDefinition(name=t.name, limitations=body, contact_person=t.contact_person,
                                  tenant_uuid=tenant_uuid)
    return tenant_public(lab, lab.registry.add_tenant(definition, p.username))


@router.post("/tenants/{tenant_uuid}/deactivate")
def deactivate(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> dict[str, Any]:
    return tenant_public(lab, lab.registry.set_tenant_active(tenant_uuid, False, p.username))


@router.post("/tenants/{tenant_uuid}/activate")
def activate(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> dict[str, Any]:
    return tenant_public(lab, lab.registry.set_tenant_active(tenant_uuid, True, p.username))


@router.post("/tenants/{tenant_uuid}/stop")
def stop_tenant(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> dict[str, Any]:
    """Emergency stop: the tenant's runtime stops its instrument and releases or fails its work."""
    return tenant_public(lab, lab.registry.request_stop(tenant_uuid, p.username))


@router.post("/tenants/{tenant_uuid}/resume")
def resume_tenant(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> dict[str, Any]:
    return tenant_public(lab, lab.registry.clear_stop(tenant_uuid, p.username))


@router.post("/users", status_code=201)
def create_user(lab: LabDep, p: CurrentOperator, body: UserCreate) -> dict[str, Any]:
    user = add_user(lab.db, body.username, body.password, body.role, body.tenant_uuid, lab.settings.password_rounds)
    lab.auth.forget(user.username)
    return {"username": user.username, "role": user.role, "tenant_uuid": user.tenant_uuid}


@router.get("/me")
def me(p: CurrentUser) -> dict[str, Any]:
    return {"username": p.username, "role": p.role, "tenant_uuid": p.tenant_uuid}
