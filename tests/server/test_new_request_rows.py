"""What a new request stores (``lifecycle.open_request``): its row, its creation event and a row per method, the
same on both databases; nothing when the parent it names does not exist; on PostgreSQL all in one statement run
in autocommit, one round trip to the server."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import tempfile
from functools import partial

import pytest
from psycopg import pq
from sqlalchemy import event, func, select

from labweave.schemas.api import RequestCreate
from labweave.services.server import requests as requests_module
from labweave.services.server.convert import request_wire
from labweave.services.server.db.tables import Event, Request, RequestMethod, table_of

from .helpers import flow_request, open_lab

REQ, EVENT, METHOD = table_of(Request), table_of(Event), table_of(RequestMethod)


def several_methods(**extra) -> dict:
    """A conductivity request naming two methods (both within the FINALES2 fixtures' capabilities)."""
    formulation = flow_request()["parameters"]["flow"]["electrolyte"]["formulation"]
    return {
        "quantity": "conductivity",
        "methods": ["two_electrode", "polynomial_interpolation"],
        "parameters": {"two_electrode": {"formulation": formulation, "temperature": 301.15},
                       "polynomial_interpolation": {"formulation": formulation, "temperature": 298.15}},
        "tenant_uuid": flow_request()["tenant_uuid"],
        **extra,
    }


def stored(lab, request_uuid: str) -> dict:
    """The rows a request has in the database: its columns (but the id), its events and its method rows."""
    with lab.db.read.connect() as conn:
        row = dict(conn.execute(select(REQ).where(REQ.c.uuid == request_uuid)).mappings().one())
        request_id = row.pop("id")
        events = [dict(e) for e in conn.execute(
            select(*[c for c in EVENT.c if c.name != "id"]).where(EVENT.c.subject == request_uuid)).mappings()]
        methods = sorted(tuple(m) for m in conn.execute(
            select(METHOD.c.method, METHOD.c.quantity).where(METHOD.c.request_id == request_id)))
    return {"request": row, "events": events, "methods": methods}


def counts(lab) -> tuple[int, int, int]:
    """(requests, events, method rows) stored."""
    with lab.db.read.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (REQ, EVENT, METHOD))


@pytest.fixture
def pinned(monkeypatch):
    """New requests get the uuids ...0001, ...0002 in turn and a fixed time, on whatever database."""
    original = requests_module.new_request

    def pin(numbers):
        def new_request(*args, **kwargs):
            values = original(*args, **kwargs)
            n = next(numbers)
            uuid, now = f"00000000-0000-4000-8000-{n:012d}", 1_800_000_000.0 + n
            values.update(uuid=uuid, ctime=now, updated=now, wire=request_wire(
                uuid, now, values["quantity"], values["methods"], values["parameters"], values["tenant_uuid"]))
            return values

        monkeypatch.setattr(requests_module, "new_request", new_request)

    return lambda: pin(itertools.count(1))


def create_family(t) -> tuple[str, str]:
    """A parent (one method) and a child naming it (two methods, a campaign, provenance, a priority)."""
    parent = t.post("alice", "/api/v1/requests", json=flow_request())
    assert parent.status_code == 201, parent.text
    child = t.post("alice", "/api/v1/requests", json=several_methods(
        parent_uuid=parent.json()["uuid"], campaign="c-7", provenance={"by": "test", "n": [1, 2]}, priority=3))
    assert child.status_code == 201, child.text
    return parent.json()["uuid"], child.json()["uuid"]


