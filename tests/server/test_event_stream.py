"""The event stream's shared reader: one query per tick for every open stream, nothing missed or sent
twice, a client far behind catches up from the table."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from sqlalchemy import event as sa_event

from labweave.services.server.event_stream import EventHub

from .helpers import flow_request, open_lab, two_flow_tenants


@pytest.fixture
def lab(sqlite_url):
    lab = open_lab(sqlite_url)
    two_flow_tenants(lab)
    return lab


def create(lab) -> str:
    r = lab.post("alice", "/api/v1/requests", json=flow_request())
    assert r.status_code == 201, r.text
    return r.json()["uuid"]


def count_event_reads(engine) -> tuple[list[int], object]:
    """A counter of SELECTs on the event table, and the listener to remove."""
    seen = [0]

    def listener(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM event" in statement:
            seen[0] += 1

    sa_event.listen(engine, "before_cursor_execute", listener)
    return seen, listener


def test_the_hub_holds_the_newest_events_and_says_when_a_cursor_is_behind(lab):
    async def scenario():
        hub = EventHub(lab.lab, poll_seconds=0.05, kept=3)
        async with hub.subscription():
            start = hub.newest
            for _ in range(5):
                await asyncio.to_thread(create, lab)
            deadline = time.monotonic() + 10
            while hub.newest < start + 5:
                assert time.monotonic() < deadline, "the hub did not read the new events"
                await hub.wait(0.5)
            assert hub.after(start) is None  # five new events, three held: read the table
            items, upto = hub.after(hub.floor)
            assert [i["id"] for i in items] == list(range(hub.floor + 1, hub.newest + 1)) and len(items) == 3
            assert upto == hub.newest
            assert hub.after(hub.newest, kinds=["request.status"]) == ([], hub.newest)
            assert hub.after(hub.floor, kinds=["no.such.kind"]) == ([], hub.newest)  # filtered, yet read
            first, _ = hub.after(hub.floor, limit=1)
            assert len(first) == 1 and first[0]["id"] == hub.floor + 1

    asyncio.run(scenario())


def test_many_streams_share_one_reader_and_each_gets_every_event(lab):
    cursor = lab.get("op", "/api/v1/events").json()["next_cursor"] or 0
    streams, received, ready = 6, {}, threading.Barrier(7)

    def listen(n: int) -> None:
        with lab.client.stream("GET", "/api/v1/events/stream", params={"after": cursor},
                               headers=lab.headers("op")) as stream:
            got = received.setdefault(n, [])
            for line in stream.iter_lines():
                if line.startswith(": labweave"):
                    ready.wait(30)
                if line.startswith("data:"):
                    got.append(json.loads(line[5:])["id"])
                    if len(got) == 3:
                        return

    with lab.client:  # one event loop for every request, as in a server process
        threads = [threading.Thread(target=listen, args=(n,), daemon=True) for n in range(streams)]
        for t in threads:
            t.start()
        ready.wait(30)
        reads, listener = count_event_reads(lab.lab.db.read)
        time.sleep(2.0)  # six quiet streams for two seconds
        quiet_reads = reads[0]
        sa_event.remove(lab.lab.db.read, "before_cursor_execute", listener)
        for _ in range(3):
            create(lab)
        for t in threads:
            t.join(30)
    assert all(len(received.get(n, [])) == 3 for n in range(streams)), received
    assert len({tuple(ids) for ids in received.values()}) == 1  # the same events, in order, none twice
    # one reader polling every 0.25 s: about 8 queries in two seconds, not six streams' worth (48)
    assert quiet_reads <= 16, quiet_reads
