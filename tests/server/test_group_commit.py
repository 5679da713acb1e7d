"""New requests that reach the server together share one SQLite transaction (``db.group_commit``): each caller
gets its own answer, a create that fails is rolled back alone, nothing is answered before it is committed, a
held write lock sends the writes to worker threads, and a failed COMMIT fails the whole batch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from functools import partial

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from labweave.schemas.api import RequestCreate
from labweave.services.server.db.tables import Event, Request, RequestMethod, Result, table_of
from labweave.services.server.errors import Invalid

from .helpers import flow_request, open_lab

REQ, EVENT, METHOD, RES = table_of(Request), table_of(Event), table_of(RequestMethod), table_of(Result)


@pytest.fixture
def lab(sqlite_url):
    t = open_lab(sqlite_url)
    yield t.lab, t.lab.auth.principal(t.tokens["alice"])
    t.client.close()


def body(**extra) -> RequestCreate:
    return RequestCreate.model_validate(flow_request() | extra)


def counts(lab) -> tuple[int, int, int]:
    """(requests, their creation events, method rows) stored."""
    with lab.db.read.connect() as conn:
        return (conn.execute(select(func.count()).select_from(REQ)).scalar_one(),
                conn.execute(select(func.count()).select_from(EVENT).where(EVENT.c.kind == "request.status")
                             ).scalar_one(),
                conn.execute(select(func.count()).select_from(METHOD)).scalar_one())


def commits_of(lab) -> list[int]:
    seen: list[int] = []
    event.listen(lab.db.write, "commit", lambda conn: seen.append(1))
    return seen


def creates(lab, p, bodies: list[RequestCreate]) -> list:
    """Every create handed over in one turn of the loop: each caller's value or exception."""

    async def main():
        return await asyncio.gather(*(lab.writes.run(partial(lab.requests.plan_create, p, b)) for b in bodies),
                                    return_exceptions=True)

    return asyncio.run(main())


def test_creates_of_one_turn_share_a_transaction_and_each_gets_its_own_request(lab):
    lab, p = lab
    commits = commits_of(lab)
    out = creates(lab, p, [body(priority=i) for i in range(12)])
    assert len(commits) == 1
    assert [r.priority for r in out] == list(range(12)) and len({r.uuid for r in out}) == 12
    assert counts(lab) == (12, 12, 12)
    with lab.db.read.connect() as conn:
        stored = dict(conn.execute(select(REQ.c.uuid, REQ.c.priority)).all())
    assert stored == {r.uuid: r.priority for r in out}


def test_a_create_that_fails_is_rolled_back_alone(lab):
    lab, p = lab
    # the event of a request of campaign 'boom' is refused by the database, after its request row was written
    with lab.db.write.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON event WHEN json_extract(NEW.data, '$.campaign') = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom refused'); END")
    out = creates(lab, p, [body(), body(campaign="boom"), body(parent_uuid="no-such-request"), body(priority=7)])
    assert isinstance(out[1], IntegrityError) and "boom refused" in str(out[1])
    assert isinstance(out[2], Invalid) and "parent_uuid" in str(out[2])
    assert out[0].priority == 0 and out[3].priority == 7
    assert counts(lab) == (2, 2, 2)  # neither the refused request's row nor its method row stayed
    with lab.db.read.connect() as conn:
        assert sorted(conn.execute(select(REQ.c.uuid)).scalars()) == sorted([out[0].uuid, out[3].uuid])


def test_a_create_alone_raises_its_own_error_and_stores_nothing(lab):
    lab, p = lab
    [out] = creates(lab, p, [body(parent_uuid="no-such-request")])
    assert isinstance(out, Invalid) and counts(lab) == (0, 0, 0)


