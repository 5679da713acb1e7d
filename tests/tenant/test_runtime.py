"""Tenant daemons against a real server process: resolve, survive kills and restarts, stop safely."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant
from labweave.services.tenant.runtime import TenantRuntime

from ..server.helpers import REQUESTER_TENANT, open_lab

RECIPE = {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0, "substrate_temperature": 1000.0,
          "oxygen_pressure": 1.0, "repetition_rate": 2.0, "pulses": 60}


def pld_request(**changes) -> dict:
    return {"quantity": "thin_film", "methods": ["pld_growth"], "parameters": {"pld_growth": RECIPE | changes},
            "tenant_uuid": REQUESTER_TENANT}


@pytest.fixture
def server(sqlite_url, tmp_path):
    lab = open_lab(sqlite_url, tenants=False)
    lab.lab.close()
    env = {"LABWEAVE_SWEEP_SECONDS": "0.5", "LABWEAVE_PASSWORD_ROUNDS": "4"}
    with ServerProcess(sqlite_url, env=env, log_path=tmp_path / "server.log") as server:
        async def setup():
            async with AsyncLabClient(server.url, "op", "op") as op:
                for name in ("chamber-a", "chamber-b"):
                    await provision_tenant(op, name, [build("pld")], name, name + "-pw")
        asyncio.run(setup())
        yield server


def spawn_tenant(server, user, tmp_path, *extra):
    env = {**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": user, "LABWEAVE_PASSWORD": user + "-pw"}
    log = open(tmp_path / f"{user}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", "pld",
                             "--state-dir", str(tmp_path / "lab"), "--poll", "0.3", *extra],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout=60.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def test_daemon_resolves_requests_and_results_validate(server, tmp_path):
    with LabClient(server.url, "alice", "alice") as alice:
        uuids = [alice.post_request(pld_request(substrate_temperature=t)) for t in (900.0, 1100.0)]
        bad = pld_request(substrate_temperature=2000.0)
        with pytest.raises(Exception) as err:
            alice.post_request(bad)
        assert "substrate_temperature" in str(err.value)
        proc = spawn_tenant(server, "chamber-a", tmp_path)
        try:
            results = wait_for(lambda: [r for u in uuids if (r := alice.result_for_request(u))] if all(
                alice.result_for_request(u) for u in uuids) else None)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        for r in results:
            data = r.result.data
            assert data["growth_mode"] in {"layer_by_layer", "step_flow", "island_3d"}
            assert len(data["rheed"]["intensity"]) > 10
        history = alice.history(uuids[0])
        assert [h.to_status for h in history] == ["pending", "reserved", "resolved"]


def test_a_killed_tenant_loses_its_lease_and_another_finishes_once(server, tmp_path):
    with LabClient(server.url, "alice", "alice") as alice, LabClient(server.url, "op", "op") as op:
        uuid = alice.post_request(pld_request(pulses=2500, repetition_rate=1.0))
        first = spawn_tenant(server, "chamber-a", tmp_path, "--lease", "2")
        wait_for(lambda: alice.request(uuid).status == "reserved")
        time.sleep(1.0)
        first.kill()  # no goodbye: the lease has to run out
        first.wait()
        second = spawn_tenant(server, "chamber-b", tmp_path, "--lease", "2")
        try:
            wait_for(lambda: alice.request(uuid).status == "resolved", timeout=120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(60)
        results = op.list_results(request_uuid=uuid)
        assert len(results) == 1
        names = {t.tenant_uuid: t.name for t in op.tenants()}
        assert names[results[0].result.tenant_uuid] == "chamber-b"
        history = [(h.from_status, h.to_status, h.actor) for h in alice.history(uuid)]
        assert ("reserved", "pending", "lease-sweeper") in history
        assert history[-1][1] == "resolved" and history[-1][2] == "chamber-b"


def test_a_restarted_tenant_does_not_post_twice(server, tmp_path):
    async def scenario():
        async with AsyncLabClient(server.url, "alice", "alice") as alice, \
                AsyncLabClient(server.url, "chamber-a", "chamber-a-pw") as tenant:
            uuid = await alice.post_request(pld_request())
            state = tmp_path / "state"
            runtime = TenantRuntime(tenant, [build("pld")], state_dir=state, poll_seconds=0.2)
            await runtime.run(until_idle=True)
            assert runtime.counters.resolved == 1
            posted = await alice.result_for_request(uuid)
            # A crash between posting and clearing the outbox: the result is still on disk.
            key = f"{runtime.tenant_uuid}:{uuid}:crash"
            assert posted is not None
            runtime.outbox.put(key, posted.result.model_dump(mode="json"))
            again = TenantRuntime(tenant, [build("pld")], state_dir=state, poll_seconds=0.2)
            await again.run(until_idle=True)
            assert again.counters.reposted == 1 and again.outbox.pending() == []
            assert len(await alice.list_results(request_uuid=uuid)) == 1
            assert (await alice.result_for_request(uuid)).uuid == posted.uuid

    asyncio.run(scenario())


def test_emergency_stop_fails_the_running_request_as_retryable(server, tmp_path):
    with LabClient(server.url, "alice", "alice") as alice, LabClient(server.url, "op", "op") as op:
        uuid = alice.post_request(pld_request(pulses=4000, repetition_rate=1.0))
        proc = spawn_tenant(server, "chamber-a", tmp_path)
        try:
            wait_for(lambda: alice.request(uuid).status == "reserved")
            tenant = alice.request(uuid).owner_tenant_uuid
            op.stop_tenant(tenant)
            wait_for(lambda: alice.request(uuid).status == "pending", timeout=60)
            history = alice.history(uuid)
            assert history[-1].actor == "chamber-a" and "retryable failure: emergency stop" in history[-1].message
            assert alice.request(uuid).attempts == 1
            op.resume_tenant(tenant)
            wait_for(lambda: alice.request(uuid).status in ("reserved", "resolved"), timeout=60)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)



def test_workflow_wakes_on_the_event_stream_not_its_poll(server, tmp_path):
    """A sub-request resolved by another tenant wakes the waiting workflow at once: its status is read
    a handful of times, not every poll period (set here far longer than the whole test may take)."""
    from labweave.services.tenant.workflow import WorkflowBackend

    async def scenario():
        async with AsyncLabClient(server.url, "alice", "alice") as alice, \
                AsyncLabClient(server.url, "chamber-a", "chamber-a-pw") as tenant:
            backend = WorkflowBackend(alice, poll_seconds=0.5)
            await backend.setup()
            runtime = TenantRuntime(tenant, [build("pld")], state_dir=tmp_path / "state", poll_seconds=0.2)
            chamber = asyncio.create_task(runtime.run())
            reads = 0
            read_request = alice.request

            async def counted(uuid):
                nonlocal reads
                reads += 1
                return await read_request(uuid)

            try:
                # a first growth, polled, while the event stream connects (events before it are the poll's)
                await asyncio.wait_for(backend.ask("thin_film", "pld_growth", RECIPE, parent=None), 120)
                backend.poll_seconds = 600.0
                alice.request = counted
                data = await asyncio.wait_for(
                    backend.ask("thin_film", "pld_growth", RECIPE | {"pulses": 80}, parent=None), 120)
            finally:
                runtime.shutdown()
                await chamber
            assert data["growth_mode"] in {"layer_by_layer", "step_flow", "island_3d"}
            assert reads <= 4  # created, reserved, resolved: one read each (and the first)

    asyncio.run(scenario())
