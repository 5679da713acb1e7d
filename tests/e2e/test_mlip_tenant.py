"""The CHGNet tenant learns from DFT results: a fine-tuning request, then bulk properties by the model it made."""

from __future__ import annotations

import time

import pytest

from labweave.services.client import LabClient
from tests.drivers.mlip_examples import AG_AL, AG_AL3

from ..lab_processes import run_tenant, served_lab, stop
from ..server.helpers import REQUESTER_TENANT

AG_AL_CELL = {"alloy": {"prototype": "fcc", "composition": {"Ag": 0.5, "Al": 0.5}, "supercell": 1}}


def request(quantity: str, parameters: dict) -> dict:
    return {"quantity": quantity, "methods": ["chgnet"], "parameters": {"chgnet": parameters},
            "tenant_uuid": REQUESTER_TENANT}


def wait_resolved(client: LabClient, uuid: str, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    while client.request(uuid).status != "resolved":
        assert client.request(uuid).status in ("pending", "reserved"), client.request(uuid).status
        assert time.monotonic() < deadline
        time.sleep(0.5)
    result = client.result_for_request(uuid)
    assert result is not None
    return result.result.data


@pytest.mark.slow
def test_fine_tune_then_compute_with_the_fine_tuned_model(sqlite_url, tmp_path):
    with served_lab(sqlite_url, tmp_path, ["chgnet"]) as server:
        tenant = run_tenant(server, "chgnet", tmp_path)
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                tuning = alice.post_request(request("mlip_fine_tuning", {
                    "examples": [AG_AL3, AG_AL], "epochs": 3, "committee": 2, "eos_points": 2, "learning_rate": 5e-3}))
                tuned = wait_resolved(alice, tuning)
                computed = wait_resolved(alice, alice.post_request(
                    request("bulk_properties", {**AG_AL_CELL, "model": tuned["model"]})))
                with pytest.raises(Exception, match="model"):  # refused by the server's check, naming the field
                    alice.post_request(request("bulk_properties", {**AG_AL_CELL, "model": "not-a-version"}))
        finally:
            stop(tenant)
    assert tuned["mae_after"] < tuned["mae_before"] and tuned["committee"] == 2
    assert (tmp_path / "lab" / "mlip-models" / tuned["model"] / "model.json").is_file()
    assert computed["model"] == tuned["model"] and computed["committee"] == 2
    assert computed["formation_energy_per_atom_std"] > 0 and computed["bulk_modulus_std"] > 0
