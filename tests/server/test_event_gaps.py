"""Event ids are taken at insert, not at commit: on PostgreSQL (several replicas, or one with many
workers) an event with a smaller id can become visible after a larger one has been read. The stream's
hub must still send it, in id order, and must not wait forever for an id whose transaction rolled back."""

from __future__ import annotations

import asyncio
import time

import pytest

from labweave.services.server.event_stream import EventHub
from labweave.services.server.events import record

from .helpers import open_lab


@pytest.fixture
def pg_lab(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    lab = open_lab(database_url, tenants=False)
    yield lab.lab
    lab.lab.close()


def open_transaction(lab, subject: str):
    """A transaction that has inserted an event (its id taken) and not committed."""
    conn = lab.db.write.connect()
    trans = conn.begin()
    record(conn, "test.gap", subject, "test")
    return conn, trans


def insert_committed(lab, subject: str) -> None:
    with lab.db.write.begin() as conn:
        record(conn, "test.gap", subject, "test")


async def read_until(hub: EventHub, cursor: int, subjects: set[str], timeout: float) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while not subjects <= {i["subject"] for i in seen}:
        assert time.monotonic() < deadline, f"only {[i['subject'] for i in seen]} within {timeout} s"
        held = hub.after(cursor)
        assert held is not None
        items, cursor = held
        seen += items
        await hub.wait(0.2)
    return seen


@pytest.mark.postgres
def test_an_event_committed_after_a_later_one_is_still_sent_in_order(pg_lab):
    async def scenario():
        hub = EventHub(pg_lab, poll_seconds=0.05, gap_seconds=5.0)
        async with hub.subscription():
            start = hub.newest
            slow, trans = open_transaction(pg_lab, "slow")  # takes the smaller id
            await asyncio.to_thread(insert_committed, pg_lab, "fast")
            await asyncio.sleep(0.6)  # many polls: the hub holds "fast" back while "slow" may commit
            assert hub.after(start) == ([], start)
            trans.commit()
            slow.close()
            seen = await read_until(hub, start, {"slow", "fast"}, 5)
            assert [i["subject"] for i in seen] == ["slow", "fast"]
            assert [i["id"] for i in seen] == sorted(i["id"] for i in seen)

    asyncio.run(scenario())


@pytest.mark.postgres
def test_an_id_rolled_back_is_passed_over_after_the_grace(pg_lab):
    async def scenario():
        hub = EventHub(pg_lab, poll_seconds=0.05, gap_seconds=1.0)
        async with hub.subscription():
            start = hub.newest
            lost, trans = open_transaction(pg_lab, "rolled back")
            trans.rollback()
            lost.close()
            began = time.monotonic()
            await asyncio.to_thread(insert_committed, pg_lab, "after")
            seen = await read_until(hub, start, {"after"}, 10)
            assert [i["subject"] for i in seen] == ["after"]
            assert time.monotonic() - began >= 0.9  # it waited the grace for the missing id first

    asyncio.run(scenario())
