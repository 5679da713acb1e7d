"""A campaign's fidelity costs fitted to measured CPU seconds (cost_records), never typed in the file."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

import labweave.optimizer
from labweave.optimizer.campaign import Campaign, CampaignFileError
from labweave.optimizer.costs import CostModel, CostRecord

CAMPAIGNS = Path(labweave.optimizer.__file__).parent / "campaigns"
RECORDS = [
    {"method": "chgnet", "n_atoms": 4, "cpu_seconds": 2.0},
    {"method": "chgnet", "n_atoms": 4, "cpu_seconds": 3.0},
    {"method": "dft", "n_atoms": 1, "kpoints": 29, "cpu_seconds": 20.0},
    {"method": "dft", "n_atoms": 1, "kpoints": 47, "cpu_seconds": 31.0},
    {"method": "dft", "n_atoms": 4, "kpoints": 20, "cpu_seconds": 90.0},
    {"method": "dft", "n_atoms": 4, "kpoints": 20, "cpu_seconds": 100.0},
]


def campaign_in(folder: Path, records: list[dict] | None) -> Path:
    shutil.copy(CAMPAIGNS / "materials-dft.toml", folder / "materials-dft.toml")
    if records is not None:
        (folder / "fidelity_costs.json").write_text(json.dumps(records))
    return folder / "materials-dft.toml"


def test_fidelity_costs_come_from_the_records(tmp_path):
    campaign = Campaign.from_file(campaign_in(tmp_path, RECORDS))
    costs = {f["method"]: f["cost"] for f in campaign.spec.strategy.settings["fidelities"]}
    model = CostModel(CostRecord.model_validate(r) for r in RECORDS)
    assert costs["chgnet"] == pytest.approx(math.sqrt(6.0), abs=1e-3)  # geometric mean, nothing varies
    assert costs["dft"] == pytest.approx(model.seconds("dft", 4, 20), abs=1e-3)  # k-points measured at 4 atoms
    assert 20 < costs["dft"] / costs["chgnet"] < 60
    assert campaign.make_strategy().ladder.target.method == "dft"


def test_missing_records_are_a_campaign_error(tmp_path):
    with pytest.raises(CampaignFileError) as err:
        Campaign.from_file(campaign_in(tmp_path, None))
    assert "strategy.settings.cost_records" in str(err.value) and "fidelity_costs.json" in str(err.value)


def test_a_method_never_measured_is_named(tmp_path):
    with pytest.raises(CampaignFileError) as err:
        Campaign.from_file(campaign_in(tmp_path, [r for r in RECORDS if r["method"] != "dft"]))
    assert "no measured cost of 'dft'" in str(err.value)


def test_the_packaged_campaign_loads_with_the_committed_measurements():
    campaign = Campaign.from_file(CAMPAIGNS / "materials-dft.toml")
    costs = {f["method"]: f["cost"] for f in campaign.spec.strategy.settings["fidelities"]}
    assert costs["dft"] > 10 * costs["chgnet"] > 0
