"""A tomato-driven instrument as a labweave tenant, end to end: a real server, a real tomato daemon with
the example counter, and ``labweave tenant run tomato --backend tomato`` as a process. A request is
claimed, run as a tomato job while the lease is heartbeaten, and resolved with tomato's data; an
operator's emergency stop cancels the running tomato job and releases the request."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from labweave.drivers.tomato.daemon import TomatoDaemon
from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant

from tests.server.helpers import REQUESTER_TENANT, open_lab
from tests.tenant.test_runtime import wait_for
from .daemon import TomatoDaemonProcess

pytestmark = pytest.mark.timeout(400)


def tomato_request(seconds: float, sample: str) -> dict:
    task = {"component_role": "counter", "technique_name": "count", "max_duration": seconds,
            "sampling_interval": 0.2, "task_params": {"max": 9.0}}
    return {"quantity": "tomatoJob", "methods": ["tomato"], "tenant_uuid": REQUESTER_TENANT,
            "parameters": {"tomato": {"sample": sample, "tasks": [task]}}}


def test_a_tomato_tenant_resolves_a_request_and_an_emergency_stop_cancels_its_job(sqlite_url, tmp_path):
    lab = open_lab(sqlite_url, tenants=False)
    lab.lab.close()
    env = {"LABWEAVE_SWEEP_SECONDS": "0.5", "LABWEAVE_PASSWORD_ROUNDS": "4"}
    with ServerProcess(sqlite_url, env=env, log_path=tmp_path / "server.log") as server, \
            TomatoDaemonProcess(tmp_path / "tomato") as daemon:
        options = {"port": daemon.port, "pipeline": "pip-counter", "poll_seconds": 0.2}

        async def setup() -> None:
            async with AsyncLabClient(server.url, "op", "op") as op:
                await provision_tenant(op, "counter", [build("tomato", "tomato", state=tmp_path, options=options)],
                                       "counter", "counter-pw")
        asyncio.run(setup())

        run_env = {**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": "counter",
                   "LABWEAVE_PASSWORD": "counter-pw",
                   "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", "tomato", "--backend", "tomato",
             "--backend-option", f"port={daemon.port}", "--backend-option", "pipeline=pip-counter",
             "--backend-option", "poll_seconds=0.2", "--state-dir", str(tmp_path / "lab"), "--poll", "0.3",
             "--lease", "6"],
            env=run_env, stdout=open(tmp_path / "tenant.log", "ab"), stderr=subprocess.STDOUT)
        try:
            with LabClient(server.url, "alice", "alice") as alice, LabClient(server.url, "op", "op") as op:
                limits = next(m for m in alice.limitations() if m.quantity == "tomatoJob")
                assert "count" in str(limits.limitations)  # the device's techniques, published by the tenant
                # the job (queued, then 5 s running) outlives the 6 s lease: the runtime heartbeats it meanwhile
                uuid = alice.post_request(tomato_request(5.0, "s-1"))
                result = wait_for(lambda: alice.result_for_request(uuid), timeout=120)
                data = result.result.data
                assert data["pipeline"] == "pip-counter" and data["data"]["counter"]["max"]["last"] == 9.0
                assert data["data"]["counter"]["val"]["last"] >= 4
                assert [h.to_status for h in alice.history(uuid)] == ["pending", "reserved", "resolved"]

                long = alice.post_request(tomato_request(300.0, "s-2"))
                client = TomatoDaemon(daemon.port)
                try:
                    def running_job():
                        jobs = [client.job(i) for i in (2,)] if alice.request(long).status == "reserved" else []
                        return jobs[0] if jobs and jobs[0].status == "r" else None
                    wait_for(lambda: _quiet(running_job), timeout=120)
                    daemon.remember()
                    op.stop_tenant(alice.request(long).owner_tenant_uuid)
                    wait_for(lambda: alice.request(long).status == "pending", timeout=60)
                    assert client.job(2).status == "cd"
                finally:
                    client.close()
                back = alice.history(long)[-1]  # released by the stopped tenant (or, if slower, by its lease)
                assert back.to_status == "pending" and ("stopped" in back.message or "expired" in back.message)
                assert alice.result_for_request(long) is None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _quiet(probe):
    """``probe()``, or None while tomato has no such job yet."""
    try:
        return probe()
    except Exception:
        return None