@pytest.mark.postgres
def test_postgresql_stores_what_sqlite_stores(sqlite_url, pg_url, pinned):
    seen = []
    for url in (sqlite_url, pg_url):
        pinned()
        t = open_lab(url)
        try:
            seen.append([stored(t.lab, u) for u in create_family(t)])
        finally:
            t.client.close()
    on_sqlite, on_postgres = seen
    assert on_postgres == on_sqlite
    parent, child = on_postgres
    assert child["methods"] == [("polynomial_interpolation", "conductivity"), ("two_electrode", "conductivity")]
    assert child["request"]["parent_uuid"] == parent["request"]["uuid"]
    assert [(e["kind"], e["to_status"], e["data"]) for e in child["events"]] == [
        ("request.status", "pending", {"campaign": "c-7", "quantity": "conductivity",
                                       "methods": ["two_electrode", "polynomial_interpolation"]})]
    assert child["events"][0]["time"] == child["request"]["updated"]


def test_a_create_naming_an_unknown_parent_stores_nothing(database_url):
    t = open_lab(database_url)
    try:
        before = counts(t.lab)
        for path, body in (("/api/v1/requests", several_methods(parent_uuid="no-such-request")),
                           ("/api/v1/requests", flow_request() | {"parent_uuid": "no-such-request"})):
            r = t.post("alice", path, json=body)
            assert r.status_code == 422, r.text
            assert r.json()["detail"] == "parent_uuid: unknown request no-such-request"
        assert counts(t.lab) == before
        known = t.post("alice", "/api/v1/requests", json=flow_request()).json()["uuid"]
        child = t.post("alice", "/api/v1/requests", json=several_methods(parent_uuid=known))
        assert child.status_code == 201 and child.json()["parent_uuid"] == known
        assert counts(t.lab) == (before[0] + 2, before[1] + 2, before[2] + 3)
    finally:
        t.client.close()


def messages(trace: str, side: str) -> list[str]:
    """The messages one side sent (``F`` the client, ``B`` PostgreSQL), from a libpq trace: one per line,
    ``side<tab>length<tab>name<tab>contents`` (a statement's text may run over several lines)."""
    return [f"{m[1]} {m[2]}".strip() for m in re.finditer(rf"^{side}\t\d+\t(\w+)(?:\t ?(\w)?)?", trace, re.M)]


@pytest.mark.postgres
def test_a_create_on_postgresql_is_one_round_trip_in_autocommit(pg_url):
    t = open_lab(pg_url)
    lab = t.lab
    p = lab.auth.principal(t.tokens["alice"])
    traces: list[str] = []
    fd, path = tempfile.mkstemp(prefix="labweave-libpq-trace-")

    def trace(dbapi_conn, record, proxy):  # every message of the connection the create takes, while it has it
        dbapi_conn.pgconn.trace(fd)
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def untrace(dbapi_conn, record):
        dbapi_conn.pgconn.untrace()

    def store(body: dict):
        return asyncio.run(lab.writes.run(partial(lab.requests.plan_create, p, RequestCreate.model_validate(body))))

    try:
        known = store(flow_request()).uuid  # the pool's first connection opened, the statement compiled
        for body in (flow_request(), several_methods(parent_uuid=known)):
            before = counts(lab)
            work = lab.requests.plan_create(p, RequestCreate.model_validate(body))  # the checks, made before tracing
            event.listen(lab.db.write, "checkout", trace)
            event.listen(lab.db.write, "checkin", untrace)
            try:
                asyncio.run(lab.writes.run(lambda: work))
            finally:
                event.remove(lab.db.write, "checkout", trace)
                event.remove(lab.db.write, "checkin", untrace)
            assert counts(lab) == (before[0] + 1, before[1] + 1, before[2] + len(body["methods"]))
            with open(path) as f:
                traces.append(f.read()[sum(map(len, traces)):])
    finally:
        os.close(fd)
        os.unlink(path)
        t.client.close()
    assert len(traces) == 2
    for text in traces:
        # one statement (no BEGIN nor COMMIT, which are Query messages), sent at once and answered once, after
        # which the connection is idle (I), not in a transaction (T): it ran in autocommit
        assert [m.split()[0] for m in messages(text, "F")] == ["Parse", "Bind", "Describe", "Execute", "Sync"], text
        assert [m for m in messages(text, "B") if m.startswith("ReadyForQuery")] == ["ReadyForQuery I"], text
