"""The Alembic migrations, both ways, on SQLite and PostgreSQL: head -> base -> head leaves the
schema the code declares; a database made at the first revision, with data in it, is upgraded and
read through the app as it was written."""

from __future__ import annotations

import json
import time
import uuid

import bcrypt
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from labweave.services.server.app import create_app
from labweave.services.server.config import Settings
from labweave.services.server.db.engine import open_database
from labweave.services.server.db.migrate import alembic_config, upgrade

KEY = "migration-test-key-" + "k" * 32


def tables(db) -> set[str]:
    return set(inspect(db.write).get_table_names())


def schema_diff(db) -> list:
    with db.write.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        conn.rollback()
    return diff


def revision_of(db) -> str | None:
    with db.write.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_upgrade_downgrade_to_base_and_upgrade_again(database_url):
    db = open_database(database_url)
    try:
        cfg = alembic_config(db)
        revisions = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()]
        assert len(revisions) >= 6 and revisions[-1] == "0001"
        upgrade(db)
        assert schema_diff(db) == []
        declared = set(SQLModel.metadata.tables)
        assert declared <= tables(db)

        # one revision down at a time: each downgrade undoes exactly its upgrade
        for down_to in [*revisions[1:], "base"]:
            command.downgrade(cfg, down_to if down_to != "base" else "base")
            assert revision_of(db) == (None if down_to == "base" else down_to)
        assert tables(db) <= {"alembic_version"}, f"left after downgrade to base: {tables(db)}"

        upgrade(db)
        assert revision_of(db) == revisions[0]
        assert schema_diff(db) == []
    finally:
        db.dispose()


def insert_at_first_revision(db) -> dict[str, str]:
    """Rows as the server of revision 0001 wrote them: users, a capability, two tenants, a resolved
    request with its result and events, a pending one."""
    now = time.time()
    ids = {"asab": str(uuid.uuid4()), "requesters": str(uuid.uuid4()), "done": str(uuid.uuid4()),
           "waiting": str(uuid.uuid4()), "result": str(uuid.uuid4())}
    hashed = bcrypt.hashpw(b"old-password", bcrypt.gensalt(4)).decode()
    limits = [{"quantity": "density", "method": "pycnometer", "limitations": {"temperature": {"min": 250, "max": 350}}}]
    schema_in = {"type": "object", "properties": {"temperature": {"type": "number"}}, "required": ["temperature"]}
    schema_out = {"type": "object", "properties": {"density": {"type": "number"}}, "required": ["density"]}
    with db.write.begin() as conn:
        conn.execute(text('INSERT INTO "user" (username, password_hash, role, tenant_uuid, is_active, created) '
                          "VALUES (:u, :h, :r, :t, :a, :c)"), [
            dict(u="op", h=hashed, r="operator", t=None, a=True, c=now),
            dict(u="asab", h=hashed, r="tenant", t=ids["asab"], a=True, c=now),
            dict(u="alice", h=hashed, r="requester", t=ids["requesters"], a=True, c=now),
        ])
        conn.execute(text("INSERT INTO capability (quantity, method, input_schema, output_schema, is_active, updated) "
                          "VALUES ('density', 'pycnometer', :i, :o, :a, :u)"),
                     dict(i=json.dumps(schema_in), o=json.dumps(schema_out), a=True, u=now))
        conn.execute(text("INSERT INTO tenant (uuid, name, contact_person, limitations, is_active, stop_requested, "
                          "created) VALUES (:uuid, :name, 'lab', :lim, :a, :s, :c)"), [
            dict(uuid=ids["asab"], name="ASAB", lim=json.dumps(limits), a=True, s=False, c=now),
            dict(uuid=ids["requesters"], name="requesters", lim="[]", a=True, s=False, c=now),
        ])
        for key, status, owner in (("done", "resolved", ids["asab"]), ("waiting", "pending", None)):
            conn.execute(text(
                "INSERT INTO request (uuid, ctime, updated, status, quantity, methods, parameters, tenant_uuid, "
                "priority, owner_tenant_uuid, last_owner_uuid, lease_expiries, attempts, provenance, created_by) "
                "VALUES (:uuid, :t, :t, :status, 'density', :m, :p, :req, 0, NULL, :owner, 0, 1, '{}', 'alice')"),
                dict(uuid=ids[key], t=now, status=status, m=json.dumps(["pycnometer"]),
                     p=json.dumps({"pycnometer": {"temperature": 298.0}}), req=ids["requesters"], owner=owner))
            (rid,) = conn.execute(text("SELECT id FROM request WHERE uuid = :u"), dict(u=ids[key])).one()
            conn.execute(text("INSERT INTO request_method (request_id, method, quantity) "
                              "VALUES (:r, 'pycnometer', 'density')"), dict(r=rid))
        conn.execute(text(
            "INSERT INTO result (uuid, ctime, status, request_uuid, quantity, method, parameters, data, tenant_uuid, "
            "idempotency_key, posted_by) VALUES (:uuid, :t, 'original', :req, 'density', 'pycnometer', :p, :d, "
            ":tenant, 'key-1', 'asab')"),
            dict(uuid=ids["result"], t=now, req=ids["done"], p=json.dumps({"temperature": 298.0}),
                 d=json.dumps({"density": 1.21}), tenant=ids["asab"]))
        for frm, to in ((None, "pending"), ("pending", "reserved"), ("reserved", "resolved")):
            conn.execute(text("INSERT INTO event (time, kind, subject, from_status, to_status, actor, message, data) "
                              "VALUES (:t, 'request.status', :s, :f, :to, 'asab', '', '{}')"),
                         dict(t=now, s=ids["done"], f=frm, to=to))
    return ids


def test_a_database_of_the_first_revision_with_data_upgrades_and_reads_through_the_app(database_url):
    db = open_database(database_url)
    upgrade(db, "0001")
    assert revision_of(db) == "0001"
    ids = insert_at_first_revision(db)
    db.dispose()

    app = create_app(Settings(database_url=database_url, secret_key=KEY, password_rounds=4))  # upgrades on start
    with TestClient(app) as client:
        lab = app.state.lab
        assert revision_of(lab.db) == ScriptDirectory.from_config(alembic_config(lab.db)).get_current_head()
        assert schema_diff(lab.db) == []

        def login(user: str) -> dict[str, str]:
            r = client.post("/user_management/authenticate", data={"username": user, "password": "old-password"})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        alice, asab, op = login("alice"), login("asab"), login("op")
        done = client.get(f"/api/v1/requests/{ids['done']}", headers=alice)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "resolved"
        result = client.get(f"/results_requested/{ids['done']}", headers=alice)
        assert result.status_code == 200, result.text
        assert json.dumps(result.json()).count("1.21") == 1
        history = client.get(f"/api/v1/requests/{ids['done']}/history", headers=alice).json()
        assert [e["to_status"] for e in history] == ["pending", "reserved", "resolved"]

        # the old tenant's limitations became its granted envelope (0005): it still claims what it could
        claim = client.post("/api/v1/claims", headers=asab, json={"quantity": "density", "methods": ["pycnometer"]})
        assert claim.status_code == 200, claim.text
        assert claim.json()["request"]["uuid"] == ids["waiting"]
        tenants = client.get("/api/v1/tenants", headers=op)
        assert tenants.status_code == 200
        # a token-generation revocation (0004) works on the old users
        r = client.post("/api/v1/users", headers=op, json={"username": "asab", "password": "new-password",
                                                             "role": "tenant", "tenant_uuid": ids["asab"]})
        assert r.status_code in (200, 201), r.text
        assert client.get("/api/v1/me", headers=asab).status_code == 401
