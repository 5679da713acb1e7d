"""The async client: FINALES2's routes and labweave's ``/api/v1/``, answering typed models.

One core (:class:`AsyncLabClient`); :class:`labweave.services.client.sync.LabClient`
is a thin synchronous wrapper around it. Every method returns the models of
:mod:`labweave.schemas` that the route publishes (``claim.request.request.quantity``),
and takes either such a model or its JSON as a body. An answer that does not
fit its model raises :class:`~.errors.InvalidResponse`. The client logs in once and reuses
its token, renewing it shortly before it expires (or once, on a 401);
connection failures and 5xx answers are retried with exponential backoff
where a retry cannot duplicate anything (reads, idempotent writes, and
writes carrying an ``Idempotency-Key``), waiting at least what a
``Retry-After`` asks for (at most :data:`MAX_WAIT` seconds a time). A 4xx is
never retried, but for 429 (the server did nothing and says when to come back),
which is retried like a 503. Pass
``transport=httpx.ASGITransport(app)`` to talk to an app in-process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from labweave.services import logs

from labweave.schemas.api import (CampaignRecord, CampaignStatus, Claim, Event, EventPage, LabStatus, Lease, Page,
                                  RequestDetail, RequestPage, ResultPage, UserPublic)
from labweave.schemas.capability import Capability, CapabilityDetail, CapabilityPublic, CapabilityTemplate
from labweave.schemas.core import AccessToken, Request, RequestInfo, RequestStatus, Result, ResultInfo, ResultStatus
from labweave.schemas.tenant import (
    DeadLetter,
    DeadLetterReport,
    LimitationEntry,
    MergedLimitation,
    TenantDeadLetter,
    TenantDefinition,
    TenantDetail,
    TenantInfo,
)

if TYPE_CHECKING:  # pandas is imported by the methods that use it, not by every client
    import pandas as pd

    from labweave.services.export.bundle import CampaignData

from .errors import ConnectionFailed, InvalidResponse, LabPaused, ServerError, rejected, retry_after

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "PUT", "DELETE"}
#: The longest wait between two attempts, whatever the backoff or a ``Retry-After`` says.
MAX_WAIT = 10.0

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: A body to send: a model of :mod:`labweave.schemas`, or its JSON as a mapping.
Body = BaseModel | Mapping[str, Any]

# The answers that are not one model: each parsed by its own adapter, built once.
TEXT: TypeAdapter[str] = TypeAdapter(str)
REQUEST_INFO: TypeAdapter[RequestInfo | None] = TypeAdapter(RequestInfo | None)
REQUEST_INFOS: TypeAdapter[list[RequestInfo]] = TypeAdapter(list[RequestInfo])
RESULT_INFO: TypeAdapter[ResultInfo | None] = TypeAdapter(ResultInfo | None)
RESULT_INFOS: TypeAdapter[list[ResultInfo]] = TypeAdapter(list[ResultInfo])
CAPABILITIES: TypeAdapter[list[CapabilityPublic]] = TypeAdapter(list[CapabilityPublic])
TEMPLATES: TypeAdapter[dict[str, CapabilityTemplate]] = TypeAdapter(dict[str, CapabilityTemplate])
LIMITATIONS: TypeAdapter[list[MergedLimitation]] = TypeAdapter(list[MergedLimitation])
TENANTS: TypeAdapter[list[TenantInfo]] = TypeAdapter(list[TenantInfo])
EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])
DEAD_LETTERS: TypeAdapter[list[TenantDeadLetter]] = TypeAdapter(list[TenantDeadLetter])


def as_json(body: Body) -> dict[str, Any]:
    """A body as JSON: a model dumped, a mapping as it is."""
    return body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)


def _token_expiry(token: str) -> float:
    """The ``exp`` of a JWT, read without verifying it (the server verifies)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return float(json.loads(base64.urlsafe_b64decode(payload)).get("exp", 0))
    except (IndexError, ValueError):
        return 0.0


