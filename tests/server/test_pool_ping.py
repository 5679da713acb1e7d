"""PostgreSQL's pooled connections are pinged before use only after sitting idle: a connection the
server dropped while it sat in the pool is replaced before a request uses it; one in steady use is
not pinged (a round trip saved per request)."""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import text

from labweave.services.server.db import engine as engine_module
from labweave.services.server.db.engine import open_database

from ..conftest import PG_ADMIN_URL


def backend_pid(db) -> int:
    with db.read.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def pings(db, monkeypatch) -> list[int]:
    """Counts the pings the pool sends (the dialect's ``do_ping``)."""
    seen: list[int] = []
    original = db.read.dialect.do_ping

    def counted(dbapi_conn):
        seen.append(1)
        return original(dbapi_conn)

    monkeypatch.setattr(db.read.dialect, "do_ping", counted)
    return seen


def test_a_connection_dropped_while_idle_is_replaced_before_use(pg_url, monkeypatch):
    monkeypatch.setattr(engine_module, "PING_IDLE_SECONDS", 0.2)
    db = open_database(pg_url)
    try:
        first = backend_pid(db)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:  # the server drops the pooled connection
            assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()[0]
        time.sleep(0.3)
        seen = pings(db, monkeypatch)
        second = backend_pid(db)  # no error: the dead connection was found by the ping and replaced
        assert second != first and seen
    finally:
        db.dispose()


def test_a_connection_in_steady_use_is_not_pinged(pg_url, monkeypatch):
    monkeypatch.setattr(engine_module, "PING_IDLE_SECONDS", 30.0)
    db = open_database(pg_url)
    try:
        backend_pid(db)
        seen = pings(db, monkeypatch)
        for _ in range(5):
            backend_pid(db)
        assert seen == []
    finally:
        db.dispose()

