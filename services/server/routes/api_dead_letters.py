"""``/api/v1/``: dead letters, reported by each tenant and listed to operators."""

from __future__ import annotations

from fastapi import APIRouter

from labweave.schemas.tenant import DeadLetterReport, TenantDeadLetter

from ..deps import CurrentOperator, CurrentUser, LabDep
from ..errors import Forbidden
from ..requests import is_tenant_user

router = APIRouter(prefix="/api/v1", tags=["dead letters"])


@router.put("/tenants/{tenant_uuid}/dead_letters")
def report_dead_letters(lab: LabDep, p: CurrentUser, tenant_uuid: str, body: DeadLetterReport) -> list[TenantDeadLetter]:
    """A tenant reports every result its outbox keeps because this server refused it (replacing its last report).

    Only the tenant itself reports; a stopped or deactivated tenant still may (it
    posts no result by it, it tells what it holds).
    """
    if not is_tenant_user(p) or p.tenant_uuid != tenant_uuid:  # a requester's account names a tenant too
        raise Forbidden("only the tenant itself reports its dead letters")
    return lab.dead_letters.report(tenant_uuid, body.letters, p.username)


@router.get("/dead_letters")
def list_dead_letters(lab: LabDep, p: CurrentOperator) -> list[TenantDeadLetter]:
    """Every tenant's dead letters, oldest first (operators): results kept because the server refused them."""
    return lab.dead_letters.listing()
