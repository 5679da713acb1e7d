"""An operator's set-up of a tenant: its capabilities, the tenant record, and its user."""

from __future__ import annotations

from labweave.drivers.base import Instrument
from labweave.services.client import AsyncLabClient


async def provision_tenant(operator: AsyncLabClient, name: str, instruments: list[Instrument], username: str,
                           password: str) -> str:
    """Register the instruments' capabilities, a tenant ``name`` offering them, and its user.

    Returns:
        The tenant's UUID (an existing tenant of that name is reused).
    """
    for inst in instruments:
        for cap in inst.capabilities():
            await operator.register_capability(cap)
    entries = [entry for inst in instruments for entry in inst.limitations()]
    existing = {t.name: t.tenant_uuid for t in await operator.tenants()}
    if name in existing:
        tenant_uuid = existing[name]
        await operator.set_limitations(tenant_uuid, entries)
    else:
        tenant_uuid = (await operator.register_tenant({"name": name, "limitations": entries,
                                                       "contact_person": "labweave"})).tenant_uuid
    await operator.add_user(username, password, "tenant", tenant_uuid)
    return tenant_uuid
