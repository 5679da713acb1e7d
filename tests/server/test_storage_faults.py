"""A locked, full or read-only database answers 503 with Retry-After, promptly,
never a bare 500; readiness proves a write works, liveness does not care."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import event

from .helpers import flow_request, open_lab


@pytest.fixture
def lab(sqlite_url):
    return open_lab(sqlite_url, database_busy_seconds=1.0)


def database_file(lab) -> str:
    return lab.lab.db.write.url.database


def requests_stored(lab) -> int:
    return len(lab.get("op", "/all_requests/").json())


def test_a_database_locked_by_another_process_answers_503_promptly(lab):
    before = requests_stored(lab)
    holder = sqlite3.connect(database_file(lab), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answers = []

        def create():
            answers.append(lab.post("alice", "/requests/", json=flow_request()))

        start = time.monotonic()
        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - start
        assert [r.status_code for r in answers] == [503] * 4, [r.text for r in answers]
        assert all(r.headers["Retry-After"] == "5" for r in answers)
        assert "locked" in answers[0].json()["detail"]
        # the writers queued behind each other give up on the same busy timeout, not one after another
        assert took < 4 * 1.0, took
        ready = lab.client.get("/healthz/ready")
        assert ready.status_code == 503 and ready.json()["fault"] == "locked" and "Retry-After" in ready.headers
        assert lab.client.get("/healthz/live").status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert lab.client.get("/healthz/ready").status_code == 200
    assert lab.post("alice", "/requests/", json=flow_request()).status_code == 200
    assert requests_stored(lab) == before + 1


def _on_every_write_connection(lab, pragma: str) -> None:
    engine = lab.lab.db.write
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _fault(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.execute(pragma(dbapi_conn) if callable(pragma) else pragma)


def test_a_full_disk_answers_503_and_loses_nothing_stored(lab):
    before = requests_stored(lab)
    # SQLite's max_page_count caps the file at its current size: the next page it needs is a full disk
    _on_every_write_connection(
        lab, lambda c: f"PRAGMA max_page_count={c.execute('PRAGMA page_count').fetchone()[0]}")
    body = flow_request()
    body["parameters"][body["methods"][0]]["note"] = "x" * 200_000  # more than the free pages hold
    r = lab.post("alice", "/requests/", json=body)
    assert r.status_code == 503 and r.json()["fault"] == "full", r.text
    assert int(r.headers["Retry-After"]) > 0
    assert requests_stored(lab) == before


def test_a_read_only_database_answers_503(lab):
    before = requests_stored(lab)
    _on_every_write_connection(lab, "PRAGMA query_only=ON")
    r = lab.post("alice", "/requests/", json=flow_request())
    assert r.status_code == 503 and r.json()["fault"] == "read-only", r.text
    ready = lab.client.get("/healthz")
    assert ready.status_code == 503 and ready.json()["fault"] == "read-only"
    assert lab.client.get("/healthz/live").status_code == 200
    assert requests_stored(lab) == before


def test_readiness_writes_its_probe_row(lab):
    assert lab.client.get("/healthz/ready").json()["status"] == "ok"
    with sqlite3.connect(database_file(lab)) as conn:
        rows = conn.execute("SELECT replica, checked FROM readiness_probe").fetchall()
    assert len(rows) == 1 and abs(rows[0][1] - time.time()) < 60
