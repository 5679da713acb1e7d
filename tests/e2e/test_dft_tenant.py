"""The DFT tenant daemon (real GPAW) against a real server: LDA and PBE requests, limits, a missing setup."""

from __future__ import annotations

import time

import pytest
from ase.build import bulk

from labweave.services.client import LabClient
from labweave.services.client.errors import RequestRejected

from ..lab_processes import run_tenant, served_lab, stop
from ..server.helpers import REQUESTER_TENANT

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
    with served_lab(sqlite_url, tmp_path, ["dft"]) as server:
        tenant = run_tenant(server, "dft", tmp_path)
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
            stop(tenant)
    assert data["LDA"]["lattice_constant"] < data["PBE"]["lattice_constant"]
    assert data["LDA"]["dft"]["xc"] == "LDA" and data["PBE"]["dft"]["xc"] == "PBE"
    assert data["PBE"]["dft"]["kpoints"] == [4, 4, 4] and data["PBE"]["cost_cpu_seconds"] > 0
    assert failed.status == "failed" and "PAW setup" in why and "U" in why
