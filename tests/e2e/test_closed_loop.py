"""The optimizer daemon closes the loop against a real server and a simulated PLD chamber,
and survives being killed and restarted without losing or repeating a request."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from labweave.services.client import LabClient

from ..lab_processes import labweave, served_lab, wait_for

CAMPAIGN = """
name = "smooth-sto"
batch_size = 2
initial_design = 3
budget = 8
requires_approval = false

[request]
quantity = "thin_film"
methods = ["pld_growth"]

[request.parameters.pld_growth]
target = "SrTiO3"
substrate = "SrTiO3"
laser_fluence = "{laser_fluence}"
substrate_temperature = "{substrate_temperature}"
oxygen_pressure = 1.0
repetition_rate = "{repetition_rate}"
pulses = 120

[[space.parameters]]
name = "laser_fluence"
lower = 1.0
upper = 3.0

[[space.parameters]]
name = "substrate_temperature"
lower = 800.0
upper = 1200.0

[[space.parameters]]
name = "repetition_rate"
lower = 0.5
upper = 10.0

[[objectives]]
name = "roughness"
path = "rms_roughness_nm"
direction = "minimize"

[strategy]
name = "bayesian"
settings = { seed = 3 }
"""


@pytest.mark.slow
def test_campaign_survives_a_killed_daemon(sqlite_url, tmp_path):
    campaign_file = tmp_path / "campaign.toml"
    campaign_file.write_text(CAMPAIGN)
    with served_lab(sqlite_url, tmp_path, [("chamber", "pld")]) as server:
        env = {"LABWEAVE_SERVER_URL": server.url}
        tenant = labweave(["tenant", "run", "pld", "--state-dir", str(tmp_path / "lab"), "--poll", "0.3"],
                          env | {"LABWEAVE_USER": "chamber", "LABWEAVE_PASSWORD": "chamber-pw"},
                          tmp_path / "tenant.log")
        daemon_env = env | {"LABWEAVE_USER": "alice", "LABWEAVE_PASSWORD": "alice"}
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                daemon = labweave(["optimize", str(campaign_file), "--poll", "0.3"], daemon_env, tmp_path / "d1.log")
                wait_for(lambda: len(alice.list_requests(campaign="smooth-sto", status="resolved")) >= 3)
                daemon.kill()  # mid-campaign, no goodbye
                daemon.wait()
                before = len(alice.list_requests(campaign="smooth-sto"))
                daemon = labweave(["optimize", str(campaign_file), "--poll", "0.3"], daemon_env, tmp_path / "d2.log")
                assert daemon.wait(300) == 0, (tmp_path / "d2.log").read_text()[-3000:]
                requests = alice.list_requests(campaign="smooth-sto")
                record = alice.campaign("smooth-sto")
        finally:
            tenant.send_signal(signal.SIGTERM)
            tenant.wait(60)
    assert before < 8
    assert len(requests) == 8  # the budget, no more: nothing repeated
    assert Counter(r.status for r in requests) == {"resolved": 8}
    points = [tuple(sorted(r.provenance["parameters"].items())) for r in requests]
    assert len(set(points)) == 8
    for r in requests:
        prov = r.provenance
        assert prov["campaign"] == "smooth-sto" and prov["strategy"] == "bayesian" and prov["model_version"]
        assert prov["reason"]
    assert [r for r in requests if r.provenance["acquisition_value"] is not None]  # the model took over
    assert record.status == "finished" and record.state["n_observations"] == 8
    history = record.state["history"]
    assert history[-1]["best"] == min(h["value"] for h in history)
