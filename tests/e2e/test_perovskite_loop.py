"""The perovskite campaign closes the loop: `labweave optimize` with the sisso strategy against a real
server and the CHGNet tenant, killed and restarted mid-campaign, each request carrying its formula."""

from __future__ import annotations

import signal
import tomllib
from collections import Counter

import pytest

from labweave.optimizer.campaign import EXAMPLES
from labweave.services.client import LabClient

from ..lab_processes import labweave, served_lab, wait_for

BUDGET = 10
#: A small corner of the example pool (few elements, so few CHGNet references to compute).
CANDIDATES = [("Sr", "Ti"), ("Ba", "Ti"), ("Ca", "Ti"), ("Sr", "Zr"), ("Ba", "Zr"), ("Ca", "Zr"), ("Sr", "Hf"),
              ("Ba", "Hf"), ("Ca", "Hf"), ("La", "Al"), ("La", "Sc"), ("K", "Nb"), ("K", "Ta"), ("Na", "Nb")]


def campaign_text() -> str:
    text = (EXAMPLES / "perovskite.toml").read_text()
    head, _, _ = text.partition("[strategy.settings.pool]")
    head = head.replace("budget = 40", f"budget = {BUDGET}").replace("initial_design = 8", "initial_design = 6")
    head = head.replace("n_models = 16", "n_models = 8")
    points = ",\n".join(f'  {{ A = "{a}", B = "{b}" }}' for a, b in CANDIDATES)
    return head + f'[strategy.settings.pool]\nkind = "explicit"\npoints = [\n{points}\n]\n'


@pytest.mark.slow
def test_perovskite_campaign_with_sisso_survives_a_restart_and_carries_formulas(sqlite_url, tmp_path):
    text = campaign_text()
    name = tomllib.loads(text)["name"]
    campaign_file = tmp_path / "perovskite.toml"
    campaign_file.write_text(text)
    with served_lab(sqlite_url, tmp_path, ["chgnet"]) as server:
        env = {"LABWEAVE_SERVER_URL": server.url}
        tenant = labweave(["tenant", "run", "chgnet", "--state-dir", str(tmp_path / "lab"), "--poll", "0.3"],
                          env | {"LABWEAVE_USER": "chgnet", "LABWEAVE_PASSWORD": "chgnet-pw"}, tmp_path / "tenant.log")
        daemon_env = env | {"LABWEAVE_USER": "alice", "LABWEAVE_PASSWORD": "alice"}
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                daemon = labweave(["optimize", str(campaign_file), "--poll", "0.3"], daemon_env, tmp_path / "d1.log")
                wait_for(lambda: len(alice.list_requests(campaign=name, status="resolved")) >= 4, timeout=600)
                daemon.kill()
                daemon.wait()
                before = len(alice.list_requests(campaign=name))
                daemon = labweave(["optimize", str(campaign_file), "--poll", "0.3"], daemon_env, tmp_path / "d2.log")
                assert daemon.wait(900) == 0, (tmp_path / "d2.log").read_text()[-3000:]
                requests = alice.list_requests(campaign=name)
                results = {r.uuid: alice.result_for_request(r.uuid).result.data for r in requests}
        finally:
            tenant.send_signal(signal.SIGTERM)
            tenant.wait(60)
    assert before < BUDGET
    assert len(requests) == BUDGET and Counter(r.status for r in requests) == {"resolved": BUDGET}
    points = {(r.provenance["parameters"]["A"], r.provenance["parameters"]["B"]) for r in requests}
    assert len(points) == BUDGET and points <= set(CANDIDATES)
    modelled = [r for r in requests if r.provenance["acquisition_value"] is not None]
    assert modelled, "the SISSO ensemble took over after the design"
    for r in modelled:
        formulas = r.provenance["formulas"]
        assert formulas and formulas[0]["formula"].startswith("bulk_modulus = ")
        assert r.provenance["predicted_std"]["bulk_modulus"] > 0
    moduli = [d["bulk_modulus"] for d in results.values()]
    assert all(100 < b < 300 for b in moduli)  # GPa: oxide perovskites
