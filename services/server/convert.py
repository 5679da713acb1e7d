"""Rows to wire objects, as plain JSON-ready dicts (the hot paths skip re-validation).

Their shapes are the models in :mod:`labweave.schemas.core` and
:mod:`labweave.schemas.api`; the tests check them against those models.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .db.tables import Event, EventArchive, Request, Result


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def request_body(row: Request) -> dict[str, Any]:
    return {"quantity": row.quantity, "methods": row.methods, "parameters": row.parameters,
            "tenant_uuid": row.tenant_uuid}


def request_info(row: Request) -> dict[str, Any]:
    return {"uuid": row.uuid, "ctime": iso(row.ctime), "status": row.status, "request": request_body(row)}


def request_detail(row: Request) -> dict[str, Any]:
    out = request_info(row)
    out.update(
        priority=row.priority,
        owner_tenant_uuid=row.owner_tenant_uuid,
        lease_expires_at=iso(row.lease_expires),
        lease_expiries=row.lease_expiries,
        attempts=row.attempts,
        parent_uuid=row.parent_uuid,
        campaign=row.campaign,
        provenance=row.provenance,
        created_by=row.created_by,
        failure_reason=row.failure_reason,
        updated=iso(row.updated),
    )
    return out


def lease(row: Request) -> dict[str, Any]:
    return {"request_uuid": row.uuid, "tenant_uuid": row.owner_tenant_uuid,
            "expires_at": iso(row.lease_expires), "lease_seconds": row.lease_seconds}


def result_info(row: Result) -> dict[str, Any]:
    body = {
        "data": row.data,
        "quantity": row.quantity,
        "method": [row.method],
        "parameters": {row.method: row.parameters},
        "tenant_uuid": row.tenant_uuid,
        "request_uuid": row.request_uuid or "",
    }
    return {"uuid": row.uuid, "ctime": iso(row.ctime), "status": row.status, "result": body}


def event(row: Event | EventArchive) -> dict[str, Any]:
    return {"id": row.id, "time": iso(row.time), "kind": row.kind, "subject": row.subject,
            "from_status": row.from_status, "to_status": row.to_status, "actor": row.actor,
            "message": row.message, "data": row.data}
