"""The DFT tenant and the learning MLIP on a real Dask cluster.

- ``labweave tenant run dft --dask-scheduler ...``: GPAW's calculation runs on a
  ``dask worker`` process (one thread, as the cluster's workers are started),
  and the result is posted once by the tenant, with the settings and CPU time.
- ``labweave tenant run chgnet --dask-scheduler ...`` with a model folder every
  worker reads: a committee fine-tuned on one worker computes a request on
  another worker after the first is gone (the README's "a folder every worker
  reads").
"""

from __future__ import annotations

import sqlite3

import pytest
from ase.build import bulk
from distributed import Client

from labweave.services.client import LabClient
from tests.drivers.mlip_examples import AG_AL, AG_AL3

from ..lab_processes import run_tenant, served_lab, stop, wait_for
from ..server.helpers import REQUESTER_TENANT

pytestmark = pytest.mark.slow

ALUMINIUM = bulk("Al", "fcc", a=4.05)
AG_AL_CELL = {"alloy": {"prototype": "fcc", "composition": {"Ag": 0.5, "Al": 0.5}, "supercell": 1}}


def request(method: str, parameters: dict, quantity: str = "bulk_properties") -> dict:
    return {"quantity": quantity, "methods": [method], "parameters": {method: parameters},
            "tenant_uuid": REQUESTER_TENANT}


def resolved(client: LabClient, uuid: str, seconds: float) -> dict:
    wait_for(lambda: client.request(uuid).status in ("resolved", "failed"), seconds, f"request {uuid} ended")
    assert client.request(uuid).status == "resolved", [e.message for e in client.history(uuid)]
    result = client.result_for_request(uuid)
    assert result is not None
    return result.result.data


def test_dft_runs_on_a_dask_worker(sqlite_url, tmp_path, dask_cluster):
    dask_cluster.add_worker("w1")
    with served_lab(sqlite_url, tmp_path, ["dft"]) as server:
        tenant = run_tenant(server, "dft", tmp_path, "--dask-scheduler", dask_cluster.address,
                            env={"LABWEAVE_LOG_LEVEL": "INFO"})
        try:
            with LabClient(server.url, "alice", "alice") as alice, Client(dask_cluster.address) as dask:
                cell = {"structure": {"cell": ALUMINIUM.cell.tolist(), "positions": ALUMINIUM.positions.tolist(),
                                      "symbols": ["Al"]},
                        "cutoff": 200.0, "kpoint_density": 1.0, "smearing": 0.2, "xc": "LDA"}
                uuid = alice.post_request(request("dft", cell))
                wait_for(lambda: any(uuid in key for keys in dask.processing().values() for key in keys), 120,
                         "the calculation on the worker", every=0.05)
                data = resolved(alice, uuid, 300)
        finally:
            code = stop(tenant)
    log = (tmp_path / "dft.log").read_text()
    assert code == 0, log[-3000:]
    assert data["dft"]["xc"] == "LDA" and data["cost_cpu_seconds"] > 0
    assert 3.8 < data["lattice_constant"] < 4.1  # LDA aluminium, about 3.98 angstrom at converged settings
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT count(*) FROM result WHERE request_uuid = ?", (uuid,)).fetchone() == (1,)
    assert "Dask tasks: {'submitted': 1, 'finished': 1, 'failed': 0}" in log, log[-3000:]


def test_a_model_fine_tuned_on_one_worker_computes_on_another(sqlite_url, tmp_path, dask_cluster):
    models = tmp_path / "shared-models"  # the folder every worker reads (on a real cluster: a shared mount)
    dask_cluster.add_worker("w1")
    with served_lab(sqlite_url, tmp_path, ["chgnet"]) as server:
        tenant = run_tenant(server, "chgnet", tmp_path, "--dask-scheduler", dask_cluster.address,
                            "--backend-option", f"model_dir={models}")
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                tuning = alice.post_request(request("chgnet", {
                    "examples": [AG_AL3, AG_AL], "epochs": 2, "committee": 2, "eos_points": 2, "learning_rate": 5e-3},
                    quantity="mlip_fine_tuning"))
                tuned = resolved(alice, tuning, 300)
                dask_cluster.add_worker("w2")
                dask_cluster.kill("w1")  # the worker that trained the committee is gone
                computed = resolved(alice, alice.post_request(
                    request("chgnet", {**AG_AL_CELL, "model": tuned["model"]})), 300)
        finally:
            code = stop(tenant)
    assert code == 0, (tmp_path / "chgnet.log").read_text()[-3000:]
    assert (models / tuned["model"] / "model.json").is_file()
    assert not (tmp_path / "lab" / "mlip-models").exists()  # nothing written beside the tenant
    assert computed["model"] == tuned["model"] and computed["committee"] == 2
    assert computed["formation_energy_per_atom_std"] > 0
