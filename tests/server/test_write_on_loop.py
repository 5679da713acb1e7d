"""A route's SQLite write runs in place when the write lock is free at once and gives way to a worker
thread when it is not (another writer of this process, or another process, holds it); nothing is written
twice, and the connection's busy timeout is what it was. The driver statements store what Core would."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from labweave.services.server.db.driver import DriverStatement
from labweave.services.server.db.engine import WouldWait, open_database
from labweave.services.server.db.on_loop import run_write
from labweave.services.server.db.tables import Request, table_of
from labweave.services.server.requests import new_request
from labweave.schemas.core import RequestStatus

from .helpers import flow_request, open_lab

REQ = table_of(Request)
INSERT = DriverStatement(insert(REQ).returning(REQ.c.id), returning=True)


@pytest.fixture
def db(sqlite_url):
    from labweave.services.server.db.migrate import upgrade

    database = open_database(sqlite_url, busy_seconds=5.0)
    upgrade(database)
    yield database
    database.dispose()


def values(i: int) -> dict:
    return new_request(RequestStatus.PENDING, "q", ["m"], {"m": {"x": i, "name": "é"}}, "tenant", "alice")


def stored(db) -> int:
    with db.read.connect() as conn:
        return len(conn.execute(select(REQ.c.id)).all())


def test_the_write_runs_in_place_when_the_lock_is_free(db):
    threads = []

    def work():
        threads.append(threading.get_ident())
        with db.write.begin() as conn:
            return INSERT.execute(conn, values(1))

    async def main():
        return threading.get_ident(), await run_write(db, work)

    loop_thread, request_id = asyncio.run(main())
    assert threads == [loop_thread] and request_id == 1 and stored(db) == 1


def test_a_writer_of_this_process_holding_the_lock_sends_the_work_to_a_thread(db):
    threads: list[int] = []
    holding, release = threading.Event(), threading.Event()

    def holder():
        with db.write.begin() as conn:
            INSERT.execute(conn, values(0))
            holding.set()
            release.wait(10)

    def work():
        threads.append(threading.get_ident())
        with db.write.begin() as conn:
            return INSERT.execute(conn, values(1))

    async def main():
        release_later = asyncio.get_running_loop().call_later(0.3, release.set)
        try:
            return threading.get_ident(), await run_write(db, work)
        finally:
            release_later.cancel()

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    loop_thread, request_id = asyncio.run(main())
    t.join()
    # the first attempt gave way before writing; the worker thread waited for the holder and wrote once
    assert threads[0] == loop_thread and len(threads) == 2 and threads[1] != loop_thread
    assert request_id == 2 and stored(db) == 2


def test_another_process_holding_the_lock_sends_the_work_to_a_thread_without_waiting_on_the_loop(db, sqlite_url):
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with db.no_waiting(), pytest.raises(WouldWait):  # in place: refused at once, not after the busy timeout
        with db.write.begin() as conn:
            INSERT.execute(conn, values(0))
    threads: list[int] = []

    def work():
        threads.append(threading.get_ident())
        with db.write.begin() as conn:
            return INSERT.execute(conn, values(1))

    async def main():
        asyncio.get_running_loop().call_later(0.3, other.execute, "ROLLBACK")
        return threading.get_ident(), await run_write(db, work)

    loop_thread, request_id = asyncio.run(main())
    other.close()
    assert threads[0] == loop_thread and len(threads) == 2 and threads[1] != loop_thread
    assert request_id == 1 and stored(db) == 1
    with db.write.connect() as conn:  # the pool's connections wait the configured busy timeout again
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        conn.rollback()


def test_driver_statements_store_what_core_stores_and_raise_sqlalchemy_errors(db):
    first, second = values(1), values(2)
    with db.write.begin() as conn:
        first_id = INSERT.execute(conn, first)
        second_id = conn.execute(insert(REQ).returning(REQ.c.id), second).scalar_one()
    with db.read.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(REQ))}
    a, b = rows[first_id], rows[second_id]
    for column in ("methods", "parameters", "provenance", "wire", "status", "ctime", "tenant_uuid", "lease_beat"):
        assert getattr(a, column) == first[column] and getattr(b, column) == second[column], column
    assert a.parameters == {"m": {"x": 1, "name": "é"}}
    with pytest.raises(IntegrityError):  # the uuid is unique: the same error as through Core
        with db.write.begin() as conn:
            INSERT.execute(conn, first)
    assert stored(db) == 2


def test_creates_through_both_routes_keep_their_answers_and_events(sqlite_url):
    lab = open_lab(sqlite_url)
    r = lab.post("alice", "/requests/", json=flow_request())
    assert r.status_code == 200 and isinstance(r.json(), str)
    body = flow_request() | {"priority": 3}
    v1 = lab.post("alice", "/api/v1/requests", json=body)
    assert v1.status_code == 201 and v1.json()["priority"] == 3 and v1.json()["status"] == "pending"
    for uuid in (r.json(), v1.json()["uuid"]):
        history = lab.get("alice", f"/api/v1/requests/{uuid}/history").json()
        assert [(e["from_status"], e["to_status"]) for e in history] == [(None, "pending")]
        assert lab.get("alice", f"/requests/{uuid}").json()["uuid"] == uuid


def test_background_checkpoints_copy_the_log_and_commits_leave_it_to_them(sqlite_url):
    from labweave.services.server.db.engine import FALLBACK_CHECKPOINT_PAGES
    from labweave.services.server.db.migrate import upgrade

    db = open_database(sqlite_url, background_checkpoints=True)
    try:
        upgrade(db)
        with db.write.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == FALLBACK_CHECKPOINT_PAGES
            for i in range(50):
                INSERT.execute(conn, values(i))
        path = sqlite_url.removeprefix("sqlite:///")
        before = os.path.getsize(path)  # the new pages are still in the log: the commits left them there
        db.checkpoint()
        assert os.path.getsize(path) > before
        other = sqlite3.connect(path)  # nothing left to copy
        _, logged, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        other.close()
        assert logged == copied
        assert stored(db) == 50
    finally:
        db.dispose()


def test_writes_in_place_keep_their_connection_and_drop_one_a_database_error_spoiled(db):
    def in_place(values_: dict | None = None):
        with db.no_waiting():
            with db.writing() as conn:
                if values_ is not None:
                    INSERT.execute(conn, values_)
                return conn

    first = in_place(values(1))
    second = values(2)
    assert in_place(second) is first  # kept between transactions
    with db.writing() as conn:  # not in place: a pooled connection, handed back
        assert conn is not first
    duplicate = values(3) | {"uuid": second["uuid"]}
    with pytest.raises(IntegrityError):
        in_place(duplicate)
    assert first.closed  # a transaction the database refused does not leave its connection behind
    again = in_place(values(4))
    assert again is not first and not again.closed and stored(db) == 3
    db.dispose()
    assert again.closed
