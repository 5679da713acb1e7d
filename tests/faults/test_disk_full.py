"""Fault: the database's disk fills up. The server's SQLite file lives on a small tmpfs which a filler file
then fills; writes answer 503 with ``Retry-After`` (never 500) until the filler is removed, and the lab
carries on. Mounting needs root (or password-less sudo); elsewhere the test is skipped, saying so."""

from __future__ import annotations

import time

import httpx
import pytest

from .audit import audit
from .lab import wait_for
from .requester import growth, login
from .storage import fill_disk, mount_tmpfs, unmount

pytestmark = pytest.mark.slow

FULL_SECONDS = 8.0
BLOB = "x" * 256 * 1024  # a request this large needs new pages, so it finds the disk full


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    why = mount_tmpfs(folder, "8m")
    if why is not None:
        pytest.skip(f"cannot mount a small tmpfs for the database: {why}")
    yield folder
    unmount(folder)


def test_a_full_disk_answers_503_and_the_lab_carries_on_once_there_is_room(small_disk, make_lab):
    lab = make_lab({"LABWEAVE_SWEEP_SECONDS": "0.5"}, db_path=small_disk / "labweave.db")
    tenant, optimizer = lab.launch("disk-full")
    lab.wait_under_way("disk-full")

    answers: list[int] = []
    acknowledged: set[str] = set()
    with httpx.Client(base_url=lab.url, timeout=30) as http:
        auth = login(http, "alice")
        filler = small_disk / "filler"
        filled = fill_disk(filler)
        refused = None
        for n in range(40):  # 10 MB in all: more than the disk
            body = growth(n, lab.tenants["requesters"], provenance={"note": BLOB})
            r = http.post("/api/v1/requests", json=body, headers=auth)
            answers.append(r.status_code)
            if r.status_code == 201:
                acknowledged.add(r.json()["uuid"])
            else:
                refused = r
                break
        assert refused is not None and refused.status_code == 503, answers
        assert refused.json()["fault"] == "full" and int(refused.headers["Retry-After"]) > 0
        logging_in = http.post("/user_management/authenticate", data={"username": "alice", "password": "x"})
        assert logging_in.status_code in (401, 503), logging_in.text  # a failed login is counted: a write
        time.sleep(FULL_SECONDS)
        assert tenant.alive() and optimizer.alive(), lab.tail_all()
        assert http.get("/healthz/live").status_code == 200
        filler.unlink()
        wait_for(lambda: http.get("/healthz/ready").status_code == 200, 30, "readiness once there is room")

    lab.wait_finished(optimizer, 120)
    lab.wait_all_ended(60)
    assert tenant.stop() == 0, tenant.tail()
    figures = audit(lab, "disk-full", budget=6, acknowledged_requests=acknowledged)
    assert figures["statuses"] == {"resolved": 6}
    assert filled > 0 and set(answers) <= {201, 503}
    assert " 500 " not in "".join(p.read_text() for p in lab.root.glob("server-*.log"))
