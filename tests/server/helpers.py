"""A lab set up for server tests: the FINALES2 fixtures registered, users for each role."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from labweave.schemas.capability import Capability
from labweave.schemas.tenant import TenantDefinition
from labweave.services.server.app import create_app
from labweave.services.server.auth import add_user
from labweave.services.server.config import Settings
from labweave.services.server.leases import LeaseSweeper

from ..conftest import load, shared_files, shared_path

REQUESTER_TENANT = "e699dab7-ba5e-4ad6-8126-522ca33b99a0"  # the tenant_uuid of FINALES2's example requests


def settings_for(url: str, **kw) -> Settings:
    base = dict(database_url=url, password_rounds=4, cache_seconds=0, sweep_seconds=3600, secret_key="test-secret-key-of-at-least-thirty-two-bytes")
    base.update(kw)
    return Settings(**base)


@dataclass
class Lab:
    client: TestClient
    tenants: dict[str, str] = field(default_factory=dict)  # tenant name -> uuid
    tokens: dict[str, str] = field(default_factory=dict)  # user name -> token

    @property
    def lab(self):
        return self.client.app.state.lab

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def login(self, user: str, password: str | None = None) -> str:
        r = self.client.post("/user_management/authenticate", data={"username": user, "password": password or user})
        assert r.status_code == 200, r.text
        self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def add_user(self, name: str, role: str, tenant: str | None = None) -> None:
        s = self.lab.settings
        add_user(self.lab.db, name, name, role, self.tenants.get(tenant, tenant), s.password_rounds)
        self.login(name)

    def add_tenant(self, definition: dict, uuid: str | None = None) -> str:
        d = TenantDefinition.model_validate(definition)
        if uuid:
            d.tenant_uuid = uuid
        row = self.lab.registry.add_tenant(d, "test")
        self.tenants[row.name] = row.uuid
        return row.uuid

    def get(self, user: str, path: str, headers: dict | None = None, **kw):
        return self.client.get(path, headers=self.headers(user) | (headers or {}), **kw)

    def post(self, user: str, path: str, headers: dict | None = None, **kw):
        return self.client.post(path, headers=self.headers(user) | (headers or {}), **kw)


def capability_files() -> list[Path]:
    return shared_files("finales2", "serialized_quantities")


def _seed(url: str, tenants: bool) -> None:
    """Capabilities, tenants and users of a test lab, written into the database at ``url``."""
    from labweave.services.server.lab import Lab as ServerLab

    lab = ServerLab.open(settings_for(url))
    for path in capability_files():
        lab.registry.add_capability(Capability.model_validate(load(path)), "test")
    requesters = TenantDefinition(name="requesters", limitations=[], contact_person="test", tenant_uuid=REQUESTER_TENANT)
    lab.registry.add_tenant(requesters, "test")
    if tenants:
        for path in shared_files("finales2", "examples", "tenants"):
            lab.registry.add_tenant(TenantDefinition.model_validate(load(path)), "test")
    add_user(lab.db, "op", "op", "operator", None, 4)
    add_user(lab.db, "alice", "alice", "requester", REQUESTER_TENANT, 4)
    lab.close()


_TEMPLATES: dict[tuple[str, bool], str] = {}


def _from_template(url: str, tenants: bool) -> None:
    """Fill the empty database at ``url`` with a copy of a seeded template made once per session."""
    import sqlite3
    import tempfile

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        key = ("sqlite", tenants)
        if key not in _TEMPLATES:
            path = Path(tempfile.mkdtemp(prefix="labweave-template-")) / "template.db"
            _seed(f"sqlite:///{path}", tenants)
            _TEMPLATES[key] = str(path)
        source = sqlite3.connect(_TEMPLATES[key])
        target = sqlite3.connect(parsed.database)
        source.backup(target)
        target.close()
        source.close()
        return
    import psycopg

    from ..conftest import PG_ADMIN_URL

    key = ("postgres", tenants)
    if key not in _TEMPLATES:
        name = f"labweave_template_{'t' if tenants else 'n'}_{os.getpid()}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        _seed(parsed.set(database=name).render_as_string(hide_password=False), tenants)
        _TEMPLATES[key] = name
        atexit.register(_drop_pg, name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{_TEMPLATES[key]}"')


def _drop_pg(name: str) -> None:
    import psycopg

    from ..conftest import PG_ADMIN_URL

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_lab(url: str, tenants: bool = True, **settings) -> Lab:
    """A test lab on ``url``: the FINALES2 capabilities (and tenants), users ``op`` and ``alice``."""
    _from_template(url, tenants)
    app = create_app(settings_for(url, **settings))
    lab = Lab(TestClient(app))
    lab.tenants = {t.name: t.uuid for t in app.state.lab.registry.catalogue().tenants.values()}
    lab.login("op")
    lab.login("alice")
    return lab


def flow_request() -> dict:
    """FINALES2's example electrolyte/flow request: within the ASAB tenant's limits."""
    return load(shared_path("finales2", "examples", "requests", "electrolyte", "flow.json"))


def flow_result(request_uuid: str, tenant_uuid: str) -> dict:
    body = load(shared_path("finales2", "examples", "results", "electrolyte", "flow.json"))
    body.update(request_uuid=request_uuid, tenant_uuid=tenant_uuid)
    return body


def flow_lab(url: str) -> Lab:
    """A test lab on ``url`` with users ``asab`` and ``asab2`` serving electrolyte/flow (:func:`two_flow_tenants`)."""
    lab = open_lab(url)
    two_flow_tenants(lab)
    return lab


def two_flow_tenants(lab: Lab) -> None:
    """Users ``asab`` (the ASAB tenant) and ``asab2`` (a twin with the same limits)."""
    asab = load(shared_path("finales2", "examples", "tenants", "conductivity", "ASAB.json"))
    lab.add_tenant(asab | {"name": "ASAB twin"})
    lab.add_user("asab", "tenant", "ASAB_tenant")
    lab.add_user("asab2", "tenant", "ASAB twin")


class SteppedClock:
    """A clock a test sets and steps by hand (for the lease sweeper's monotonic clock, or a wall clock)."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += seconds


def expire_leases(db, max_expiries: int) -> int:
    """Sweep as if every held lease's length had passed on the sweeper's clock without a heartbeat."""
    clock = SteppedClock()
    sweeper = LeaseSweeper(db, max_expiries, clock)
    sweeper.sweep()
    clock.step(1e9)
    return sweeper.sweep()
