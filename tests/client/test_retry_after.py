"""The client waits what a 503's ``Retry-After`` asks for (within its cap) and says so in its error."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from labweave.schemas.api import UserPublic
from labweave.services.client import AsyncLabClient
from labweave.services.client.core import MAX_WAIT
from labweave.services.client.errors import TRANSIENT, ServerError, retry_after


def ask_who_alice_is(transport: httpx.MockTransport, **options) -> UserPublic:
    """Alice's client, with ``options``, asks the server through ``transport`` who she is; the answer."""

    async def scenario():
        async with AsyncLabClient("http://lab", "alice", "pw", transport=transport, **options) as alice:
            return await alice.me()

    return asyncio.run(scenario())


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The client's waits between tries, recorded instead of slept."""
    recorded: list[float] = []

    async def no_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr("labweave.services.client.core.asyncio.sleep", no_sleep)
    return recorded


def busy_then_ok(busy: int, retry: str) -> tuple[httpx.MockTransport, list[float]]:
    """A server whose database is locked for the first ``busy`` reads; the times it was asked."""
    asked: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/user_management/authenticate":
            return httpx.Response(200, json={"access_token": "a.e30.b", "token_type": "bearer"})
        asked.append(time.monotonic())
        if len(asked) <= busy:
            return httpx.Response(503, json={"detail": "the database is locked by another writer; try again later",
                                             "fault": "locked"}, headers={"Retry-After": retry})
        return httpx.Response(200, json={"username": "alice", "role": "requester"})

    return httpx.MockTransport(handle), asked


def test_a_503_is_retried_after_the_seconds_it_asks_for():
    transport, asked = busy_then_ok(2, "0.5")
    assert ask_who_alice_is(transport, backoff=0.01).username == "alice"
    gaps = [b - a for a, b in zip(asked, asked[1:])]
    assert len(gaps) == 2 and all(gap >= 0.5 for gap in gaps), gaps  # not the 0.01 s of its own back-off


def test_the_wait_is_capped_and_the_last_error_carries_retry_after(waits):
    transport, asked = busy_then_ok(10, "3600")
    with pytest.raises(ServerError) as err:
        ask_who_alice_is(transport, retries=2)
    assert waits == [MAX_WAIT, MAX_WAIT] and len(asked) == 3
    assert err.value.status_code == 503 and retry_after(err.value) == 3600.0
    assert isinstance(err.value, TRANSIENT)


def throttled_then_ok(throttled: int, retry: str) -> tuple[httpx.MockTransport, list[float]]:
    """A server that throttles the first ``throttled`` logins with 429; the times it was asked to log in."""
    asked: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/user_management/authenticate":
            asked.append(time.monotonic())
            if len(asked) <= throttled:
                return httpx.Response(429, json={"detail": "too many failed logins; try again later"},
                                      headers={"Retry-After": retry})
            return httpx.Response(200, json={"access_token": "a.e30.b", "token_type": "bearer"})
        return httpx.Response(200, json={"username": "alice", "role": "requester"})

    return httpx.MockTransport(handle), asked


def test_a_throttled_login_waits_what_the_429_asks_then_logs_in():
    transport, asked = throttled_then_ok(1, "0.4")
    assert ask_who_alice_is(transport, backoff=0.01).username == "alice"
    assert len(asked) == 2 and asked[1] - asked[0] >= 0.4


def test_a_login_throttled_past_the_retries_is_transient_and_says_how_long(waits):
    from labweave.services.client import TooManyRequests

    transport, asked = throttled_then_ok(10, "120")
    with pytest.raises(TooManyRequests) as err:
        ask_who_alice_is(transport, retries=1)
    assert isinstance(err.value, TRANSIENT) and retry_after(err.value) == 120.0
    assert len(asked) == 2 and waits == [MAX_WAIT]


def test_a_429_on_a_write_is_retried_because_nothing_was_done():
    posts: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/user_management/authenticate":
            return httpx.Response(200, json={"access_token": "a.e30.b", "token_type": "bearer"})
        posts.append(1)
        if len(posts) == 1:
            return httpx.Response(429, json={"detail": "slow down"}, headers={"Retry-After": "0"})
        return httpx.Response(200, json="abc")

    async def scenario():
        async with AsyncLabClient("http://lab", "alice", "pw", transport=httpx.MockTransport(handle),
                                  backoff=0.01) as alice:
            return await alice.post_request({"quantity": "q", "methods": ["m"], "parameters": {}})

    assert asyncio.run(scenario()) == "abc" and len(posts) == 2
