"""The client against the real app: in-process, and over a real socket for retries."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import httpx
import pytest

from labweave.schemas.api import CampaignRecord, Claim, Event, EventPage, Lease, RequestDetail, UserPublic
from labweave.schemas.capability import CapabilityDetail, CapabilityPublic, CapabilityTemplate
from labweave.schemas.core import Request, RequestInfo, Result, ResultInfo
from labweave.schemas.tenant import MergedLimitation, TenantDetail, TenantInfo
from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.client.errors import (ConnectionFailed, Conflict, InvalidResponse, LabweaveError, NotFound,
                                             ValidationFailed)
from labweave.services.server.process import ServerProcess, free_port

from ..server.helpers import flow_request, flow_result, open_lab, two_flow_tenants


class CountingTransport(httpx.AsyncBaseTransport):
    """The real ASGI transport, counting the paths it carries."""

    def __init__(self, app):
        self.inner = httpx.ASGITransport(app=app)
        self.paths: list[str] = []

    async def handle_async_request(self, request):
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def lab(sqlite_url):
    lab = open_lab(sqlite_url)
    two_flow_tenants(lab)
    return lab


def client(lab, user, transport=None, **kw):
    transport = transport or httpx.ASGITransport(app=lab.client.app)
    return AsyncLabClient("http://lab", user, user, transport=transport, **kw)


def test_logs_in_once_and_speaks_both_route_sets(lab):
    transport = CountingTransport(lab.client.app)

    async def scenario():
        async with client(lab, "alice", transport) as alice, client(lab, "asab") as asab:
            uuid = await alice.post_request(flow_request())
            assert (await alice.get_request(uuid)).status == "pending"
            assert [r.uuid for r in await alice.all_requests()] == [uuid]
            claim = await asab.claim()
            assert claim.request.uuid == uuid and claim.lease.request_uuid == uuid
            assert claim.request.request.quantity == "electrolyte"
            await asab.heartbeat(uuid)
            tenant = (await asab.me()).tenant_uuid
            first = await asab.submit_result(flow_result(uuid, tenant), idempotency_key="once")
            again = await asab.submit_result(flow_result(uuid, tenant), idempotency_key="once")
            assert first.uuid == again.uuid
            assert (await alice.result_for_request(uuid)).uuid == first.uuid
            assert len(await alice.list_requests(status="resolved")) == 1
            assert (await asab.claim()) is None
            assert await alice.get_request("missing") is None

    asyncio.run(scenario())
    assert transport.paths.count("/user_management/authenticate") == 1


def test_4xx_are_typed_and_not_retried(lab):
    transport = CountingTransport(lab.client.app)

    async def scenario():
        async with client(lab, "alice", transport) as alice, client(lab, "asab") as asab:
            bad = flow_request()
            bad["parameters"]["flow"]["volume"] = "lots"
            with pytest.raises(ValidationFailed) as err:
                await alice.post_request(bad)
            assert "parameters.flow.volume" in str(err.value.detail)
            with pytest.raises(NotFound):
                await alice.request("missing")
            uuid = await alice.post_request(flow_request())
            await asab.claim()
            with pytest.raises(Conflict):
                await asab.update_request_status(uuid, "reserved")

    asyncio.run(scenario())
    assert transport.paths.count("/requests/") == 2  # one bad, one good: no retry of the 422


def test_an_expired_token_is_renewed(lab, sqlite_url):
    lab.lab.auth.token_seconds = 1  # tokens live one second

    async def scenario():
        async with client(lab, "alice") as alice:
            await alice.all_requests()
            alice._expires = 0  # pretend we could not read the expiry: the 401 path renews it
            time.sleep(1.1)
            assert await alice.all_requests() == []

    asyncio.run(scenario())


def test_retries_until_the_server_comes_up(sqlite_url, tmp_path):
    open_lab(sqlite_url).lab.close()
    port = free_port()
    server = ServerProcess(sqlite_url, port=port, log_path=tmp_path / "server.log")
    starter = threading.Timer(1.0, server.start)
    starter.start()
    try:
        with LabClient(server.url, "alice", "alice", retries=8, backoff=0.25) as c:
            assert c.all_requests() == []
    finally:
        starter.join()
        server.stop()


def test_gives_up_with_connection_failed():
    with LabClient(f"http://127.0.0.1:{free_port()}", "x", "y", retries=1, backoff=0.01) as c:
        with pytest.raises(ConnectionFailed):
            c.tenants()


def test_sync_wrapper_and_event_stream(sqlite_url, tmp_path):
    """Over a real socket: httpx's in-process transport buffers whole responses, so no streams."""
    open_lab(sqlite_url).lab.close()
    with ServerProcess(sqlite_url, log_path=tmp_path / "server.log") as server:
        with LabClient(server.url, "alice", "alice") as alice:
            after = 0
            while page := alice.events(after=after).items:
                after = page[-1].id
            uuid = alice.post_request(flow_request())
            stream = alice.stream_events(after=after)
            event = next(stream)
            assert event.subject == uuid and event.to_status == "pending"
            stream.close()


