"""A thin synchronous wrapper: each method runs the async core's method on a private loop.

The loop lives in a background thread, so the wrapper works from plain
scripts and from code that already runs an event loop of its own. Every
method is written out (same name, arguments and answer as
:class:`~.core.AsyncLabClient`'s), so editors and type checkers see them; each
only hands its call to the core through :meth:`LabClient._run`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from labweave.schemas.api import (CampaignRecord, CampaignStatus, Claim, Event, EventPage, LabStatus, Lease,
                                  RequestDetail, UserPublic)
from labweave.schemas.capability import Capability, CapabilityDetail, CapabilityPublic, CapabilityTemplate
from labweave.schemas.core import Request, RequestInfo, RequestStatus, Result, ResultInfo, ResultStatus
from labweave.schemas.tenant import (
    DeadLetter,
    LimitationEntry,
    MergedLimitation,
    TenantDeadLetter,
    TenantDefinition,
    TenantDetail,
    TenantInfo,
)

from .core import AsyncLabClient

if TYPE_CHECKING:
    import pandas as pd

    from labweave.services.export.bundle import CampaignData

T = TypeVar("T")


class LabClient:
    """The blocking twin of :class:`~.core.AsyncLabClient`: the same arguments (the transport an async
    one, which runs on the client's own loop), methods and answers."""

    def __init__(self, base_url: str, username: str, password: str, *,
                 transport: httpx.AsyncBaseTransport | None = None, retries: int = 5, backoff: float = 0.2,
                 timeout: float = 30.0):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labweave-client", daemon=True)
        self._thread.start()
        self._core = self._run(self._make(base_url, username, password, transport=transport, retries=retries,
                                          backoff=backoff, timeout=timeout))

    @staticmethod
    async def _make(*args: Any, **kwargs: Any) -> AsyncLabClient:
        return AsyncLabClient(*args, **kwargs)  # made on the loop that will use it

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine of the core on the client's loop and wait for its answer."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> T:
            return await agen.__anext__()

        async def close() -> None:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while True:
                try:
                    yield self._run(step())
                except StopAsyncIteration:
                    return
        finally:
            self._run(close())

    @property
    def username(self) -> str:
        return self._core.username

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._core.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "LabClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self) -> str:
        """Log in (FINALES2's OAuth2 password form) and keep the token."""
        return self._run(self._core.login())

    def post_request(self, request: Request | Mapping[str, Any]) -> str:
        """Post a request (FINALES2's ``POST /requests/``); returns its UUID."""
        return self._run(self._core.post_request(request))

    def get_request(self, request_uuid: str) -> RequestInfo | None:
        """A request by UUID; None if the server does not know it (or it is not yours to see)."""
        return self._run(self._core.get_request(request_uuid))

    def pending_requests(self, quantity: str | None = None, method: str | None = None) -> list[RequestInfo]:
        """Pending requests (for a tenant: those it can serve within its limitations)."""
        return self._run(self._core.pending_requests(quantity, method))

    def all_requests(self) -> list[RequestInfo]:
        """Every request you may see."""
        return self._run(self._core.all_requests())

    def update_request_status(self, request_uuid: str, new_status: RequestStatus | str, message: str = "") -> str:
        """FINALES2's status change: ``pending``, ``reserved`` or ``retracted``; returns the server's message."""
        return self._run(self._core.update_request_status(request_uuid, new_status, message))

    def post_result(self, result: Result | Mapping[str, Any]) -> str:
        """Post the result of a request you reserved (FINALES2's ``POST /results/``); returns its UUID."""
        return self._run(self._core.post_result(result))

    def post_unsolicited_result(self, result: Result | Mapping[str, Any]) -> str:
        """Post a result nobody asked for; returns its UUID."""
        return self._run(self._core.post_unsolicited_result(result))

    def get_result(self, result_uuid: str) -> ResultInfo | None:
        """A result by UUID; None if the server does not know it."""
        return self._run(self._core.get_result(result_uuid))

    def result_for_request(self, request_uuid: str) -> ResultInfo | None:
        """The result answering a request, or None while there is none (how a requester polls)."""
        return self._run(self._core.result_for_request(request_uuid))

    def results_requested(self, quantity: str | None = None, method: str | None = None) -> list[ResultInfo]:
        """Results (not deleted) of a quantity and method."""
        return self._run(self._core.results_requested(quantity, method))

    def update_result_status(self, result_uuid: str, new_status: ResultStatus | str, message: str = "") -> str:
        """Mark a result you posted ``deleted`` or ``amended``; returns the server's message."""
        return self._run(self._core.update_result_status(result_uuid, new_status, message))

    def capabilities(self, currently_available: bool = True) -> list[CapabilityPublic]:
        """Capabilities (by default only those some active tenant offers)."""
        return self._run(self._core.capabilities(currently_available))

    def capability_templates(self, quantity: str | None = None, method: str | None = None,
                             currently_available: bool = True) -> dict[str, CapabilityTemplate]:
        """Input and output templates by ``"<quantity>-<method>"``."""
        return self._run(self._core.capability_templates(quantity, method, currently_available))

    def limitations(self, currently_available: bool = True) -> list[MergedLimitation]:
        """Every active tenant's limitations per method, merged as alternatives."""
        return self._run(self._core.limitations(currently_available))

    def tenants(self) -> list[TenantInfo]:
        """Every registered tenant."""
        return self._run(self._core.tenants())

    def me(self) -> UserPublic:
        """The logged-in user: name, role, and the tenant it acts for."""
        return self._run(self._core.me())

    def create_request(self, request: Request | Mapping[str, Any], *, priority: int = 0,
                       parent_uuid: str | None = None, campaign: str | None = None,
                       provenance: Mapping[str, Any] | None = None, proposed: bool = False) -> RequestDetail:
        """Post a request with labweave's scheduling and provenance fields; ``proposed`` waits for an operator."""
        return self._run(self._core.create_request(request, priority=priority, parent_uuid=parent_uuid,
                                                   campaign=campaign, provenance=provenance, proposed=proposed))

    def request(self, request_uuid: str) -> RequestDetail:
        """A request with everything the server knows about it; :class:`~.errors.NotFound` if unknown."""
        return self._run(self._core.request(request_uuid))

    def history(self, request_uuid: str) -> list[Event]:
        """Every status change of a request: who, when, from, to, why."""
        return self._run(self._core.history(request_uuid))

    def claim(self, quantity: str | None = None, methods: Sequence[str] | None = None,
              lease_seconds: float | None = None) -> Claim | None:
        """The next request this tenant can serve, with its lease; None if there is none."""
        return self._run(self._core.claim(quantity, methods, lease_seconds))

    def heartbeat(self, request_uuid: str, lease_seconds: float | None = None) -> Lease:
        """Extend the lease of a request this tenant holds; :class:`~.errors.Conflict` once it is lost."""
        return self._run(self._core.heartbeat(request_uuid, lease_seconds))

    def release(self, request_uuid: str, reason: str = "released by its tenant") -> RequestDetail:
        """Give a held request back to the queue."""
        return self._run(self._core.release(request_uuid, reason))

    def fail(self, request_uuid: str, reason: str, retryable: bool = False) -> RequestDetail:
        """Report that a held request failed; a retryable failure returns it to the queue (up to a limit)."""
        return self._run(self._core.fail(request_uuid, reason, retryable))

    def cancel(self, request_uuid: str, reason: str = "cancelled") -> RequestDetail:
        """Retract a request you posted (or any, as an operator)."""
        return self._run(self._core.cancel(request_uuid, reason))

    def approve(self, request_uuid: str) -> RequestDetail:
        """Approve a proposed request (operators): it joins the queue."""
        return self._run(self._core.approve(request_uuid))

    def reject(self, request_uuid: str, reason: str = "rejected") -> RequestDetail:
        """Reject a proposed request (operators)."""
        return self._run(self._core.reject(request_uuid, reason))

    def submit_result(self, result: Result | Mapping[str, Any], idempotency_key: str | None = None) -> ResultInfo:
        """Post a result exactly once: the key makes retries (and re-posts after a restart) harmless."""
        return self._run(self._core.submit_result(result, idempotency_key))

    def list_requests(self, *, status: str | Sequence[str] | None = None, quantity: str | None = None,
                      method: str | None = None, campaign: str | None = None, owner: str | None = None,
                      parent: str | None = None, created_by: str | None = None) -> list[RequestDetail]:
        """Every request matching the filters (all pages), in creation order.

        Args:
            status: one status or several.
            owner: the tenant holding it; parent: the request it was asked for; created_by: a user name.
        """
        return self._run(self._core.list_requests(status=status, quantity=quantity, method=method, campaign=campaign,
                                                  owner=owner, parent=parent, created_by=created_by))

    def list_results(self, *, quantity: str | None = None, method: str | None = None,
                     request_uuid: str | None = None, campaign: str | None = None) -> list[ResultInfo]:
        """Every result (not deleted) matching the filters (all pages), in posting order."""
        return self._run(self._core.list_results(quantity=quantity, method=method, request_uuid=request_uuid,
                                                 campaign=campaign))

    def events(self, after: int = 0, kinds: Sequence[str] | None = None, limit: int = 500) -> EventPage:
        """One page of events after id ``after``; its ``next_cursor`` is the ``after`` of the next page."""
        return self._run(self._core.events(after, kinds, limit))

    def stream_events(self, after: int | None = None, kinds: Sequence[str] | None = None) -> Iterator[Event]:
        """Server-sent events as they happen; reconnects (from the last id seen) when the stream drops."""
        return self._iterate(self._core.stream_events(after, kinds))

    def register_capability(self, capability: Capability | Mapping[str, Any]) -> CapabilityDetail:
        """Register (or update) a capability; operators only."""
        return self._run(self._core.register_capability(capability))

    def register_tenant(self, tenant: TenantDefinition | Mapping[str, Any]) -> TenantDetail:
        """Register (or update) a tenant; operators only. The answer carries its ``tenant_uuid``."""
        return self._run(self._core.register_tenant(tenant))

    def add_user(self, username: str, password: str, role: str, tenant_uuid: str | None = None) -> UserPublic:
        """Create (or reset) an account; operators only."""
        return self._run(self._core.add_user(username, password, role, tenant_uuid))

    def stop_tenant(self, tenant_uuid: str) -> TenantDetail:
        """Emergency stop of a tenant (operators): it stops its instruments and releases its work."""
        return self._run(self._core.stop_tenant(tenant_uuid))

    def resume_tenant(self, tenant_uuid: str) -> TenantDetail:
        """Let a stopped tenant claim work again (operators)."""
        return self._run(self._core.resume_tenant(tenant_uuid))

    def report_dead_letters(self, tenant_uuid: str, letters: Sequence[DeadLetter]) -> list[TenantDeadLetter]:
        """Tell the server every result this tenant keeps because the server refused it (the tenant itself)."""
        return self._run(self._core.report_dead_letters(tenant_uuid, letters))

    def dead_letters(self) -> list[TenantDeadLetter]:
        """Every tenant's dead letters (operators)."""
        return self._run(self._core.dead_letters())

    def lab_status(self) -> LabStatus:
        """Whether an operator has paused the lab, since when and why."""
        return self._run(self._core.lab_status())

    def pause_lab(self, release_running: bool = False, reason: str = "") -> LabStatus:
        """Pause the whole lab (operators): tenants stop claiming; with ``release_running`` the work
        running now goes back to pending at once, else it finishes."""
        return self._run(self._core.pause_lab(release_running, reason))

    def resume_lab(self, reason: str = "") -> LabStatus:
        """Resume a paused lab (operators): tenants claim again."""
        return self._run(self._core.resume_lab(reason))

    def tenant(self, tenant_uuid: str) -> TenantDetail:
        """A tenant with when it was last seen and whether it is asked to stop."""
        return self._run(self._core.tenant(tenant_uuid))

    def set_limitations(self, tenant_uuid: str,
                        limitations: Sequence[LimitationEntry | Mapping[str, Any]]) -> TenantDetail:
        """Publish a tenant's limitations (its own tenant user, or an operator)."""
        return self._run(self._core.set_limitations(tenant_uuid, limitations))

    def campaign(self, name: str) -> CampaignRecord:
        """A campaign's record; :class:`~.errors.NotFound` if there is none of that name."""
        return self._run(self._core.campaign(name))

    def put_campaign(self, name: str, spec: Mapping[str, Any],
                     status: CampaignStatus | str | None = None) -> CampaignRecord:
        """Create a campaign, or change the spec (and status) of your own."""
        return self._run(self._core.put_campaign(name, spec, status))

    def put_campaign_state(self, name: str, state: Mapping[str, Any]) -> CampaignRecord:
        """Store the state a campaign's daemon keeps for people to read."""
        return self._run(self._core.put_campaign_state(name, state))

    def set_campaign_status(self, name: str, status: CampaignStatus | str) -> CampaignRecord:
        """Pause (``paused``) or resume (``running``) a campaign."""
        return self._run(self._core.set_campaign_status(name, status))

    def campaign_data(self, name: str) -> CampaignData:
        """A campaign's record, requests and results, and the lab's tenants (to name who ran what)."""
        return self._run(self._core.campaign_data(name))

    def campaign_frame(self, name: str) -> pd.DataFrame:
        """A campaign as a pandas DataFrame: one row per request with its provenance, result and objectives
        (columns: :mod:`labweave.services.export.frame`); :class:`~.errors.NotFound` if there is no such campaign."""
        return self._run(self._core.campaign_frame(name))