def test_a_held_write_lock_sends_the_batch_to_a_worker_thread(lab, sqlite_url):
    lab, p = lab
    path = sqlite_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, as SQLite sees it
    other.execute("BEGIN IMMEDIATE")
    threads: list[int] = []
    event.listen(lab.db.write, "commit", lambda conn: threads.append(threading.get_ident()))

    async def main():
        loop_thread = threading.get_ident()
        asyncio.get_running_loop().call_later(0.3, other.rollback)
        out = await asyncio.gather(*(lab.writes.run(partial(lab.requests.plan_create, p, body(priority=i)))
                                     for i in range(3)))
        return loop_thread, out

    loop_thread, out = asyncio.run(main())
    other.close()
    assert [r.priority for r in out] == [0, 1, 2] and counts(lab) == (3, 3, 3)
    assert len(threads) == 1 and loop_thread not in threads  # one transaction, in a worker thread


def test_a_failed_commit_fails_every_create_of_the_batch_and_stores_none(lab, monkeypatch):
    lab, p = lab
    real_commit = lab.db.write.dialect.do_commit

    def full_disk(dbapi_conn):
        dbapi_conn.rollback()
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(lab.db.write.dialect, "do_commit", full_disk)
    out = creates(lab, p, [body(), body(), body()])
    monkeypatch.setattr(lab.db.write.dialect, "do_commit", real_commit)
    assert all(isinstance(o, OperationalError) and "full" in str(o) for o in out)
    assert counts(lab) == (0, 0, 0)
    assert [r.priority for r in creates(lab, p, [body(priority=1)])] == [1]  # the writer goes on afterwards


def test_concurrent_creates_over_http_are_answered_and_stored_once_each(sqlite_url):
    import httpx

    t = open_lab(sqlite_url)
    app = t.client.app

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lab") as client:
            answers = await asyncio.gather(*(
                client.post("/requests/", json=flow_request(), headers=t.headers("alice")) for _ in range(20)))
            bad = await client.post("/api/v1/requests", json=flow_request() | {"parent_uuid": "nope"},
                                    headers=t.headers("alice"))
        return answers, bad

    answers, bad = asyncio.run(main())
    assert [a.status_code for a in answers] == [200] * 20
    uuids = {a.json() for a in answers}
    assert len(uuids) == 20
    assert bad.status_code == 422 and "parent_uuid" in bad.text
    with t.lab.db.read.connect() as conn:
        assert set(conn.execute(select(REQ.c.uuid)).scalars()) == uuids
    t.client.close()


def test_results_posted_together_resolve_their_requests_once_each(sqlite_url):
    import httpx

    from .helpers import flow_result, two_flow_tenants

    t = open_lab(sqlite_url)
    two_flow_tenants(t)
    for _ in range(6):
        assert t.post("alice", "/requests/", json=flow_request()).status_code == 200
    held = [t.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"] for _ in range(6)]
    asab = t.tenants["ASAB_tenant"]
    app = t.client.app

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lab") as client:
            posts = [client.post("/results/", json=flow_result(u, asab), headers=t.headers("asab")) for u in held]
            posts.append(client.post("/results/", json=flow_result(held[0], asab), headers=t.headers("asab")))
            posts.append(client.post("/api/v1/results", json=flow_result("no-such-request", asab),
                                     headers=t.headers("asab")))
            posts.append(client.post("/api/v1/results", json=flow_result(held[1], asab),
                                     headers=t.headers("asab") | {"Idempotency-Key": "k-1"}))
            return await asyncio.gather(*posts)

    answers = asyncio.run(main())
    assert [a.status_code for a in answers[:7]] == [200] * 7
    assert answers[6].json() == answers[0].json()  # the same result again: the one stored, not a second
    assert answers[7].status_code == 404 and "request_uuid" in answers[7].text
    assert answers[8].status_code == 200 and answers[8].json()["uuid"] == answers[1].json()  # a repeat of the same data
    with t.lab.db.read.connect() as conn:
        assert sorted(conn.execute(select(RES.c.request_uuid)).scalars()) == sorted(held)
        assert set(conn.execute(select(REQ.c.status)).scalars()) == {"resolved"}
    metrics = t.client.get("/metrics").text
    assert 'labweave_results_refused_total{reason="not_found",status="404"} 1.0' in metrics
    t.client.close()
