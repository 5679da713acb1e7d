"""A campaign whose MLIP learns: `labweave optimize` screens with CHGNet and confirms with EMT against a real
server and the real tenants, asks the CHGNet tenant to fine-tune itself on the EMT results, screens with the
fine-tuned committee from then on, and is killed with kill -9 and restarted without repeating a request."""

from __future__ import annotations

import json
import signal
import tomllib
from collections import Counter

import pytest

from labweave.optimizer.campaign import EXAMPLES, Campaign
from labweave.optimizer.mlip_learning import FINE_TUNING, MODEL_KEY, PROVENANCE_KEY
from labweave.services.client import LabClient

from ..lab_processes import labweave, served_lab, wait_for

BUDGET = 10
#: Binaries of four metals (few elemental references to compute), in the 4-atom cell a training example needs.
POOL = [{"Cu": 0.5, "Ni": 0.5}, {"Cu": 0.75, "Pd": 0.25}, {"Ni": 0.5, "Pd": 0.5}, {"Ag": 0.25, "Cu": 0.75},
        {"Cu": 0.25, "Ni": 0.75}, {"Ag": 0.5, "Pd": 0.5}, {"Cu": 0.5, "Pd": 0.5}, {"Ni": 0.75, "Pd": 0.25}]
ELEMENTS = ("Ag", "Al", "Au", "Cu", "Ni", "Pd", "Pt")


def campaign_text() -> str:
    """materials.toml (CHGNet screens, EMT confirms) on 4-atom cells, a small pool, a short budget, learning."""
    text = (EXAMPLES / "materials.toml").read_text()
    head, _, _ = text.partition("[strategy.settings.pool]")
    head = head.replace("supercell = 2", "supercell = 1").replace("budget = 200", f"budget = {BUDGET}")
    head = head.replace("initial_design = 6", "initial_design = 3").replace("fmax = 0.05", "fmax = 0.1")
    points = ",\n".join("  { " + ", ".join(f"x_{e} = {p.get(e, 0.0)}" for e in ELEMENTS) + " }" for p in POOL)
    return (head + f'[strategy.settings.pool]\nkind = "explicit"\npoints = [\n{points}\n]\n\n'
            "[mlip_learning]\nevery = 2\nepochs = 2\ncommittee = 2\neos_points = 2\ncost = 2.0\n")


