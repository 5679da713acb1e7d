"""The replica benchmark's check of claims, read from PostgreSQL: it counts what was claimed and
finds a request reserved twice (a double claim), so the benchmark cannot report a wrong rate quietly."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from labweave.services.bench.replicas import claim_check, fresh_database
from labweave.services.bench.server import seed
from labweave.services.server.config import Settings
from labweave.services.server.lab import Lab
from labweave.schemas.api import ClaimCreate, RequestCreate
from labweave.services.bench.server import bench_request

from ..conftest import PG_ADMIN_URL, require_postgres

KEY = "bench-check-key-of-at-least-thirty-two-bytes"


def test_claim_check_counts_claims_and_finds_a_double_claim(pg_available):
    require_postgres(pg_available)
    with fresh_database(PG_ADMIN_URL) as url:
        seed(url, KEY)
        lab = Lab.open(Settings(database_url=url, password_rounds=4, secret_key=KEY))
        try:
            requester = lab.auth.principal(lab.auth.login("bench-requester", "bench-password"))
            cell = lab.auth.principal(lab.auth.login("cell0", "bench-password"))
            for i in range(3):
                lab.requests.create(requester, RequestCreate.model_validate(bench_request(requester.tenant_uuid, i)))
            claimed = [lab.requests.claim(cell, ClaimCreate()) for _ in range(2)]
        finally:
            lab.close()
        assert all(c is not None for c in claimed)
        assert claim_check(url) == {"reserved": 2, "unowned": 0, "reserved_events": 2, "reserved_twice": 0,
                                    "pending": 1}
        twice = claimed[0]
        assert twice is not None
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
            c.execute("INSERT INTO event (time, kind, subject, from_status, to_status, actor, message, data) "
                      "VALUES (0, 'request.status', %s, 'pending', 'reserved', 'cell1', '', '{}')", (twice.uuid,))
        found = claim_check(url)
        assert found["reserved_twice"] == 1 and found["reserved_events"] == 3 and found["reserved"] == 2
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as c:  # the benchmark's database is gone
        name = make_url(url).database
        assert c.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (0,)


@pytest.mark.parametrize("bad", ["0,2", "x"])
def test_replica_counts_names_the_option(bad):
    import typer

    from labweave.services.cli.bench import replica_counts

    with pytest.raises(typer.Exit):
        replica_counts(bad)
    assert replica_counts("1, 2") == [1, 2]