class AsyncLabClient:
    """Talks to a labweave (or FINALES2) server as one user.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000``.
        username, password: the account to log in with.
        transport: an httpx transport (e.g. ``httpx.ASGITransport(app)``).
        retries: attempts after the first for retryable failures.
        backoff: first retry delay in seconds (doubling, capped at 10 s).
        timeout: seconds for one HTTP exchange.
    """

    def __init__(self, base_url: str, username: str, password: str, *,
                 transport: httpx.AsyncBaseTransport | None = None, retries: int = 5, backoff: float = 0.2,
                 timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)
        self._token: str | None = None
        self._expires = 0.0
        self._login_lock = asyncio.Lock()

    async def __aenter__(self) -> "AsyncLabClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- plumbing --------------------------------------------------------
    async def login(self) -> str:
        """Log in (FINALES2's OAuth2 password form) and keep the token."""
        async with self._login_lock:
            response = await self._send("POST", "/user_management/authenticate",
                                        data={"username": self.username, "password": self._password},
                                        authenticated=False, retry_all=True)
            self._token = parse(AccessToken, response).access_token
            self._expires = _token_expiry(self._token)
            return self._token

    async def _auth_headers(self) -> dict[str, str]:
        if self._token is None or (self._expires and self._expires - time.time() < 60):
            await self.login()
        return {"Authorization": f"Bearer {self._token}"}

    async def _send(self, method: str, path: str, *, authenticated: bool = True, retry_all: bool = False,
                    headers: dict[str, str] | None = None, **kw) -> httpx.Response:
        """One call, retried where that is safe; it carries the context's request id (or a new one, the
        same for its retries) in ``X-Request-ID``, so the server's log lines name the same id as ours."""
        headers = dict(headers or {})
        headers.setdefault(logs.HEADER, logs.current_request_id() or logs.new_request_id())
        with logs.request_id_bound(headers[logs.HEADER]):
            return await self._send_with_retries(method, path, authenticated, retry_all, headers, **kw)

    async def _send_with_retries(self, method: str, path: str, authenticated: bool, retry_all: bool,
                                 headers: dict[str, str], **kw) -> httpx.Response:
        retry_writes = retry_all or method in SAFE_METHODS or "Idempotency-Key" in headers
        renewed = False
        attempt = 0
        while True:
            if authenticated:
                headers.update(await self._auth_headers())
            try:
                response = await self._http.request(method, path, headers=headers, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached the server: always safe
                error: Exception = ConnectionFailed(f"{method} {path}: {exc or type(exc).__name__}")
            except httpx.TransportError as exc:
                error = ConnectionFailed(f"{method} {path}: {exc or type(exc).__name__}")
                if not retry_writes:
                    raise error from exc
            else:
                if response.status_code < 400:
                    return response
                detail = _detail(response)
                if response.status_code == 401 and authenticated and not renewed:
                    renewed = True
                    self._token = None
                    continue
                if response.status_code == 409 and _paused(response):
                    raise LabPaused(409, detail, method, path, _retry_after(response))
                if response.status_code == 429:  # refused before acting: always safe to send again
                    error = rejected(429, detail, method, path, _retry_after(response))
                elif response.status_code < 500:
                    raise rejected(response.status_code, detail, method, path)
                else:
                    error = ServerError(response.status_code, detail, _retry_after(response))
                    if not retry_writes:
                        raise error
            if attempt >= self.retries:
                raise error
            delay = min(MAX_WAIT, max(self.backoff * 2**attempt, retry_after(error) or 0.0))
            attempt += 1
            log.warning("%s %s failed (%s); retry %d in %.1f s", method, path, error, attempt, delay)
            await asyncio.sleep(delay)

    async def _model(self, model: type[M], method: str, path: str, **kw: Any) -> M:
        """Send, and read the answer as ``model``."""
        return parse(model, await self._send(method, path, **kw))

    async def _answer(self, adapter: TypeAdapter[T], method: str, path: str, **kw: Any) -> T:
        """Send, and read the answer with ``adapter`` (a list, an optional model, a string)."""
        return parse_with(adapter, await self._send(method, path, **kw))

    # -- FINALES2 routes -------------------------------------------------
    async def post_request(self, request: Request | Mapping[str, Any]) -> str:
        """Post a request (FINALES2's ``POST /requests/``); returns its UUID."""
        return await self._answer(TEXT, "POST", "/requests/", json=as_json(request))

    async def get_request(self, request_uuid: str) -> RequestInfo | None:
        """A request by UUID; None if the server does not know it (or it is not yours to see)."""
        return await self._answer(REQUEST_INFO, "GET", f"/requests/{request_uuid}")

    async def pending_requests(self, quantity: str | None = None, method: str | None = None) -> list[RequestInfo]:
        """Pending requests (for a tenant: those it can serve within its limitations)."""
        params = {k: v for k, v in (("quantity", quantity), ("method", method)) if v}
        return await self._answer(REQUEST_INFOS, "GET", "/pending_requests/", params=params)

    async def all_requests(self) -> list[RequestInfo]:
        """Every request you may see."""
        return await self._answer(REQUEST_INFOS, "GET", "/all_requests/")

    async def update_request_status(self, request_uuid: str, new_status: RequestStatus | str, message: str = "") -> str:
        """FINALES2's status change: ``pending``, ``reserved`` or ``retracted``; returns the server's message."""
        params = {"request_id": request_uuid, "new_status": RequestStatus(new_status).value,
                  "status_change_message": message}
        return await self._answer(TEXT, "POST", f"/requests/{request_uuid}/update_status/", params=params)

    async def post_result(self, result: Result | Mapping[str, Any]) -> str:
        """Post the result of a request you reserved (FINALES2's ``POST /results/``); returns its UUID."""
        return await self._answer(TEXT, "POST", "/results/", json=as_json(result))

    async def post_unsolicited_result(self, result: Result | Mapping[str, Any]) -> str:
        """Post a result nobody asked for; returns its UUID."""
        return await self._answer(TEXT, "POST", "/results/post_unsolicited_result", json=as_json(result))

    async def get_result(self, result_uuid: str) -> ResultInfo | None:
        """A result by UUID; None if the server does not know it."""
        return await self._answer(RESULT_INFO, "GET", f"/results/{result_uuid}")

    async def result_for_request(self, request_uuid: str) -> ResultInfo | None:
        """The result answering a request, or None while there is none (how a requester polls)."""
        return await self._answer(RESULT_INFO, "GET", f"/results_requested/{request_uuid}")

    async def results_requested(self, quantity: str | None = None, method: str | None = None) -> list[ResultInfo]:
        """Results (not deleted) of a quantity and method."""
        params = {k: v for k, v in (("quantity", quantity), ("method", method)) if v}
        return await self._answer(RESULT_INFOS, "GET", "/results_requested/", params=params)

    async def update_result_status(self, result_uuid: str, new_status: ResultStatus | str, message: str = "") -> str:
        """Mark a result you posted ``deleted`` or ``amended``; returns the server's message."""
        params = {"result_id": result_uuid, "new_status": ResultStatus(new_status).value,
                  "status_change_message": message}
        return await self._answer(TEXT, "POST", f"/results/{result_uuid}/update_status/", params=params)

    async def capabilities(self, currently_available: bool = True) -> list[CapabilityPublic]:
        """Capabilities (by default only those some active tenant offers)."""
        return await self._answer(CAPABILITIES, "GET", "/capabilities/",
                                  params={"currently_available": currently_available})

    async def capability_templates(self, quantity: str | None = None, method: str | None = None,
                                   currently_available: bool = True) -> dict[str, CapabilityTemplate]:
        """Input and output templates by ``"<quantity>-<method>"``."""
        params = {"currently_available": currently_available} | {
            k: v for k, v in (("quantity", quantity), ("method", method)) if v}
        return await self._answer(TEMPLATES, "GET", "/capabilities/templates/", params=params)

    async def limitations(self, currently_available: bool = True) -> list[MergedLimitation]:
        """Every active tenant's limitations per method, merged as alternatives."""
        return await self._answer(LIMITATIONS, "GET", "/limitations/",
                                  params={"currently_available": currently_available})

    async def tenants(self) -> list[TenantInfo]:
        """Every registered tenant."""
        return await self._answer(TENANTS, "GET", "/tenants/")

    # -- labweave's /api/v1 ------------------------------------------------
    async def me(self) -> UserPublic:
        """The logged-in user: name, role, and the tenant it acts for."""
        return await self._model(UserPublic, "GET", "/api/v1/me")

    async def create_request(self, request: Request | Mapping[str, Any], *, priority: int = 0,
                             parent_uuid: str | None = None, campaign: str | None = None,
                             provenance: Mapping[str, Any] | None = None, proposed: bool = False) -> RequestDetail:
        """Post a request with labweave's scheduling and provenance fields; ``proposed`` waits for an operator."""
        body = as_json(request) | {"priority": priority, "parent_uuid": parent_uuid, "campaign": campaign,
                                   "provenance": dict(provenance or {}), "proposed": proposed}
        return await self._model(RequestDetail, "POST", "/api/v1/requests", json=body)

    async def request(self, request_uuid: str) -> RequestDetail:
        """A request with everything the server knows about it; :class:`~.errors.NotFound` if unknown."""
        return await self._model(RequestDetail, "GET", f"/api/v1/requests/{request_uuid}")

    async def history(self, request_uuid: str) -> list[Event]:
        """Every status change of a request: who, when, from, to, why."""
        return await self._answer(EVENTS, "GET", f"/api/v1/requests/{request_uuid}/history")

    async def claim(self, quantity: str | None = None, methods: Sequence[str] | None = None,
                    lease_seconds: float | None = None) -> Claim | None:
        """The next request this tenant can serve, with its lease; None if there is none."""
        body = {"quantity": quantity, "methods": list(methods) if methods is not None else None,
                "lease_seconds": lease_seconds}
        response = await self._send("POST", "/api/v1/claims", json=body)
        return None if response.status_code == 204 else parse(Claim, response)

    async def heartbeat(self, request_uuid: str, lease_seconds: float | None = None) -> Lease:
        """Extend the lease of a request this tenant holds; :class:`~.errors.Conflict` once it is lost."""
        params = {"lease_seconds": lease_seconds} if lease_seconds else None
        return await self._model(Lease, "POST", f"/api/v1/requests/{request_uuid}/heartbeat", params=params)

    async def release(self, request_uuid: str, reason: str = "released by its tenant") -> RequestDetail:
        """Give a held request back to the queue."""
        return await self._model(RequestDetail, "POST", f"/api/v1/requests/{request_uuid}/release",
                                 json={"reason": reason})

    async def fail(self, request_uuid: str, reason: str, retryable: bool = False) -> RequestDetail:
        """Report that a held request failed; a retryable failure returns it to the queue (up to a limit)."""
        return await self._model(RequestDetail, "POST", f"/api/v1/requests/{request_uuid}/fail",
                                 json={"reason": reason, "retryable": retryable})

    async def cancel(self, request_uuid: str, reason: str = "cancelled") -> RequestDetail:
        """Retract a request you posted (or any, as an operator)."""
        return await self._model(RequestDetail, "POST", f"/api/v1/requests/{request_uuid}/cancel",
                                 json={"reason": reason})

    async def approve(self, request_uuid: str) -> RequestDetail:
        """Approve a proposed request (operators): it joins the queue."""
        return await self._model(RequestDetail, "POST", f"/api/v1/requests/{request_uuid}/approve")

    async def reject(self, request_uuid: str, reason: str = "rejected") -> RequestDetail:
        """Reject a proposed request (operators)."""
        return await self._model(RequestDetail, "POST", f"/api/v1/requests/{request_uuid}/reject",
                                 json={"reason": reason})

    async def submit_result(self, result: Result | Mapping[str, Any], idempotency_key: str | None = None) -> ResultInfo:
        """Post a result exactly once: the key makes retries (and re-posts after a restart) harmless."""
        key = idempotency_key or str(uuid.uuid4())
        return await self._model(ResultInfo, "POST", "/api/v1/results", json=as_json(result),
                                 headers={"Idempotency-Key": key})

    async def _pages(self, page: type[Page[T]], path: str, params: Mapping[str, Any]) -> AsyncIterator[T]:
        cursor = None
        while True:
            query = {k: v for k, v in params.items() if v is not None} | ({"cursor": cursor} if cursor else {})
            answer = await self._model(page, "GET", path, params=query)
            for item in answer.items:
                yield item
            cursor = answer.next_cursor
            if cursor is None:
                return

    async def list_requests(self, *, status: str | Sequence[str] | None = None, quantity: str | None = None,
                            method: str | None = None, campaign: str | None = None, owner: str | None = None,
                            parent: str | None = None, created_by: str | None = None) -> list[RequestDetail]:
        """Every request matching the filters (all pages), in creation order.

        Args:
            status: one status or several.
            owner: the tenant holding it; parent: the request it was asked for; created_by: a user name.
        """
        filters = {"status": status, "quantity": quantity, "method": method, "campaign": campaign, "owner": owner,
                   "parent": parent, "created_by": created_by, "limit": 500}
        return [r async for r in self._pages(RequestPage, "/api/v1/requests", filters)]

    async def list_results(self, *, quantity: str | None = None, method: str | None = None,
                           request_uuid: str | None = None, campaign: str | None = None) -> list[ResultInfo]:
        """Every result (not deleted) matching the filters (all pages), in posting order."""
        filters = {"quantity": quantity, "method": method, "request_uuid": request_uuid, "campaign": campaign,
                   "limit": 500}
        return [r async for r in self._pages(ResultPage, "/api/v1/results", filters)]

    async def events(self, after: int = 0, kinds: Sequence[str] | None = None, limit: int = 500) -> EventPage:
        """One page of events after id ``after``; its ``next_cursor`` is the ``after`` of the next page."""
        params: dict[str, Any] = {"after": after, "limit": limit} | ({"kind": list(kinds)} if kinds else {})
        return await self._model(EventPage, "GET", "/api/v1/events", params=params)

    async def stream_events(self, after: int | None = None, kinds: Sequence[str] | None = None) -> AsyncIterator[Event]:
        """Server-sent events as they happen; reconnects (from the last id seen) when the stream drops."""
        last = after
        attempt = 0
        path = "/api/v1/events/stream"
        while True:
            params: dict[str, Any] = {"kind": list(kinds)} if kinds else {}
            if last is not None:
                params["after"] = last
            try:
                headers = await self._auth_headers()
                async with self._http.stream("GET", path, params=params, headers=headers,
                                             timeout=httpx.Timeout(30.0, read=None)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise rejected(response.status_code, _detail(response), "GET", path)
                    attempt = 0
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            event = parse_text(Event, line[6:], "GET", path)
                            last = event.id
                            yield event
            except httpx.TransportError as exc:
                delay = min(10.0, self.backoff * 2**attempt)
                attempt += 1
                log.warning("event stream dropped (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def register_capability(self, capability: Capability | Mapping[str, Any]) -> CapabilityDetail:
        """Register (or update) a capability; operators only."""
        return await self._model(CapabilityDetail, "POST", "/api/v1/capabilities", json=as_json(capability))

    async def register_tenant(self, tenant: TenantDefinition | Mapping[str, Any]) -> TenantDetail:
        """Register (or update) a tenant; operators only. The answer carries its ``tenant_uuid``."""
        return await self._model(TenantDetail, "POST", "/api/v1/tenants", json=as_json(tenant))

    async def add_user(self, username: str, password: str, role: str, tenant_uuid: str | None = None) -> UserPublic:
        """Create (or reset) an account; operators only."""
        body = {"username": username, "password": password, "role": role, "tenant_uuid": tenant_uuid}
        return await self._model(UserPublic, "POST", "/api/v1/users", json=body)

    async def stop_tenant(self, tenant_uuid: str) -> TenantDetail:
        """Emergency stop of a tenant (operators): it stops its instruments and releases its work."""
        return await self._model(TenantDetail, "POST", f"/api/v1/tenants/{tenant_uuid}/stop")

    async def resume_tenant(self, tenant_uuid: str) -> TenantDetail:
        """Let a stopped tenant claim work again (operators)."""
        return await self._model(TenantDetail, "POST", f"/api/v1/tenants/{tenant_uuid}/resume")

    async def report_dead_letters(self, tenant_uuid: str, letters: Sequence[DeadLetter]) -> list[TenantDeadLetter]:
        """Tell the server every result this tenant keeps because the server refused it (the tenant itself)."""
        body = DeadLetterReport(letters=list(letters)).model_dump(mode="json")
        return await self._answer(DEAD_LETTERS, "PUT", f"/api/v1/tenants/{tenant_uuid}/dead_letters", json=body)

    async def dead_letters(self) -> list[TenantDeadLetter]:
        """Every tenant's dead letters (operators)."""
        return await self._answer(DEAD_LETTERS, "GET", "/api/v1/dead_letters")

    async def lab_status(self) -> LabStatus:
        """Whether an operator has paused the lab, since when and why."""
        return await self._model(LabStatus, "GET", "/api/v1/lab")

    async def pause_lab(self, release_running: bool = False, reason: str = "") -> LabStatus:
        """Pause the whole lab (operators): tenants stop claiming; with ``release_running`` the work
        running now goes back to pending at once, else it finishes."""
        return await self._model(LabStatus, "POST", "/api/v1/lab/pause",
                                 json={"release_running": release_running, "reason": reason})

    async def resume_lab(self, reason: str = "") -> LabStatus:
        """Resume a paused lab (operators): tenants claim again."""
        return await self._model(LabStatus, "POST", "/api/v1/lab/resume", json={"reason": reason})

    async def tenant(self, tenant_uuid: str) -> TenantDetail:
        """A tenant with when it was last seen and whether it is asked to stop."""
        return await self._model(TenantDetail, "GET", f"/api/v1/tenants/{tenant_uuid}")

    async def set_limitations(self, tenant_uuid: str,
                              limitations: Sequence[LimitationEntry | Mapping[str, Any]]) -> TenantDetail:
        """Publish a tenant's limitations (its own tenant user, or an operator)."""
        return await self._model(TenantDetail, "PUT", f"/api/v1/tenants/{tenant_uuid}/limitations",
                                 json=[as_json(entry) for entry in limitations])

    async def campaign(self, name: str) -> CampaignRecord:
        """A campaign's record; :class:`~.errors.NotFound` if there is none of that name."""
        return await self._model(CampaignRecord, "GET", f"/api/v1/campaigns/{name}")

    async def put_campaign(self, name: str, spec: Mapping[str, Any],
                           status: CampaignStatus | str | None = None) -> CampaignRecord:
        """Create a campaign, or change the spec (and status) of your own."""
        body = {"spec": dict(spec), "status": CampaignStatus(status).value if status is not None else None}
        return await self._model(CampaignRecord, "PUT", f"/api/v1/campaigns/{name}", json=body)

    async def put_campaign_state(self, name: str, state: Mapping[str, Any]) -> CampaignRecord:
        """Store the state a campaign's daemon keeps for people to read."""
        return await self._model(CampaignRecord, "PUT", f"/api/v1/campaigns/{name}/state", json={"state": dict(state)})

    async def set_campaign_status(self, name: str, status: CampaignStatus | str) -> CampaignRecord:
        """Pause (``paused``) or resume (``running``) a campaign."""
        verb = {CampaignStatus.PAUSED: "pause", CampaignStatus.RUNNING: "resume"}[CampaignStatus(status)]
        return await self._model(CampaignRecord, "POST", f"/api/v1/campaigns/{name}/{verb}")


    async def campaign_data(self, name: str) -> CampaignData:
        """A campaign's record, requests and results, and the lab's tenants (to name who ran what)."""
        from labweave.services.export.bundle import CampaignData

        record = await self.campaign(name)
        requests = await self.list_requests(campaign=name)
        results = await self.list_results(campaign=name)
        return CampaignData(record, requests, results, await self.tenants())

    async def campaign_frame(self, name: str) -> pd.DataFrame:
        """A campaign as a pandas DataFrame: one row per request with its provenance, result and objectives
        (columns: :mod:`labweave.services.export.frame`); :class:`~.errors.NotFound` if there is no such campaign."""
        return (await self.campaign_data(name)).frame()

def parse(model: type[M], response: httpx.Response) -> M:
    """An answer read as ``model``; :class:`~.errors.InvalidResponse` if it does not fit."""
    return parse_text(model, response.content, response.request.method, response.request.url.path)


def parse_text(model: type[M], text: str | bytes, method: str, path: str) -> M:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise InvalidResponse(method, path, exc) from None


def parse_with(adapter: TypeAdapter[T], response: httpx.Response) -> T:
    """An answer read by ``adapter``; :class:`~.errors.InvalidResponse` if it does not fit."""
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise InvalidResponse(response.request.method, response.request.url.path, exc) from None


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds of a ``Retry-After`` header (its HTTP-date form is not used by labweave)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _paused(response: httpx.Response) -> bool:
    """Whether a refusal names an operator's pause of the lab (its body says ``"lab": "paused"``)."""
    try:
        return response.json().get("lab") == "paused"
    except (ValueError, AttributeError):
        return False


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text
