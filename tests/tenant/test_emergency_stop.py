"""Emergency stop of a tenant: by an operator (route, CLI) or locally (SIGUSR1), until an operator resets it.

The runtime brings its instruments to their safe state, interrupts the running
work, fails each request it held as retryable (the request was fine; the lab
stopped under it) and claims nothing until the stop is reset on the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx

from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.client.errors import Conflict
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant
from labweave.services.tenant.runtime import TenantRuntime

from ..server.helpers import open_lab
from .test_runtime import pld_request, server, spawn_tenant, wait_for  # noqa: F401  (the server fixture)


def test_operator_estop_fails_the_work_and_leaves_the_chamber_safe_until_reset(sqlite_url, tmp_path):
    lab = open_lab(sqlite_url, tenants=False)
    app = lab.client.app

    def client(user: str, password: str) -> AsyncLabClient:
        return AsyncLabClient("http://lab", user, password, transport=httpx.ASGITransport(app=app))

    chamber = build("pld")
    backend = chamber.backend

    async def scenario():
        async with client("op", "op") as op, client("alice", "alice") as alice:
            tenant_uuid = await provision_tenant(op, "chamber", [chamber], "chamber", "chamber-pw")
            uuid = await alice.post_request(pld_request(pulses=3000, repetition_rate=1.0))
            async with client("chamber", "chamber-pw") as tenant:
                runtime = TenantRuntime(tenant, [chamber], state_dir=tmp_path / "state", poll_seconds=0.1,
                                        grace_seconds=0.1)
                await runtime.start()
                assert await runtime._claim_for_idle_instruments() == 1
                while sum(backend.target_pulses.values()) < 25:
                    await asyncio.sleep(0.01)
                assert backend.laser_on and backend.gas_valves_open

                await op.stop_tenant(tenant_uuid)  # what `labweave tenant estop` and the dashboard do
                await runtime._check_stop_flag()  # the runtime's poll
                assert runtime.estop == "an operator's emergency stop" and not runtime.jobs
                assert backend.in_safe_state() and not backend.laser_on and not backend.gas_valves_open
                fired = sum(backend.target_pulses.values())
                assert fired < 3000

                request = await alice.request(uuid)
                assert request.status == "pending" and request.attempts == 1  # retryable: queued again
                assert "emergency stop (an operator's emergency stop)" in request.failure_reason
                assert "laser off" in request.failure_reason and "its safe state" in request.failure_reason
                last = (await alice.history(uuid))[-1]
                assert last.actor == "chamber" and last.message.startswith("retryable failure: emergency stop")
                stops = [e for e in (await op.events(kinds=["tenant.stop_requested"])).items]
                assert [(e.subject, e.actor) for e in stops] == [(tenant_uuid, "op")]
                try:  # stopped: the server hands it nothing (and the runtime does not ask)
                    await tenant.claim()
                except Conflict as exc:
                    assert "asked to stop" in str(exc)
                else:
                    raise AssertionError("a stopped tenant claimed")
                await runtime._check_stop_flag()
                assert runtime.estop and sum(backend.target_pulses.values()) == fired

                await op.resume_tenant(tenant_uuid)  # `labweave tenant reset`
                await runtime._check_stop_flag()
                assert runtime.estop is None and chamber.state.value == "idle"
                assert await runtime._claim_for_idle_instruments() == 1  # the same request, once more
                while sum(backend.target_pulses.values()) < fired + 10:
                    await asyncio.sleep(0.01)
                assert backend.laser_on  # re-armed
                await runtime._wind_down()  # a shutdown releases it (no failure counted)
                assert (await alice.request(uuid)).attempts == 1

    asyncio.run(scenario())


def test_sigusr1_stops_at_once_reports_to_the_server_and_the_cli_resets(server, tmp_path):  # noqa: F811
    env = dict(server.env)
    with LabClient(server.url, "alice", "alice") as alice, LabClient(server.url, "op", "op") as op:
        uuid = alice.post_request(pld_request(pulses=4000, repetition_rate=1.0))
        proc = spawn_tenant(server, "chamber-a", tmp_path)
        try:
            wait_for(lambda: alice.request(uuid).status == "reserved")
            tenant = alice.request(uuid).owner_tenant_uuid
            time.sleep(0.5)
            proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: alice.request(uuid).status == "pending", timeout=60)
            detail = alice.request(uuid)
            assert detail.attempts == 1 and "local emergency stop (SIGUSR1)" in detail.failure_reason
            wait_for(lambda: op.tenant(tenant).stop_requested, timeout=30)  # reported: the operator sees it
            stops = op.events(kinds=["tenant.stop_requested"]).items
            assert [(e.subject, e.actor) for e in stops] == [(tenant, "chamber-a")]
            time.sleep(2.0)
            assert alice.request(uuid).status == "pending"  # nothing claimed while stopped
            log = (tmp_path / "chamber-a.log").read_text()
            assert "EMERGENCY STOP (a local emergency stop (SIGUSR1))" in log and "in its safe state" in log

            reset = subprocess.run([sys.executable, "-m", "labweave.services.cli.main", "tenant", "reset", "chamber-a"],
                                   env=env, capture_output=True, text=True, timeout=120)
            assert reset.returncode == 0, reset.stderr
            assert "emergency stop reset" in reset.stdout
            wait_for(lambda: alice.request(uuid).status in ("reserved", "resolved"), timeout=60)
            assert not op.tenant(tenant).stop_requested
            estop = subprocess.run([sys.executable, "-m", "labweave.services.cli.main", "tenant", "estop", "nobody"],
                                   env=env, capture_output=True, text=True, timeout=120)
            assert estop.returncode == 2 and "no tenant 'nobody'" in estop.stderr
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
