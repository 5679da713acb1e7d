"""Rows to wire objects: the models of :mod:`labweave.schemas`, as every route answers them.

Requests, results, leases and events are on every hot path (a claim, a page
of a thousand requests, the event stream): a row was validated when it was
written, so their models are built without validating it again
(``model_construct``), each value given in its field's type.
``tests/server/test_openapi.py`` checks real answers against the published
schemas. Times are stored as Unix seconds and go on the wire as UTC datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from labweave.schemas.api import (CampaignRecord, CampaignStatus, Event, LabStatus, Lease, RequestDetail,
                                  UserPublic)
from labweave.schemas.capability import CapabilityDetail, CapabilityPublic
from labweave.schemas.core import Request as RequestBody
from labweave.schemas.core import RequestInfo, RequestStatus, ResultInfo, ResultStatus
from labweave.schemas.core import Result as ResultBody
from labweave.schemas.tenant import TenantDetail, TenantInfo

from .db.tables import Campaign, EventArchive, LabState, Request, Result, Tenant
from .db.tables import Event as EventRow
from .registry import Catalogue, CapabilityView


def stamp(t: float) -> datetime:
    """A stored time (Unix seconds) as a UTC datetime."""
    return datetime.fromtimestamp(t, tz=timezone.utc)


def when(t: float | None) -> datetime | None:
    """A stored time that may be unset."""
    return None if t is None else stamp(t)


def request_wire(uuid: str, ctime: float, quantity: str, methods: list[str], parameters: dict[str, Any],
                 tenant_uuid: str) -> str:
    """A request's :class:`RequestInfo` but its status (the one field that changes), as JSON text:
    written once when the request is stored (``Request.wire``)."""
    body = {"quantity": quantity, "methods": methods, "parameters": parameters, "tenant_uuid": tenant_uuid}
    return json.dumps({"uuid": uuid, "ctime": stamp(ctime).isoformat(), "request": body},
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def request_infos_json(rows: Iterable[tuple[str, str]]) -> bytes:
    """A JSON list of :class:`RequestInfo` from ``(status, wire)`` pairs, assembled as text.

    FINALES2's listings cannot be paged: thousands of requests go out on every
    poll. Each request's info was encoded once when it was stored
    (``Request.wire``), so here nothing is decoded, validated or encoded again:
    the status is added to the stored text. ``test_finales2_routes`` checks the
    answer against the models' own encoding.
    """
    return ("[" + ",".join(f'{w[:-1]},"status":"{s}"}}' for s, w in rows) + "]").encode()


def request_body(row: Request) -> RequestBody:
    return RequestBody.model_construct(quantity=row.quantity, methods=row.methods, parameters=row.parameters,
                                       tenant_uuid=row.tenant_uuid)


def request_info(row: Request) -> RequestInfo:
    return RequestInfo.model_construct(uuid=row.uuid, ctime=stamp(row.ctime), status=RequestStatus(row.status),
                                       request=request_body(row))


def request_detail(row: Request) -> RequestDetail:
    return RequestDetail.model_construct(
        uuid=row.uuid,
        ctime=stamp(row.ctime),
        status=RequestStatus(row.status),
        request=request_body(row),
        priority=row.priority,
        owner_tenant_uuid=row.owner_tenant_uuid,
        lease_expires_at=when(row.lease_expires),
        lease_expiries=row.lease_expiries,
        attempts=row.attempts,
        parent_uuid=row.parent_uuid,
        campaign=row.campaign,
        provenance=row.provenance,
        created_by=row.created_by,
        failure_reason=row.failure_reason,
        updated=when(row.updated),
    )


def lease(row: Request) -> Lease:
    if row.owner_tenant_uuid is None or row.lease_expires is None or row.lease_seconds is None:
        raise ValueError(f"request {row.uuid} is held by no lease")
    return Lease.model_construct(request_uuid=row.uuid, tenant_uuid=row.owner_tenant_uuid,
                                 expires_at=stamp(row.lease_expires), lease_seconds=float(row.lease_seconds))


def result_info(row: Result) -> ResultInfo:
    body = ResultBody.model_construct(data=row.data, quantity=row.quantity, method=[row.method],
                                      parameters={row.method: row.parameters}, tenant_uuid=row.tenant_uuid,
                                      request_uuid=row.request_uuid or "")
    return ResultInfo.model_construct(uuid=row.uuid, ctime=stamp(row.ctime), status=ResultStatus(row.status),
                                      result=body)


def event(row: EventRow | EventArchive) -> Event:
    if row.id is None:
        raise ValueError("an event is read from the table, where it has its id")
    return Event.model_construct(id=row.id, time=stamp(row.time), kind=row.kind, subject=row.subject,
                                 from_status=row.from_status, to_status=row.to_status, actor=row.actor,
                                 message=row.message, data=row.data)


def capability(view: CapabilityView) -> CapabilityPublic:
    return CapabilityPublic(quantity=view.quantity, method=view.method, json_schema_specifications=view.input_schema,
                            json_schema_result_output=view.output_schema)


def capability_detail(view: CapabilityView, cat: Catalogue) -> CapabilityDetail:
    return CapabilityDetail(quantity=view.quantity, method=view.method, is_active=view.is_active,
                            offered_by=sorted(cat.offers.get((view.quantity, view.method), {})),
                            json_schema_specifications=view.input_schema, json_schema_result_output=view.output_schema)


def tenant_info(row: Tenant) -> TenantInfo:
    return TenantInfo.model_validate({"tenant_uuid": row.uuid, "name": row.name, "limitations": row.limitations,
                                      "contact_person": row.contact_person, "is_active": row.is_active})


def tenant_detail(row: Tenant) -> TenantDetail:
    return TenantDetail.model_validate({"tenant_uuid": row.uuid, "name": row.name, "limitations": row.limitations,
                                        "contact_person": row.contact_person, "is_active": row.is_active,
                                        "last_seen": when(row.last_seen), "stop_requested": row.stop_requested})


def campaign(row: Campaign, counts: dict[str, int]) -> CampaignRecord:
    return CampaignRecord(name=row.name, status=CampaignStatus(row.status), spec=row.spec, state=row.state,
                          created_by=row.created_by, created=stamp(row.created), updated=stamp(row.updated),
                          counts={RequestStatus(k): n for k, n in counts.items()})


def user(username: str, role: str, tenant_uuid: str | None) -> UserPublic:
    return UserPublic.model_validate({"username": username, "role": role, "tenant_uuid": tenant_uuid})


def lab_status(state: LabState, running: int, released: int = 0) -> LabStatus:
    return LabStatus(paused=state.paused, release_running=state.release_running, reason=state.reason,
                     changed_by=state.changed_by or None, changed_at=stamp(state.changed) if state.changed else None,
                     running=running, released=released)
