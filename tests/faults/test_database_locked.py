"""Fault: another process holds the SQLite database with ``BEGIN EXCLUSIVE`` for 40 s. The server answers
writes 503 with ``Retry-After`` (after LABWEAVE_DATABASE_BUSY_SECONDS), readiness says why, reads go on;
the tenant and the optimizer back off as asked and carry on afterwards."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from .audit import audit
from .requester import growth, login
from .storage import lock_database

pytestmark = pytest.mark.slow

LOCKED_SECONDS = 40.0
BUSY_SECONDS = 2.0


def test_a_database_locked_for_40_s_answers_503_and_the_lab_carries_on(make_lab):
    lab = make_lab({"LABWEAVE_SWEEP_SECONDS": "0.5", "LABWEAVE_DATABASE_BUSY_SECONDS": str(BUSY_SECONDS)})
    tenant, optimizer = lab.launch("database-locked")
    lab.wait_under_way("database-locked")

    with httpx.Client(base_url=lab.url, timeout=30) as http:
        auth = login(http, "alice")
        holder = lock_database(lab.db_path, LOCKED_SECONDS)
        locked_at = time.monotonic()
        started = time.monotonic()
        refused = http.post("/api/v1/requests", json=growth(0, lab.tenants["requesters"]), headers=auth)
        waited = time.monotonic() - started
        ready = http.get("/healthz/ready")
        live = http.get("/healthz/live")
        listing = http.get("/api/v1/requests", params={"campaign": "database-locked"}, headers=auth)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) > 0 and "locked" in refused.json()["detail"]
    # promptly: the busy timeout (twice at most: in the server's queue of writers, then SQLite's), not the lock
    assert BUSY_SECONDS <= waited < 2 * BUSY_SECONDS + 3
    assert ready.status_code == 503 and ready.json()["fault"] == "locked" and ready.headers["Retry-After"]
    assert live.status_code == 200 and listing.status_code == 200  # the process and reads are fine

    assert holder.wait(LOCKED_SECONDS + 30) == 0
    assert time.monotonic() - locked_at >= LOCKED_SECONDS - 1
    assert tenant.alive() and optimizer.alive(), lab.tail_all()
    lab.wait_finished(optimizer, 120)
    assert tenant.stop() == 0, tenant.tail()

    figures = audit(lab, "database-locked", budget=6)
    assert figures["statuses"] == {"resolved": 6}
    assert lab.query("SELECT count(*) FROM request WHERE campaign IS NULL")[0][0] == 0  # the refused one
    logs = lab.logs("optimizer") + lab.logs("tenant")
    assert "503" in logs
    server_log = "".join(p.read_text() for p in lab.root.glob("server-*.log"))
    # the lease sweeper writes only when a lease ran out on its clock (none did here); a sweep that must
    # write while the database is locked logs "lease sweep skipped", never a traceback
    assert "Traceback" not in server_log and "ERROR" not in server_log
    # the daemons waited what Retry-After asked for (5 s), not their own shorter back-off
    assert re.search(r"retry 1 in 5\.0 s", logs), logs[-3000:]
