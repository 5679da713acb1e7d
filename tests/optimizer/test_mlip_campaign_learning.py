"""A campaign whose MLIP learns, read back from its records: the fine-tunings asked for, the current model,
what is due, what the screens teach the strategy, what the budget is charged, and the campaign file's checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from labweave.optimizer import analytics
from labweave.optimizer.campaign import EXAMPLES, CampaignFileError, parse_campaign
from labweave.optimizer.mlip_learning import (
    FINE_TUNING,
    MODEL_KEY,
    NOISE_VALUE,
    PROVENANCE_KEY,
    CampaignMlip,
    FineTuning,
    fine_tuning_charges,
)
from labweave.schemas.api import RequestDetail
from labweave.schemas.campaign import MlipLearning
from labweave.schemas.core import ResultInfo
from labweave.services.optimizer_daemon import learning_points
from tests.drivers.mlip_examples import AG_AL, AG_AL3

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
EOS = ("energy_per_atom", "volume_per_atom", "bulk_modulus", "bulk_modulus_derivative", "references")
#: materials.toml's ladder (CHGNet screens, EMT confirms) on 4-atom cells, learning after every 2 EMT results.
LEARNING = "\n[mlip_learning]\nevery = 2\nepochs = 2\ncommittee = 2\ncost = 2.0\n"


def materials(extra: str = LEARNING, small: bool = True) -> str:
    text = (EXAMPLES / "materials.toml").read_text()
    return (text.replace("supercell = 2", "supercell = 1") if small else text) + extra


class Records:
    """A campaign's requests and results as the server returns them, one second apart."""

    def __init__(self) -> None:
        self.requests: list[RequestDetail] = []
        self.results: list[ResultInfo] = []

    def add(self, quantity: str, method: str, parameters: dict[str, Any], data: dict[str, Any] | None,
            provenance: dict[str, Any] | None = None, status: str = "resolved") -> str:
        uuid = f"r{len(self.requests)}"
        when = T0 + timedelta(seconds=len(self.requests))
        self.requests.append(RequestDetail.model_validate({
            "uuid": uuid, "ctime": when, "status": status, "campaign": "c", "provenance": provenance or {},
            "request": {"quantity": quantity, "methods": [method], "parameters": {method: parameters},
                        "tenant_uuid": "t"}}))
        if data is not None:
            self.results.append(ResultInfo.model_validate({
                "uuid": f"res-{uuid}", "ctime": when + timedelta(seconds=0.5), "status": "original",
                "result": {"data": data, "quantity": quantity, "method": [method], "parameters": {method: parameters},
                           "tenant_uuid": "t", "request_uuid": uuid}}))
        return uuid

    def emt(self, example: dict[str, Any], energy: float) -> str:
        data = {k: example[k] for k in EOS} | {"formation_energy_per_atom": energy, "cost_cpu_seconds": 0.3}
        point = {"x_Ag": 0.5, "x_Al": 0.5, "method": "emt"}
        return self.add("bulk_properties", "emt", {"alloy": example["alloy"]}, data,
                        {"parameters": point, "fidelity": "emt"})

    def screen(self, energy: float, model: str | None, std: float | None = None, x: float = 0.5) -> str:
        data = {"formation_energy_per_atom": energy, "model": model, "committee": 1 if std is None else 2,
                "formation_energy_per_atom_std": std}
        point = {"x_Ag": x, "x_Al": 1 - x, "method": "chgnet"}
        return self.add("bulk_properties", "chgnet", {"alloy": AG_AL["alloy"]}, data,
                        {"parameters": point, "fidelity": "chgnet", MODEL_KEY: None})

    def fine_tuning(self, trained_on: int, model: str | None, status: str = "resolved", seconds: float = 40.0) -> str:
        data = {"model": model, "cost_cpu_seconds": seconds} if model else None
        return self.add(FINE_TUNING, "chgnet", {"examples": []}, data,
                        {PROVENANCE_KEY: {"trained_on": trained_on}}, status)

    def mlip(self, every: int = 2) -> CampaignMlip:
        live = analytics.live_results(self.results)
        return CampaignMlip.read(MlipLearning(every=every, epochs=2, committee=2), "emt", self.requests, live)


def test_a_fine_tuning_is_due_after_every_k_target_results_and_asked_for_once():
    records = Records()
    records.screen(0.1, None)
    records.emt(AG_AL3, 0.15)
    assert not records.mlip().due()  # one EMT result of two
    records.emt(AG_AL, -0.02)
    mlip = records.mlip()
    assert mlip.due() and mlip.model is None and len(mlip.examples) == 2
    parameters, provenance = mlip.request()
    assert [e["request_id"] for e in parameters["examples"]] == ["r1", "r2"] and parameters["committee"] == 2
    assert provenance[PROVENANCE_KEY]["trained_on"] == 2
    records.fine_tuning(2, None, status="pending")  # asked for: found again at the next look
    assert not records.mlip().due() and records.mlip().in_flight
    records.emt(AG_AL3, 0.15)
    records.emt(AG_AL, -0.02)
    assert not records.mlip().due(), "never a second fine-tuning while one is in flight"


