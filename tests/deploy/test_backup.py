"""Backing up and restoring a lab's database as the README says: PostgreSQL with pg_dump and
pg_restore into a new database, SQLite with its online backup taken while the server has it open.
The restored copy is read through the app: the accounts log in, requests and results are there."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest
from fastapi.testclient import TestClient

from labweave.services.server.app import create_app
from labweave.services.server.config import Settings

from ..conftest import make_pg_database
from ..server.helpers import flow_request, flow_result, open_lab, two_flow_tenants

KEY = "backup-test-key-" + "b" * 40


def fill(url: str) -> dict[str, str]:
    """A lab with a resolved request and a pending one; their UUIDs."""
    lab = open_lab(url, secret_key=KEY)
    two_flow_tenants(lab)
    done = lab.post("alice", "/api/v1/requests", json=flow_request()).json()["uuid"]
    waiting = lab.post("alice", "/api/v1/requests", json=flow_request()).json()["uuid"]
    claim = lab.post("asab", "/api/v1/claims", json={"quantity": "electrolyte", "methods": ["flow"]})
    assert claim.status_code == 200 and claim.json()["request"]["uuid"] == done, claim.text
    posted = lab.post("asab", "/api/v1/results", json=flow_result(done, lab.tenants["ASAB_tenant"]))
    assert posted.status_code in (200, 201), posted.text
    lab.lab.close()
    return {"done": done, "waiting": waiting}


def read_back(url: str, ids: dict[str, str]) -> None:
    with TestClient(create_app(Settings(database_url=url, secret_key=KEY, password_rounds=4))) as client:
        r = client.post("/user_management/authenticate", data={"username": "alice", "password": "alice"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert client.get(f"/api/v1/requests/{ids['done']}", headers=auth).json()["status"] == "resolved"
        assert client.get(f"/api/v1/requests/{ids['waiting']}", headers=auth).json()["status"] == "pending"
        assert client.get(f"/results_requested/{ids['done']}", headers=auth).status_code == 200


@pytest.mark.postgres
def test_pg_dump_and_pg_restore_into_a_new_database(pg_available, tmp_path):
    if not pg_available or not shutil.which("pg_dump"):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL and its client tools (pg_dump, pg_restore) are needed; scripts/setup-env installs them")
        pytest.skip("PostgreSQL or pg_dump is not available")
    source, drop_source = make_pg_database()
    target, drop_target = make_pg_database()
    try:
        ids = fill(source)
        dump = tmp_path / "labweave.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", f"--dbname={source}"], check=True,
                       timeout=120)
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={target}", str(dump)],
                       check=True, timeout=120)
        read_back(target, ids)
    finally:
        drop_source()
        drop_target()


def test_sqlite_online_backup_while_the_server_has_it_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'labweave.db'}"
    ids = fill(url)
    live = TestClient(create_app(Settings(database_url=url, secret_key=KEY)))  # a server holding it open
    with live:
        backup = tmp_path / "backup" / "labweave.db"
        backup.parent.mkdir()
        with sqlite3.connect(tmp_path / "labweave.db") as src, sqlite3.connect(backup) as dst:
            src.backup(dst)  # what `sqlite3 labweave.db ".backup FILE"` does: a consistent copy, WAL included
    read_back(f"sqlite:///{backup}", ids)
