"""The DFT tenant daemon (real GPAW) against a real server: LDA and PBE requests, limits, a missing setup."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from ase.build import bulk

from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.client.errors import RequestRejected
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant

from ..server.helpers import REQUESTER_TENANT, open_lab

ALUMINIUM = bulk("Al", "fcc", a=4.05)
COARSE = {"cutoff": 200.0, "kpoint_density": 1.0, "smearing": 0.2}


def request(parameters: dict) -> dict:
    return {"quantity": "bulk_properties", "methods": ["dft"], "parameters": {"dft": parameters},
            "tenant_uuid": REQUESTER_TENANT}


def aluminium(xc: str) -> dict:
    return {"structure": {"cell": ALUMINIUM.cell.tolist(), "positions": ALUMINIUM.positions.tolist(),
                          "symbols": ["Al"]}, **COARSE, "xc": xc}


@pytest.mark.slow
def test_dft_tenant_end_to_end(sqlite_url, tmp_path):
    open_lab(sqlite_url, tenants=False).lab.close()
    with ServerProcess(sqlite_url, env={"LABWEAVE_PASSWORD_ROUNDS": "4"}, log_path=tmp_path / "server.log") as server:
        async def setup():
            async with AsyncLabClient(server.url, "op", "op") as op:
                await provision_tenant(op, "dft", [build("dft")], "dft", "dft-pw")
        asyncio.run(setup())
        tenant = subprocess.Popen(
            [sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", "dft", "--poll", "0.3",
             "--state-dir", str(tmp_path / "lab")],
            env={**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": "dft",
                 "LABWEAVE_PASSWORD": "dft-pw"},
            stdout=open(tmp_path / "dft.log", "ab"), stderr=subprocess.STDOUT)
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                with pytest.raises(RequestRejected) as refused:  # the published limits, enforced by the server
                    alice.post_request(request({**aluminium("PBE"), "xc": "B3LYP"}))
                assert "xc" in str(refused.value)
                uuids = {xc: alice.post_request(request(aluminium(xc))) for xc in ("LDA", "PBE")}
                uranium = alice.post_request(request({"alloy": {"composition": {"U": 0.5, "Al": 0.5}}}))
                deadline = time.monotonic() + 400
                done = ("resolved", "failed")
                while any(alice.request(u).status not in done for u in [*uuids.values(), uranium]):
                    assert time.monotonic() < deadline
                    time.sleep(0.5)
                data = {xc: alice.result_for_request(u).result.data for xc, u in uuids.items()}
                failed = alice.request(uranium)
                why = " ".join(e.message for e in alice.history(uranium))
        finally:
            tenant.send_signal(signal.SIGTERM)
            tenant.wait(60)
    assert data["LDA"]["lattice_constant"] < data["PBE"]["lattice_constant"]
    assert data["LDA"]["dft"]["xc"] == "LDA" and data["PBE"]["dft"]["xc"] == "PBE"
    assert data["PBE"]["dft"]["kpoints"] == [4, 4, 4] and data["PBE"]["cost_cpu_seconds"] > 0
    assert failed.status == "failed" and "PAW setup" in why and "U" in why
