"""Event retention archives, it never loses: old events leave the live log for
event_archive, a request's history still reads whole, and new ids keep growing."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from labweave.services.cli.main import app as cli
from labweave.services.server.db.tables import Event, EventArchive
from labweave.services.server.events import archive

from .helpers import flow_lab, flow_request, flow_result


@pytest.fixture
def lab(database_url):
    return flow_lab(database_url)


def a_resolved_request(lab) -> str:
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 200
    r = lab.post("asab", "/api/v1/results", json=flow_result(uuid, lab.tenants["ASAB_tenant"]))
    assert r.status_code in (200, 201), r.text
    return uuid


def counts(lab) -> tuple[int, int, int]:
    with Session(lab.lab.db.read) as s:
        live = s.exec(select(func.count()).select_from(Event)).one()
        kept = s.exec(select(func.count()).select_from(EventArchive)).one()
        newest = s.exec(select(func.max(Event.id))).one()
    return live, kept, newest


def test_old_events_are_archived_not_lost(lab):
    uuid = a_resolved_request(lab)
    history = lab.get("op", f"/api/v1/requests/{uuid}/history").json()
    assert [e["to_status"] for e in history][-2:] == ["reserved", "resolved"]
    live, kept, newest = counts(lab)

    assert archive(lab.lab.db, time.time() - 3600) == 0  # nothing that old yet
    moved = archive(lab.lab.db, time.time() + 1, batch=7)  # in several batches
    assert moved == live - 1
    assert counts(lab) == (1, moved, newest)  # the newest stays: the stream's cursors stand on it
    assert lab.get("op", f"/api/v1/requests/{uuid}/history").json() == history
    assert [e["id"] for e in lab.get("op", "/api/v1/events").json()["items"]] == [newest]

    second = lab.post("alice", "/requests/", json=flow_request()).json()
    events = lab.get("op", f"/api/v1/requests/{second}/history").json()
    assert events and min(e["id"] for e in events) > newest  # ids never start again


def test_labweave_db_archive_events(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    lab = flow_lab(url)
    a_resolved_request(lab)
    live, _, _ = counts(lab)
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    r = CliRunner().invoke(cli, ["db", "archive-events", "--older-than-days", "0"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"{live - 1} events archived"
    r = CliRunner().invoke(cli, ["db", "archive-events", "--older-than-days", "-1"])
    assert r.exit_code != 0 and "older-than-days" in r.output
