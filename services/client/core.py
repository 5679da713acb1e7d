"""The async client: FINALES2's routes and labweave's ``/api/v1/``.

One core (:class:`AsyncLabClient`); :class:`labweave.services.client.sync.LabClient`
is a thin synchronous wrapper around it. The client logs in once and reuses
its token, renewing it shortly before it expires (or once, on a 401);
connection failures and 5xx answers are retried with exponential backoff
where a retry cannot duplicate anything (reads, idempotent writes, and
writes carrying an ``Idempotency-Key``); a 4xx is never retried. Pass
``transport=httpx.ASGITransport(app)`` to talk to an app in-process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .errors import ConnectionFailed, ServerError, rejected

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "PUT", "DELETE"}


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

    def __init__(self, base_url: str, username: str, password: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 retries: int = 5, backoff: float = 0.2, timeout: float = 30.0):
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
            self._token = response.json()["access_token"]
            self._expires = _token_expiry(self._token)
            return self._token

    async def _auth_headers(self) -> dict[str, str]:
        if self._token is None or (self._expires and self._expires - time.time() < 60):
            await self.login()
        return {"Authorization": f"Bearer {self._token}"}

    async def _send(self, method: str, path: str, *, authenticated: bool = True, retry_all: bool = False,
                    headers: dict[str, str] | None = None, **kw) -> httpx.Response:
        headers = dict(headers or {})
        retry_writes = retry_all or method in SAFE_METHODS or "Idempotency-Key" in headers
        renewed = False
        attempt = 0
        while True:
            if authenticated:
                headers.update(await self._auth_headers())
            try:
                response = await self._http.request(method, path, headers=headers, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached the server: always safe
                error: Exception = ConnectionFailed(f"{method} {path}: {exc}")
            except httpx.TransportError as exc:
                error = ConnectionFailed(f"{method} {path}: {exc}")
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
                if response.status_code < 500:
                    raise rejected(response.status_code, detail, method, path)
                error = ServerError(response.status_code, detail)
                if not retry_writes:
                    raise error
            if attempt >= self.retries:
                raise error
            delay = min(10.0, self.backoff * 2**attempt)
            attempt += 1
            log.warning("%s %s failed (%s); retry %d in %.1f s", method, path, error, attempt, delay)
            await asyncio.sleep(delay)

    async def _json(self, method: str, path: str, **kw) -> Any:
        response = await self._send(method, path, **kw)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- FINALES2 routes -------------------------------------------------
    async def post_request(self, request: dict) -> str:
        return await self._json("POST", "/requests/", json=request)

    async def get_request(self, request_uuid: str) -> dict | None:
        return await self._json("GET", f"/requests/{request_uuid}")

    async def pending_requests(self, quantity: str | None = None, method: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("quantity", quantity), ("method", method)) if v}
        return await self._json("GET", "/pending_requests/", params=params)

    async def all_requests(self) -> list[dict]:
        return await self._json("GET", "/all_requests/")

    async def update_request_status(self, request_uuid: str, new_status: str, message: str = "") -> str:
        params = {"request_id": request_uuid, "new_status": new_status, "status_change_message": message}
        return await self._json("POST", f"/requests/{request_uuid}/update_status/", params=params)

    async def post_result(self, result: dict) -> str:
        return await self._json("POST", "/results/", json=result)

    async def post_unsolicited_result(self, result: dict) -> str:
        return await self._json("POST", "/results/post_unsolicited_result", json=result)

    async def get_result(self, result_uuid: str) -> dict | None:
        return await self._json("GET", f"/results/{result_uuid}")

    async def result_for_request(self, request_uuid: str) -> dict | None:
        return await self._json("GET", f"/results_requested/{request_uuid}")

    async def results_requested(self, quantity: str | None = None, method: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("quantity", quantity), ("method", method)) if v}
        return await self._json("GET", "/results_requested/", params=params)

    async def capabilities(self, currently_available: bool = True) -> list[dict]:
        return await self._json("GET", "/capabilities/", params={"currently_available": currently_available})

    async def capability_templates(self, quantity: str | None = None, method: str | None = None,
                                   currently_available: bool = True) -> dict:
        params = {"currently_available": currently_available} | {
            k: v for k, v in (("quantity", quantity), ("method", method)) if v}
        return await self._json("GET", "/capabilities/templates/", params=params)

    async def limitations(self, currently_available: bool = True) -> list[dict]:
        return await self._json("GET", "/limitations/", params={"currently_available": currently_available})

    async def tenants(self) -> list[dict]:
        return await self._json("GET", "/tenants/")

    # -- labweave's /api/v1 ------------------------------------------------
    async def me(self) -> dict:
        return await self._json("GET", "/api/v1/me")

    async def create_request(self, request: dict, *, priority: int = 0, parent_uuid: str | None = None,
                             campaign: str | None = None, provenance: dict | None = None,
                             proposed: bool = False) -> dict:
        body = dict(request) | {"priority": priority, "parent_uuid": parent_uuid, "campaign": campaign,
                                "provenance": provenance or {}, "proposed": proposed}
        return await self._json("POST", "/api/v1/requests", json=body)

    async def request(self, request_uuid: str) -> dict:
        return await self._json("GET", f"/api/v1/requests/{request_uuid}")

    async def history(self, request_uuid: str) -> list[dict]:
        return await self._json("GET", f"/api/v1/requests/{request_uuid}/history")

    async def claim(self, quantity: str | None = None, methods: list[str] | None = None,
                    lease_seconds: float | None = None) -> dict | None:
        """The next request this tenant can serve, with its lease; None if there is none."""
        body = {"quantity": quantity, "methods": methods, "lease_seconds": lease_seconds}
        return await self._json("POST", "/api/v1/claims", json=body)

    async def heartbeat(self, request_uuid: str, lease_seconds: float | None = None) -> dict:
        params = {"lease_seconds": lease_seconds} if lease_seconds else None
        return await self._json("POST", f"/api/v1/requests/{request_uuid}/heartbeat", params=params)

    async def release(self, request_uuid: str, reason: str = "released by its tenant") -> dict:
        return await self._json("POST", f"/api/v1/requests/{request_uuid}/release", json={"reason": reason})

    async def fail(self, request_uuid: str, reason: str, retryable: bool = False) -> dict:
        return await self._json("POST", f"/api/v1/requests/{request_uuid}/fail",
                                json={"reason": reason, "retryable": retryable})

    async def cancel(self, request_uuid: str, reason: str = "cancelled") -> dict:
        return await self._json("POST", f"/api/v1/requests/{request_uuid}/cancel", json={"reason": reason})

    async def approve(self, request_uuid: str) -> dict:
        return await self._json("POST", f"/api/v1/requests/{request_uuid}/approve")

    async def reject(self, request_uuid: str, reason: str = "rejected") -> dict:
        return await self._json("POST", f"/api/v1/requests/{request_uuid}/reject", json={"reason": reason})

    async def submit_result(self, result: dict, idempotency_key: str | None = None) -> dict:
        """Post a result exactly once: the key makes retries (and re-posts after a restart) harmless."""
        key = idempotency_key or str(uuid.uuid4())
        return await self._json("POST", "/api/v1/results", json=result, headers={"Idempotency-Key": key})

    async def _pages(self, path: str, params: dict) -> AsyncIterator[dict]:
        cursor = None
        while True:
            query = {k: v for k, v in params.items() if v is not None} | ({"cursor": cursor} if cursor else {})
            page = await self._json("GET", path, params=query)
            for item in page["items"]:
                yield item
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def list_requests(self, **filters) -> list[dict]:
        """Every request matching the filters (status, quantity, method, campaign, owner, parent...)."""
        return [r async for r in self._pages("/api/v1/requests", {"limit": 500} | filters)]

    async def list_results(self, **filters) -> list[dict]:
        return [r async for r in self._pages("/api/v1/results", {"limit": 500} | filters)]

    async def events(self, after: int = 0, kinds: list[str] | None = None, limit: int = 500) -> dict:
        params: dict[str, Any] = {"after": after, "limit": limit} | ({"kind": kinds} if kinds else {})
        return await self._json("GET", "/api/v1/events", params=params)

    async def stream_events(self, after: int | None = None, kinds: list[str] | None = None) -> AsyncIterator[dict]:
        """Server-sent events as dicts; reconnects (from the last id seen) when the stream drops."""
        last = after
        attempt = 0
        while True:
            params: dict[str, Any] = {"kind": kinds} if kinds else {}
            if last is not None:
                params["after"] = last
            try:
                headers = await self._auth_headers()
                async with self._http.stream("GET", "/api/v1/events/stream", params=params, headers=headers,
                                             timeout=httpx.Timeout(30.0, read=None)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise rejected(response.status_code, _detail(response), "GET", "/api/v1/events/stream")
                    attempt = 0
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[6:])
                            last = event["id"]
                            yield event
            except httpx.TransportError as exc:
                delay = min(10.0, self.backoff * 2**attempt)
                attempt += 1
                log.warning("event stream dropped (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def register_capability(self, capability: dict) -> dict:
        return await self._json("POST", "/api/v1/capabilities", json=capability)

    async def register_tenant(self, tenant: dict) -> dict:
        return await self._json("POST", "/api/v1/tenants", json=tenant)

    async def add_user(self, username: str, password: str, role: str, tenant_uuid: str | None = None) -> dict:
        """Create (or reset) an account; operators only."""
        return await self._json("POST", "/api/v1/users", json={"username": username, "password": password,
                                                              "role": role, "tenant_uuid": tenant_uuid})

    async def stop_tenant(self, tenant_uuid: str) -> dict:
        """Emergency stop of a tenant (operators): it stops its instruments and releases its work."""
        return await self._json("POST", f"/api/v1/tenants/{tenant_uuid}/stop")

    async def resume_tenant(self, tenant_uuid: str) -> dict:
        return await self._json("POST", f"/api/v1/tenants/{tenant_uuid}/resume")

    async def tenant(self, tenant_uuid: str) -> dict:
        return await self._json("GET", f"/api/v1/tenants/{tenant_uuid}")

    async def set_limitations(self, tenant_uuid: str, limitations: list[dict]) -> dict:
        return await self._json("PUT", f"/api/v1/tenants/{tenant_uuid}/limitations", json=limitations)

    async def campaign(self, name: str) -> dict:
        return await self._json("GET", f"/api/v1/campaigns/{name}")

    async def put_campaign(self, name: str, spec: dict, status: str | None = None) -> dict:
        return await self._json("PUT", f"/api/v1/campaigns/{name}", json={"spec": spec, "status": status})

    async def put_campaign_state(self, name: str, state: dict) -> dict:
        return await self._json("PUT", f"/api/v1/campaigns/{name}/state", json={"state": state})

    async def set_campaign_status(self, name: str, status: str) -> dict:
        verb = {"paused": "pause", "running": "resume"}[status]
        return await self._json("POST", f"/api/v1/campaigns/{name}/{verb}")


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text