def test_the_newest_model_is_the_current_one_and_a_failed_fine_tuning_is_not_asked_again():
    records = Records()
    for _ in range(4):
        records.emt(AG_AL3, 0.15)
    records.fine_tuning(2, "aaaaaaaaaaaa")
    records.fine_tuning(4, None, status="failed")
    mlip = records.mlip()
    assert mlip.model == "aaaaaaaaaaaa" and mlip.trained_on == 4 and not mlip.due()
    records.emt(AG_AL, -0.02)
    records.emt(AG_AL, -0.02)
    assert records.mlip().due()
    records.fine_tuning(6, "bbbbbbbbbbbb")
    assert records.mlip().model == "bbbbbbbbbbbb"


def test_a_target_result_that_is_no_small_cell_is_no_example():
    records = Records()
    big = {**AG_AL3, "alloy": {**AG_AL3["alloy"], "supercell": 2}}
    records.emt(big, 0.15)
    records.emt(AG_AL, -0.02)
    mlip = records.mlip(every=1)
    assert len(mlip.examples) == 1 and list(mlip.skipped) == ["r0"] and "supercell" in mlip.skipped["r0"]


def test_the_strategy_learns_from_the_current_models_screens_with_their_committees_variance():
    records = Records()
    old = records.screen(0.10, None, x=0.25)
    records.emt(AG_AL3, 0.15)
    records.emt(AG_AL, -0.02)
    records.fine_tuning(2, "aaaaaaaaaaaa")
    new = records.screen(0.12, "aaaaaaaaaaaa", std=0.02, x=0.75)
    spec = parse_campaign(materials())
    terms = analytics.CampaignTerms.of(spec)
    observations = analytics.observations(terms, records.requests, records.results)
    assert [o.request_uuid for o in observations] == [old, "r1", "r2", new]  # the fine-tuning is none
    learnt = learning_points(terms, observations, analytics.live_results(records.results), records.mlip(), True)
    methods = [p["method"] for p, _ in learnt.points]
    assert methods == ["emt", "emt", "chgnet"], "the screen by the superseded (pretrained) model is left out"
    assert learnt.points[-1][1][NOISE_VALUE] == pytest.approx(0.02 ** 2)
    assert learnt.left_out == terms.cost("chgnet") and learnt.screens == {"current": 1, "with_noise": 1,
                                                                          "superseded": 1}
    # The budget: fine-tunings are charged (2 units each here) but are no experiments.
    progress = analytics.progress(terms, "running", records.requests, records.results)
    assert progress.requests == 4
    assert progress.done == pytest.approx(2 * terms.cost("chgnet") + 2 * terms.cost("emt") + 2.0)


def test_a_fine_tuning_is_charged_its_cost_or_the_cpu_seconds_it_recorded():
    asked = [FineTuning("a", "resolved", 2, "aaaaaaaaaaaa", 40.0), FineTuning("b", "failed", 4),
             FineTuning("c", "pending", 6)]
    assert fine_tuning_charges(MlipLearning(), asked) == (40.0, 40.0)  # in flight: as the last one cost
    assert fine_tuning_charges(MlipLearning(cost=3.0), asked) == (3.0, 3.0)
    assert fine_tuning_charges(MlipLearning(), asked[1:]) == (0.0, 0.0)  # not known before the first has run


def test_the_dft_campaign_learns_and_hands_the_committees_variance_to_the_co_kriging():
    spec = parse_campaign((EXAMPLES / "materials-dft.toml").read_text(), folder=EXAMPLES)
    assert spec.mlip_learning is not None and spec.mlip_learning.every == 5
    assert spec.strategy.settings["noise_value"] == NOISE_VALUE
    assert parse_campaign((EXAMPLES / "materials.toml").read_text()).strategy.settings["noise_value"] is None


@pytest.mark.parametrize("text, field, message", [
    (materials("\n[mlip_learning]\nevery = 0\n"), "mlip_learning.every", "greater than or equal to 1"),
    (materials("\n[mlip_learning]\nevery = 2\nepochs = 2\n"), "mlip_learning.cost", "say what one fine-tuning"),
    (materials(LEARNING, small=False), "request.parameters.emt", "supercell"),
    (materials(LEARNING).replace('scale_basis = "presence"', 'scale_basis = "presence"\nmodel = "multitask"'),
     "strategy.settings.model", "co-kriging"),
    (materials(LEARNING).replace('scale_basis = "presence"', 'scale_basis = "presence"\nnoise_value = "v"'),
     "strategy.settings.noise_value", "leave it unset"),
    (materials(LEARNING).replace('method = "chgnet"', 'method = "lj"').replace('"chgnet", "emt"', '"lj", "emt"')
     .replace("request.parameters.chgnet", "request.parameters.lj"), "mlip_learning", "fidelity ladder with the MLIP"),
    ((EXAMPLES / "pld.toml").read_text() + LEARNING, "mlip_learning", "fidelity ladder with the MLIP"),
])
def test_bad_learning_settings_are_refused_naming_the_field(text: str, field: str, message: str):
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(text, folder=EXAMPLES)
    assert any(p.field == field and message in p.message for p in caught.value.problems), str(caught.value)
