"""``/api/v1/`` registration of capabilities, tenants and users (operators), and tenant self-service."""

from __future__ import annotations

from fastapi import APIRouter

from labweave.schemas.api import UserCreate, UserPublic
from labweave.schemas.capability import Capability, CapabilityDetail
from labweave.schemas.tenant import LimitationEntry, TenantDefinition, TenantDetail

from .. import convert
from ..auth import add_user
from ..deps import CurrentOperator, CurrentUser, LabDep
from ..errors import Forbidden, NotFound
from ..requests import is_tenant_user

router = APIRouter(prefix="/api/v1", tags=["registry"])


@router.post("/capabilities", status_code=201)
def add_capability(lab: LabDep, p: CurrentOperator, body: Capability) -> CapabilityDetail:
    row = lab.registry.add_capability(body, p.username)
    cat = lab.registry.catalogue()
    return convert.capability_detail(cat.capabilities[(row.quantity, row.method)], cat)


@router.get("/capabilities")
def list_capabilities(lab: LabDep, p: CurrentUser) -> list[CapabilityDetail]:
    """Every registered capability, active or not, with the tenants offering it."""
    cat = lab.registry.catalogue()
    return [convert.capability_detail(c, cat) for _, c in sorted(cat.capabilities.items())]


@router.post("/tenants", status_code=201)
def add_tenant(lab: LabDep, p: CurrentOperator, body: TenantDefinition) -> TenantDetail:
    return convert.tenant_detail(lab.registry.add_tenant(body, p.username))


@router.get("/tenants")
def list_tenants(lab: LabDep, p: CurrentUser) -> list[TenantDetail]:
    lab.registry.invalidate()
    return [convert.tenant_detail(t) for t in lab.registry.catalogue().tenants.values()]


@router.get("/tenants/{tenant_uuid}")
def get_tenant(lab: LabDep, p: CurrentUser, tenant_uuid: str) -> TenantDetail:
    t = lab.registry.catalogue().tenants.get(tenant_uuid)
    if t is None:
        raise NotFound(f"tenant {tenant_uuid} not found")
    return convert.tenant_detail(t)


@router.put("/tenants/{tenant_uuid}/limitations")
def set_limitations(lab: LabDep, p: CurrentUser, tenant_uuid: str, body: list[LimitationEntry]) -> TenantDetail:
    """A tenant publishes its own limitations within what it was granted (or an operator grants them)."""
    if not p.is_operator and not (is_tenant_user(p) and p.tenant_uuid == tenant_uuid):
        raise Forbidden("a tenant user may change only its own tenant's limitations")
    if not p.is_operator:  # a tenant narrows what it was granted; it never widens it nor turns itself on
        return convert.tenant_detail(lab.registry.publish_limitations(tenant_uuid, body, p.username))
    t = lab.registry.catalogue().tenants.get(tenant_uuid)
    if t is None:
        raise NotFound(f"tenant {tenant_uuid} not found")
    definition = TenantDefinition(name=t.name, limitations=body, contact_person=t.contact_person,
                                  tenant_uuid=tenant_uuid)
    return convert.tenant_detail(lab.registry.add_tenant(definition, p.username))


@router.post("/tenants/{tenant_uuid}/deactivate")
def deactivate(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> TenantDetail:
    return convert.tenant_detail(lab.registry.set_tenant_active(tenant_uuid, False, p.username))


@router.post("/tenants/{tenant_uuid}/activate")
def activate(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> TenantDetail:
    return convert.tenant_detail(lab.registry.set_tenant_active(tenant_uuid, True, p.username))


@router.post("/tenants/{tenant_uuid}/stop")
def stop_tenant(lab: LabDep, p: CurrentUser, tenant_uuid: str) -> TenantDetail:
    """Emergency stop: the tenant's runtime brings its instruments to their safe state and fails its work.

    An operator stops any tenant; a tenant's own user reports a stop made at the
    instrument (its runtime does, after a local emergency stop), so that it shows
    and is reset here. Only an operator resets it (``resume``).
    """
    if not p.is_operator and not (is_tenant_user(p) and p.tenant_uuid == tenant_uuid):
        raise Forbidden("only an operator, or the tenant itself, can emergency-stop a tenant")
    return convert.tenant_detail(lab.registry.request_stop(tenant_uuid, p.username))


@router.post("/tenants/{tenant_uuid}/resume")
def resume_tenant(lab: LabDep, p: CurrentOperator, tenant_uuid: str) -> TenantDetail:
    """Reset an emergency stop: the tenant's runtime re-arms its instruments and claims again."""
    return convert.tenant_detail(lab.registry.clear_stop(tenant_uuid, p.username))


@router.post("/users", status_code=201)
def create_user(lab: LabDep, p: CurrentOperator, body: UserCreate) -> UserPublic:
    """Create an account, or reset an existing one's password, role and tenant."""
    user = add_user(lab.db, body.username, body.password, body.role, body.tenant_uuid, lab.settings.password_rounds)
    lab.auth.forget(user.username)
    return convert.user(user.username, user.role, user.tenant_uuid)


@router.get("/me")
def me(p: CurrentUser) -> UserPublic:
    """Who the token belongs to: the user, its role and the tenant it acts for."""
    return convert.user(p.username, p.role, p.tenant_uuid)
