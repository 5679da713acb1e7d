"""The EMT and CHGNet simulators as tenant daemons: one request naming both methods, and one each."""

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

from ..server.helpers import REQUESTER_TENANT, open_lab

COPPER = {"alloy": {"prototype": "fcc", "composition": {"Cu": 1.0}, "supercell": 1}}


def request(methods: list[str]) -> dict:
    return {"quantity": "bulk_properties", "methods": methods, "parameters": {m: COPPER for m in methods},
            "tenant_uuid": REQUESTER_TENANT}


@pytest.mark.slow
def test_emt_and_chgnet_tenants(sqlite_url, tmp_path):
    open_lab(sqlite_url, tenants=False).lab.close()
    with ServerProcess(sqlite_url, env={"LABWEAVE_PASSWORD_ROUNDS": "4"}, log_path=tmp_path / "server.log") as server:
        async def setup():
            async with AsyncLabClient(server.url, "op", "op") as op:
                await provision_tenant(op, "emt", [build("emt")], "emt", "emt-pw")
                await provision_tenant(op, "chgnet", [build("chgnet")], "chgnet", "chgnet-pw")
        asyncio.run(setup())
        procs = [subprocess.Popen(
            [sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", name, "--poll", "0.3",
             "--state-dir", str(tmp_path / "lab")],
            env={**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": name,
                 "LABWEAVE_PASSWORD": f"{name}-pw"},
            stdout=open(tmp_path / f"{name}.log", "ab"), stderr=subprocess.STDOUT) for name in ("emt", "chgnet")]
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                uuids = {m: alice.post_request(request([m])) for m in ("emt", "chgnet")}
                either = alice.post_request(request(["emt", "chgnet"]))  # whichever method is free first
                deadline = time.monotonic() + 300
                while any(alice.request(u).status != "resolved" for u in [*uuids.values(), either]):
                    assert time.monotonic() < deadline
                    time.sleep(0.5)
                data = {m: alice.result_for_request(u).result.data for m, u in uuids.items()}
                either_method = alice.result_for_request(either).result.method
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(60)
    assert data["emt"]["lattice_constant"] == pytest.approx(3.59, abs=0.01)
    assert data["emt"]["bulk_modulus"] == pytest.approx(134, abs=5)
    assert data["chgnet"]["lattice_constant"] != data["emt"]["lattice_constant"]
    assert data["chgnet"]["lattice_constant"] == pytest.approx(data["emt"]["lattice_constant"], rel=0.03)
    assert data["emt"]["method"] == "emt" and data["chgnet"]["method"] == "chgnet"
    assert data["emt"]["cost_cpu_seconds"] > 0 and data["chgnet"]["cost_cpu_seconds"] > 0
    assert either_method in (["emt"], ["chgnet"])