@pytest.mark.slow
def test_the_mlip_learns_during_a_campaign_and_a_killed_daemon_repeats_nothing(sqlite_url, tmp_path):
    text = campaign_text()
    name = tomllib.loads(text)["name"]
    campaign_file = tmp_path / "materials.toml"
    campaign_file.write_text(text)
    assert Campaign.from_file(campaign_file).spec.strategy.settings["noise_value"] == "mlip_variance"
    with served_lab(sqlite_url, tmp_path, ["emt", "chgnet"]) as server:
        env = {"LABWEAVE_SERVER_URL": server.url, "OMP_NUM_THREADS": "1"}
        tenants = [labweave(["tenant", "run", t, "--state-dir", str(tmp_path / "lab"), "--poll", "0.3"],
                            env | {"LABWEAVE_USER": t, "LABWEAVE_PASSWORD": f"{t}-pw"}, tmp_path / f"{t}.log")
                   for t in ("emt", "chgnet")]
        daemon_env = env | {"LABWEAVE_USER": "alice", "LABWEAVE_PASSWORD": "alice"}
        try:
            with LabClient(server.url, "alice", "alice") as alice:
                def fine_tunings():
                    return [r for r in alice.list_requests(campaign=name) if r.request.quantity == FINE_TUNING]

                daemon = labweave(["optimize", str(campaign_file), "--poll", "0.3"], daemon_env, tmp_path / "d1.log")
                wait_for(fine_tunings, timeout=600)
                daemon.kill()  # kill -9, with the fine-tuning just asked for
                daemon.wait()
                before = alice.list_requests(campaign=name)
                emt_then = [r for r in before if r.request.methods == ["emt"] and r.status == "resolved"]
                daemon = labweave(["optimize", str(campaign_file), "--poll", "0.3"], daemon_env, tmp_path / "d2.log")
                assert daemon.wait(900) == 0, (tmp_path / "d2.log").read_text()[-3000:]
                requests = alice.list_requests(campaign=name)
                results = {r.uuid: alice.result_for_request(r.uuid) for r in requests if r.status == "resolved"}
                record = alice.campaign(name)
                frame = alice.campaign_frame(name)
        finally:
            for t in tenants:
                t.send_signal(signal.SIGTERM)
            for t in tenants:
                t.wait(60)

    # The first fine-tuning was asked for once, on the first two EMT results, and made a model.
    tunings = sorted((r for r in requests if r.request.quantity == FINE_TUNING), key=lambda r: r.ctime)
    assert len(emt_then) >= 2 and [r.uuid for r in before if r.request.quantity == FINE_TUNING] == [tunings[0].uuid]
    trained_on = [r.provenance[PROVENANCE_KEY]["trained_on"] for r in tunings]
    assert trained_on[0] == 2 and trained_on == sorted(set(trained_on))  # never the same fine-tuning twice
    asked = tunings[0].request.parameters["chgnet"]
    assert len(asked["examples"]) == 2 and asked["epochs"] == 2 and asked["committee"] == 2
    assert {e["request_id"] for e in asked["examples"]} <= {r.uuid for r in emt_then}
    models = [results[r.uuid].result.data["model"] for r in tunings if r.uuid in results]
    assert models and all(len(m) == 12 for m in models)

    # Fine-tunings are no observations and no experiments of the request budget.
    evaluations = [r for r in requests if r.request.quantity == "bulk_properties"]
    assert len(evaluations) <= BUDGET and Counter(r.status for r in evaluations) == {"resolved": len(evaluations)}
    # No request repeated: every evaluation differs in its method or its parameters (the model among them).
    keys = [(tuple(r.request.methods), json.dumps(r.request.parameters, sort_keys=True)) for r in evaluations]
    assert len(set(keys)) == len(keys)

    # Every proposal names the model that informed it; CHGNet screens after the first model carry it.
    assert all(MODEL_KEY in r.provenance for r in evaluations)
    by_model = [r for r in evaluations if r.provenance[MODEL_KEY] is not None]
    assert by_model, "proposals after the fine-tuning name its model"
    screens = [r for r in by_model if r.request.methods == ["chgnet"]]
    assert screens, "the strategy screens again with the fine-tuned model"
    for r in screens:
        data = results[r.uuid].result.data
        assert r.request.parameters["chgnet"]["model"] == r.provenance[MODEL_KEY] == data["model"]
        assert data["committee"] == 2 and data["formation_energy_per_atom_std"] > 0
    pretrained = [r for r in evaluations if r.request.methods == ["chgnet"] and r.provenance[MODEL_KEY] is None]
    assert all("model" not in r.request.parameters["chgnet"] for r in pretrained)
    # While the fine-tuning ran, screens waited for its model (a pretrained one would have been left out).
    assert all(r.ctime < tunings[0].ctime for r in pretrained)

    # The campaign's state names the current model and the noise the strategy used; the export has the column.
    state = record.state
    assert state["mlip"]["model"] == models[-1]
    assert state["mlip"]["screens"]["with_noise"] >= 1
    assert state["mlip"]["screens"]["with_noise"] == state["mlip"]["screens"]["current"]
    assert state["n_observations"] == len([r for r in evaluations if r.uuid in results])
    exported = frame.set_index("request_uuid")["mlip_model"]
    assert all(exported[r.uuid] == r.provenance[MODEL_KEY] for r in by_model)
    # A cost budget: each fine-tuning is charged its cost (2 units here) besides the evaluations.
    costs = {"chgnet": 1.0, "emt": 20.0}
    spent = sum(costs[r.request.methods[0]] for r in evaluations) + 2.0 * len(tunings)
    assert state["progress"]["done"] + state["progress"]["in_flight"] == pytest.approx(spent)
