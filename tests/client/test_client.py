"""The client against the real app: in-process, and over a real socket for retries."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.client.errors import ConnectionFailed, Conflict, NotFound, ValidationFailed
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
            assert (await alice.get_request(uuid))["status"] == "pending"
            assert [r["uuid"] for r in await alice.all_requests()] == [uuid]
            claim = await asab.claim()
            assert claim["request"]["uuid"] == uuid and claim["lease"]["request_uuid"] == uuid
            await asab.heartbeat(uuid)
            tenant = (await asab.me())["tenant_uuid"]
            first = await asab.submit_result(flow_result(uuid, tenant), idempotency_key="once")
            again = await asab.submit_result(flow_result(uuid, tenant), idempotency_key="once")
            assert first["uuid"] == again["uuid"]
            assert (await alice.result_for_request(uuid))["uuid"] == first["uuid"]
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
            while page := alice.events(after=after)["items"]:
                after = page[-1]["id"]
            uuid = alice.post_request(flow_request())
            stream = alice.stream_events(after=after)
            event = next(stream)
            assert event["subject"] == uuid and event["to_status"] == "pending"
            stream.close()
