"""A query run on the database driver (``DriverQuery``) gives what SQLAlchemy gives: the same rows,
JSON decoded, booleans and floats as such, the statement's own values bound; an expanding IN, which
cannot be compiled once, is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, literal, select

from labweave.services.server.db.driver import DriverQuery
from labweave.services.server.db.tables import LabState, Tenant, table_of

from .helpers import open_lab

TENANT = table_of(Tenant)
STATE = table_of(LabState)


def test_rows_are_what_sqlalchemy_reads(database_url):
    lab = open_lab(database_url)
    stmt = (select(TENANT.c.uuid, TENANT.c.name, TENANT.c.limitations, TENANT.c.is_active, TENANT.c.created,
                   STATE.c.paused.label("lab_paused"))
            .select_from(TENANT.outerjoin(STATE, STATE.c.id == 1))
            .where(TENANT.c.name != bindparam("skip"),
                   TENANT.c.name.in_([literal("ASAB_tenant"), literal("requesters")]))
            .order_by(TENANT.c.name))
    db = lab.lab.db
    with db.write.begin() as conn:
        expected = [tuple(r) for r in conn.execute(stmt, {"skip": "nobody"})]
        got = DriverQuery(stmt).rows(conn, {"skip": "nobody"})
        again = DriverQuery(stmt).rows(conn, {"skip": "requesters"})
    assert [tuple(r) for r in got] == expected and len(expected) == 2
    assert isinstance(got[0].limitations, list) and got[0].is_active is True and isinstance(got[0].created, float)
    assert got[0].lab_paused in (False, None)
    assert [r.name for r in again] == ["ASAB_tenant"]
    lab.lab.close()


def test_an_expanding_in_is_refused(sqlite_url):
    lab = open_lab(sqlite_url)
    stmt = select(TENANT.c.uuid).where(TENANT.c.name.in_(["a", "b"]))
    with lab.lab.db.write.begin() as conn, pytest.raises(ValueError, match="expanding"):
        DriverQuery(stmt).rows(conn, {})
    lab.lab.close()
