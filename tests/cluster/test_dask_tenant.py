"""``labweave tenant run emt --dask-scheduler ...`` against a real server and a real Dask cluster.

One tenant process keeps a request claimed per worker; a worker killed
(SIGKILL) mid-relaxation fails its request as retryable, the server offers it
again, and it is resolved once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from distributed import Client

from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant

from ..lab_processes import wait_for
from ..server.helpers import REQUESTER_TENANT, open_lab

pytestmark = pytest.mark.slow

#: Alloys of 108 atoms relaxed tightly: about 2 s each on an idle machine (more under load), long enough to
#: kill a worker in one (32-atom cells at 0.02 eV/A relax in under a second there, before the kill came).
ALLOYS = ({"Cu": 0.5, "Ag": 0.5}, {"Cu": 0.75, "Au": 0.25}, {"Ni": 0.5, "Pd": 0.5})


def emt_request(composition: dict) -> dict:
    params = {"alloy": {"prototype": "fcc", "composition": composition, "supercell": 3}, "fmax": 0.002}
    return {"quantity": "bulk_properties", "methods": ["emt"], "parameters": {"emt": params},
            "tenant_uuid": REQUESTER_TENANT}



def test_a_tenant_on_dask_keeps_a_request_per_worker_and_survives_a_killed_worker(sqlite_url, tmp_path,
                                                                                   dask_cluster):
    dask_cluster.add_worker("w1")
    dask_cluster.add_worker("w2")
    open_lab(sqlite_url, tenants=False).lab.close()
    db = sqlite_url.removeprefix("sqlite:///")
    env = {"LABWEAVE_PASSWORD_ROUNDS": "4", "LABWEAVE_SWEEP_SECONDS": "0.5"}
    with ServerProcess(sqlite_url, env=env, log_path=tmp_path / "server.log") as server:
        async def setup():
            async with AsyncLabClient(server.url, "op", "op") as op:
                await provision_tenant(op, "emt", [build("emt")], "emt", "emt-pw")
        asyncio.run(setup())
        log = tmp_path / "tenant.log"
        tenant = subprocess.Popen(
            [sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", "emt",
             "--dask-scheduler", dask_cluster.address, "--poll", "0.3", "--lease", "3",
             "--state-dir", str(tmp_path / "lab")],
            env={**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": "emt", "LABWEAVE_PASSWORD": "emt-pw",
                 "LABWEAVE_LOG_LEVEL": "INFO"},
            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        try:
            with LabClient(server.url, "alice", "alice") as alice, Client(dask_cluster.address) as dask:
                uuids = [alice.post_request(emt_request(c)) for c in ALLOYS]

                # two workers of one thread: the tenant holds two requests at once, each on a worker
                def both_workers_busy():
                    running = dask.processing()
                    return running if all(running.get(dask_cluster.worker_address(w)) for w in ("w1", "w2")) \
                        else None

                running = wait_for(both_workers_busy, 120, "a relaxation on each worker", every=0.1)
                assert sum(alice.request(u).status == "reserved" for u in uuids) == 2
                key = running[dask_cluster.worker_address("w1")][0]
                victim = next(u for u in uuids if u in key)  # the task's key names its request
                time.sleep(0.2)  # into the relaxation, well before its end
                dask_cluster.kill("w1")

                wait_for(lambda: all(alice.request(u).status == "resolved" for u in uuids), 240,
                         "every request resolved on the worker left")
                data = {u: alice.result_for_request(u).result.data for u in uuids}
        finally:
            tenant.send_signal(signal.SIGTERM)
            code = tenant.wait(60)
    assert code == 0, log.read_text()[-3000:]

    with sqlite3.connect(db) as conn:
        results = dict(conn.execute("SELECT request_uuid, count(*) FROM result GROUP BY request_uuid").fetchall())
        history = conn.execute("SELECT from_status, to_status FROM event WHERE kind = 'request.status' "
                               "AND subject = ? ORDER BY id", (victim,)).fetchall()
        attempts = conn.execute("SELECT attempts, failure_reason FROM request WHERE uuid = ?", (victim,)).fetchone()
    assert results == {u: 1 for u in uuids}  # one result each, the victim's included
    assert history.count(("reserved", "pending")) == 1 and history[-1] == ("reserved", "resolved")
    assert attempts[0] == 1 and "worker running it was lost" in attempts[1]
    assert all(d["n_atoms"] == 108 and d["convergence"]["converged"] for d in data.values())
    text = log.read_text()
    assert "Dask tasks: {'submitted': 4, 'finished': 3, 'failed': 1}" in text, text[-3000:]