def test_answers_are_the_models_of_the_schemas(lab):
    """Every method returns the model its route publishes, and takes a model (or its JSON) as a body."""

    async def scenario():
        async with client(lab, "alice") as alice, client(lab, "asab") as asab, client(lab, "op") as op:
            me = await asab.me()
            assert isinstance(me, UserPublic) and me.role == "tenant"
            uuid = await alice.post_request(Request.model_validate(flow_request()))
            info = await alice.get_request(uuid)
            assert isinstance(info, RequestInfo) and info.request.methods == ["flow"]
            assert all(isinstance(r, RequestInfo) for r in await asab.pending_requests(quantity="electrolyte"))
            detail = await alice.create_request(flow_request(), campaign="c1", provenance={"strategy": "random"})
            assert isinstance(detail, RequestDetail) and detail.campaign == "c1"
            claim = await asab.claim(quantity="electrolyte", methods=["flow"], lease_seconds=30)
            assert isinstance(claim, Claim) and claim.lease.lease_seconds == 30
            assert isinstance(await asab.heartbeat(claim.request.uuid), Lease)
            result = Result.model_validate(flow_result(claim.request.uuid, me.tenant_uuid))
            posted = await asab.submit_result(result)
            assert isinstance(posted, ResultInfo) and posted.result.request_uuid == claim.request.uuid
            assert [r.uuid for r in await alice.list_results()] == [posted.uuid]
            assert {type(r) for r in await alice.list_requests(campaign="c1")} == {RequestDetail}
            assert isinstance((await alice.history(claim.request.uuid))[-1], Event)
            page = await op.events(limit=5)
            assert isinstance(page, EventPage) and len(page.items) == 5 and page.next_cursor == page.items[-1].id
            assert all(isinstance(c, CapabilityPublic) for c in await alice.capabilities())
            templates = await alice.capability_templates(quantity="electrolyte")
            assert isinstance(templates["electrolyte-flow"], CapabilityTemplate)
            assert all(isinstance(x, MergedLimitation) for x in await alice.limitations())
            assert all(isinstance(t, TenantInfo) for t in await alice.tenants())
            stopped = await op.stop_tenant(me.tenant_uuid)
            assert isinstance(stopped, TenantDetail) and stopped.stop_requested
            assert not (await op.resume_tenant(me.tenant_uuid)).stop_requested
            cap = next(c for c in await alice.capabilities() if c.method == "flow")
            again = await op.register_capability(cap.model_dump() | {"is_active": True})
            assert isinstance(again, CapabilityDetail) and me.tenant_uuid in again.offered_by
            record = await alice.put_campaign("c1", {"budget": 3})
            assert isinstance(record, CampaignRecord) and record.counts == {"pending": 1}
            assert (await alice.set_campaign_status("c1", "paused")).status == "paused"

    asyncio.run(scenario())


def test_an_answer_that_does_not_fit_its_model_is_an_invalid_response():
    """A server answering another shape (another version, not labweave) raises the client's own error."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/user_management/authenticate":
            return httpx.Response(200, json={"access_token": "a.b.c", "token_type": "bearer"})
        return httpx.Response(200, json={"uuid": "r1", "status": "pending"})

    async def scenario():
        async with AsyncLabClient("http://lab", "u", "p", transport=httpx.MockTransport(handler)) as c:
            with pytest.raises(InvalidResponse) as err:
                await c.request("r1")
            assert isinstance(err.value, LabweaveError) and err.value.path == "/api/v1/requests/r1"
            assert "ctime" in err.value.detail

    asyncio.run(scenario())


def test_the_sync_client_writes_out_every_method_of_the_core():
    """Real methods with the core's signatures and a docstring, so editors and type checkers see them."""
    assert "__getattr__" not in vars(LabClient)
    public = {name: fn for name, fn in vars(AsyncLabClient).items()
              if not name.startswith("_") and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn))}
    assert len(public) > 40
    for name, fn in public.items():
        if name == "close":
            continue
        twin = vars(LabClient).get(name)
        assert inspect.isfunction(twin), f"LabClient.{name} is missing"
        assert twin.__doc__, f"LabClient.{name} has no docstring"
        ours, theirs = inspect.signature(twin), inspect.signature(fn)
        assert list(ours.parameters.values()) == list(theirs.parameters.values()), name
        expected = theirs.return_annotation.replace("AsyncIterator", "Iterator")
        assert ours.return_annotation == expected, name
