"""The simulated cycler: FINALES2 compatibility, limits, ageing trends, noise, defects, analysis."""

from __future__ import annotations

import asyncio
import copy
import logging
import math

import jsonschema
import numpy as np
import pytest

from labweave.drivers.base import InstrumentFault, InstrumentStopped, ParameterError
from labweave.drivers.cells import (
    REFERENCE_ELECTROLYTE,
    CellShelf,
    ElectrolyteLeak,
    InternalShort,
    formulation_from_recipe,
    stand_in_cell,
)
from labweave.drivers.cycler import analysis, cell_model
from labweave.drivers.cycler.backend import DischargeCurve
from labweave.drivers.cycler.formulation import (
    LANDESFEIND_BLENDS,
    composition,
    conductivity,
    electrolyte_properties,
    landesfeind_conductivity,
)
from labweave.drivers.cycler.frontend import Cycler
from labweave.drivers.cycler.sim import SimulatedCyclerBackend
from labweave.schemas.battery import CapacityCyclingInput, CapacityCyclingOutput

CYCLES = 25
#: A worse electrolyte: no EC to passivate the graphite, and little salt.
POOR_ELECTROLYTE = formulation_from_recipe(0.4, {"EMC": 1.0})


def request(uuid: str, cycles: int = CYCLES, **changes) -> dict:
    params = {
        "cycling_protocol": "BIG-MAP-Standard",
        "number_cycles": cycles,
        "cell_info": {"uuid": uuid, "cell_name": "CR2032"},
        "location": {"address": "labweave simulated lab", "detail_1": "cycler"},
        "reservation_number": "test",
    }
    params.update(changes)
    return params


def cycle(cycler: Cycler, params: dict, progress=None) -> dict:
    return asyncio.run(cycler.perform("capacity", "cycling", params, progress))


def twin(shelf: CellShelf, uuid: str, electrolyte=None, defects=()) -> None:
    """Put on the shelf a copy of one physical cell, differing only in electrolyte or defects."""
    record = stand_in_cell("TWIN", electrolyte).model_copy(
        update={"uuid": uuid, "stand_in": False, "batch_id": "twins", "defects": list(defects)}
    )
    shelf.put(record)


def retention(result: dict) -> float:
    capacities = result["capacity_list"]
    return capacities[-1] / capacities[0]


@pytest.fixture(scope="module")
def trend_runs(tmp_path_factory) -> dict[str, dict]:
    """Identical cells cycled under different conditions (the expensive part of this module)."""
    shelf = CellShelf(tmp_path_factory.mktemp("trend-shelf"))
    twin(shelf, "reference-1C")
    twin(shelf, "reference-2C")
    twin(shelf, "poor-1C", POOR_ELECTROLYTE)
    twin(shelf, "leak-1C", defects=[ElectrolyteLeak(severity=1.0, cause="test")])
    twin(shelf, "short-1C", defects=[InternalShort(resistance_ohm=150_000, decay_per_cycle=0.03, cause="test")])
    twin(shelf, "doomed-3C", POOR_ELECTROLYTE, defects=[ElectrolyteLeak(severity=1.0, cause="test")])
    backend = SimulatedCyclerBackend(shelf.directory, seed=1)
    rates = {
        "reference-1C": 1.0,
        "reference-2C": 2.0,
        "poor-1C": 1.0,
        "leak-1C": 1.0,
        "short-1C": 1.0,
        "doomed-3C": 3.0,
    }

    async def all_channels():
        # one cycler, six channels, run side by side as on a real channel group
        runs = [
            Cycler(backend).perform("capacity", "cycling", request(uuid, c_rate_charge=rate, c_rate_discharge=rate))
            for uuid, rate in rates.items()
        ]
        return dict(zip(rates, await asyncio.gather(*runs), strict=True))

    return asyncio.run(all_channels())


# -- FINALES2 compatibility ----------------------------------------------------------


def test_finales2_example_request_fits_the_generated_schema(finales2):
    params = finales2.example_parameters("capacity", "cycling")
    cycler = Cycler(SimulatedCyclerBackend(None))
    capability = cycler.capabilities()[0]
    jsonschema.validate(params, capability["json_schema_specifications"])
    assert isinstance(cycler.validate("capacity", "cycling", params), CapacityCyclingInput)
    assert set(finales2.input_schema("capacity", "cycling")["required"]) == set(
        capability["json_schema_specifications"]["required"]
    )


def test_finales2_example_runs_on_a_stand_in_and_validates(finales2, caplog):
    params = copy.deepcopy(finales2.example_parameters("capacity", "cycling"))
    params["number_cycles"] = 4
    cycler = Cycler(SimulatedCyclerBackend(None, seed=3))
    with caplog.at_level(logging.WARNING, logger="labweave.drivers.cycler.sim"):
        result = cycle(cycler, params)
    assert any("CELL-1" in r.message and "stand-in" in r.message for r in caplog.records)
    jsonschema.validate(result, finales2.output_schema("capacity", "cycling"))
    jsonschema.validate(result, cycler.capabilities()[0]["json_schema_result_output"])
    assert len(result["capacity_list"]) == 4 and result["channel_list"] == [1]
    assert result["cell_info"]["uuid"] == "CELL-1"
    # the example charges at 1C with a 1 A CV cut-off, i.e. no CV hold: well below the cell's capacity
    assert 0.5 < result["capacity_list"][0] < 1.5


def test_limitations_come_from_the_parameter_bounds():
    limits = Cycler(SimulatedCyclerBackend(None)).limitations()[0]["limitations"]
    assert limits["cycling_protocol"] == ["BIG-MAP-Standard"]
    assert limits["number_cycles"] == [{"min": 1, "max": 1000, "step": 1}]
    assert limits["c_rate_charge"] == [{"min": 0.1, "max": 3.0}]
    assert limits["V_max"] == [{"min": 3.8, "max": 4.2}]


# -- limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"c_rate_charge": 10.0}, "c_rate_charge"),
        ({"V_max": 4.5}, "V_max"),
        ({"number_cycles": 0}, "number_cycles"),
        ({"cycling_protocol": "fast-charge"}, "cycling_protocol"),
        ({"cell_info": {"cell_name": "CR2032"}}, "cell_info.uuid"),
        ({"V_max": 4.1, "cycling_V_max": 4.2}, "cycling_V_max"),
        ({"V_min": 3.0, "cycling_V_min": 2.8}, "cycling_V_min"),
        ({"V_max": 3.9, "V_min": 3.5}, "V_max"),
        ({"capacity": 0.0015, "I_max": 0.002, "c_rate_charge": 2.0}, "c_rate_charge"),
        ({"CV_I_cutoff": 7.0}, "CV_I_cutoff"),
    ],
)
def test_out_of_limit_parameters_are_refused_before_anything_runs(changes, field):
    backend = SimulatedCyclerBackend(None)
    cycler = Cycler(backend)
    with pytest.raises(ParameterError) as caught:
        cycle(cycler, request("LIMITS", **changes))
    assert caught.value.field == field
    assert backend.tests_run == 0


def test_current_above_i_max_is_refused_with_the_nominal_capacity_too():
    backend = SimulatedCyclerBackend(None)
    with pytest.raises(ParameterError) as caught:
        cycle(Cycler(backend), request("IMAX", I_max=0.001, c_rate_discharge=1.0))
    assert caught.value.field == "c_rate_charge"
    assert backend.tests_run == 0


# -- the electrolyte map -----------------------------------------------------------------


def test_conductivity_follows_landesfeind_and_peaks_near_one_molar():
    coeffs = LANDESFEIND_BLENDS["EC:EMC 3:7"][0]
    pybamm = pytest.importorskip("pybamm")
    from pybamm.input.parameters.lithium_ion.ORegan2022 import electrolyte_conductivity_EC_EMC_3_7_Landesfeind2019

    for molarity in (0.5, 1.0, 1.5):
        expected = electrolyte_conductivity_EC_EMC_3_7_Landesfeind2019(
            pybamm.Scalar(molarity * 1000), pybamm.Scalar(298.15)
        )
        assert landesfeind_conductivity(molarity, 298.15, coeffs) == pytest.approx(float(expected.evaluate()), rel=1e-9)
    kappa = {c: landesfeind_conductivity(c, 298.15, coeffs) for c in (0.2, 0.6, 1.0, 1.4, 2.2)}
    assert max(kappa, key=kappa.get) in (1.0, 1.4)
    assert 0.8 < conductivity(composition(REFERENCE_ELECTROLYTE)) < 1.0  # about 9 mS/cm for 1 M LiPF6 in EC:EMC


def test_ageing_factors_follow_the_chemistry():
    reference = electrolyte_properties(REFERENCE_ELECTROLYTE)
    assert reference.sei_growth_factor == pytest.approx(1.0) and reference.cathode_attack_factor == pytest.approx(1.0)
    assert reference.composition.salt_molarity == pytest.approx(1.0, rel=1e-4)
    with_vc = electrolyte_properties(formulation_from_recipe(1.0, {"EC": 3.0, "EMC": 6.8, "VC": 0.2}))
    assert with_vc.sei_growth_factor < 0.6 and with_vc.cathode_attack_factor < 1.0
    ec_free = electrolyte_properties(formulation_from_recipe(1.0, {"EMC": 1.0}))
    assert ec_free.sei_growth_factor > 2.0
    pc_based = electrolyte_properties(formulation_from_recipe(1.0, {"PC": 3.0, "EMC": 7.0}))
    assert pc_based.sei_growth_factor > 5.0
    dilute = electrolyte_properties(formulation_from_recipe(0.3, {"EC": 3.0, "EMC": 7.0}))
    assert (
        dilute.free_solvent_molarity > reference.free_solvent_molarity and dilute.conductivity < reference.conductivity
    )
    excess_vc = electrolyte_properties(formulation_from_recipe(1.0, {"EC": 3.0, "EMC": 6.5, "VC": 0.5}))
    assert excess_vc.interphase_resistance > 1.0 > 0.01 > with_vc.interphase_resistance


def test_cell_design_reads_the_shelf_record():
    base = cell_model.base_parameters()
    electrolyte = electrolyte_properties(REFERENCE_ELECTROLYTE)
    nominal = stand_in_cell("DESIGN")
    design = cell_model.design_cell(nominal, electrolyte, base)
    assert design.nominal_capacity_ah == pytest.approx(
        nominal.cathode_loading_mah_cm2 * nominal.cathode_area_cm2 / 1000, rel=1e-6
    )
    starved = cell_model.design_cell(nominal.model_copy(update={"electrolyte_volume_ul": 3.0}), electrolyte, base)
    assert starved.series_resistance_ohm > design.series_resistance_ohm and starved.separator_saturation < 1
    loose = cell_model.design_cell(nominal.model_copy(update={"crimp_pressure_mpa": 3.0}), electrolyte, base)
    assert loose.series_resistance_ohm > design.series_resistance_ohm
    shifted = cell_model.design_cell(nominal.model_copy(update={"alignment_offset_mm": 2.0}), electrolyte, base)
    assert shifted.area_m2 < 0.95 * design.area_m2
    assert cell_model.overlap_fraction(1.5386, 1.7663, 0.0) == 1.0
    assert cell_model.overlap_fraction(1.5386, 1.7663, 0.45) == 1.0
    assert cell_model.overlap_fraction(1.5386, 1.7663, 0.8) < 0.99
    assert cell_model.overlap_fraction(1.5386, 1.7663, 20.0) == 0.0


# -- physics trends ------------------------------------------------------------------------


def test_capacity_fades_with_cycles(trend_runs):
    capacities = np.array(trend_runs["reference-1C"]["capacity_list"])
    assert len(capacities) == CYCLES
    slope = np.polyfit(np.arange(len(capacities)), capacities, 1)[0]
    assert slope < 0
    assert capacities[-5:].mean() < capacities[:5].mean()
    assert 0.9 < retention(trend_runs["reference-1C"]) < 0.995
    assert trend_runs["reference-1C"]["end_of_life_cycle"] is None


def test_faster_cycling_shortens_life(trend_runs):
    assert retention(trend_runs["reference-2C"]) < retention(trend_runs["reference-1C"]) - 0.01


def test_worse_formulation_shortens_life(trend_runs):
    poor, reference = trend_runs["poor-1C"], trend_runs["reference-1C"]
    assert retention(poor) < retention(reference) - 0.003
    assert poor["formation_capacity_list"][-1] < reference["formation_capacity_list"][-1]
    poor_eol = analysis.estimate_end_of_life(poor["capacity_list"])
    reference_eol = analysis.estimate_end_of_life(reference["capacity_list"])
    assert poor_eol.cycle < reference_eol.cycle
    # the SEI is the main fade mode, so the electrolyte weighs on life as in practice: not a few per cent
    assert retention(poor) < retention(reference) - 0.01


def test_leaky_cell_fades_faster(trend_runs):
    assert retention(trend_runs["leak-1C"]) < retention(trend_runs["reference-1C"]) - 0.02


def test_shorted_cell_shows_low_coulombic_efficiency(trend_runs):
    short, reference = trend_runs["short-1C"], trend_runs["reference-1C"]
    assert np.median(short["coulombic_efficiency_list"]) < 0.99 < np.median(reference["coulombic_efficiency_list"])
    # the short grows: efficiency keeps falling
    assert short["coulombic_efficiency_list"][-1] < short["coulombic_efficiency_list"][1]


def test_end_of_life_is_reported_when_reached(trend_runs, finales2):
    doomed = trend_runs["doomed-3C"]
    eol = doomed["end_of_life_cycle"]
    assert eol is not None and 1 < eol <= CYCLES
    capacities = doomed["capacity_list"]
    assert capacities[eol - 1] < 0.8 * capacities[0] <= min(capacities[: eol - 1])
    for result in trend_runs.values():
        jsonschema.validate(result, finales2.output_schema("capacity", "cycling"))
        CapacityCyclingOutput.model_validate(result)


def test_hard_short_fails_in_formation(shelf_dir):
    shelf = CellShelf(shelf_dir)
    twin(shelf, "hard-short", defects=[InternalShort(resistance_ohm=15_000, decay_per_cycle=0.02, cause="test")])
    result = cycle(Cycler(SimulatedCyclerBackend(shelf, seed=1)), request("hard-short", cycles=3))
    assert result["test_completed"] is False and "internal short" in result["abort_reason"]
    assert result["capacity_list"] == [] and result["end_of_life_cycle"] == 1
    assert shelf.get("hard-short").cycled


# -- noise and state -------------------------------------------------------------------------


def test_same_seed_same_numbers_different_seed_different():
    results = [
        cycle(Cycler(SimulatedCyclerBackend(None, seed=seed)), request("SEEDED", cycles=3)) for seed in (5, 5, 6)
    ]
    assert results[0]["capacity_list"] == results[1]["capacity_list"]
    assert results[0]["coulombic_efficiency_list"] == results[1]["coulombic_efficiency_list"]
    assert results[0]["capacity_list"] != results[2]["capacity_list"]
    # the difference is measurement noise, not a different cell
    assert np.allclose(results[0]["capacity_list"], results[2]["capacity_list"], rtol=3e-3)


def test_a_cycled_shelf_cell_is_not_cycled_again(shelf_dir):
    shelf = CellShelf(shelf_dir)
    twin(shelf, "ONCE")
    cycler = Cycler(SimulatedCyclerBackend(shelf, seed=2))
    result = cycle(cycler, request("ONCE", cycles=2))
    assert shelf.get("ONCE").history[-1]["event"] == "cycled"
    assert shelf.get("ONCE").history[-1]["channel"] == result["channel_list"][0]
    with pytest.raises(InstrumentFault) as caught:
        cycle(cycler, request("ONCE", cycles=2))
    assert not caught.value.retryable


def test_progress_is_reported_and_safe_stop_ends_the_test():
    cycler = Cycler(SimulatedCyclerBackend(None, seed=4))
    seen: list[float] = []

    async def scenario():
        async def progress(fraction: float, message: str) -> None:
            seen.append(fraction)
            if len(seen) == 2:
                await cycler.safe_stop()

        with pytest.raises(InstrumentStopped):
            await cycler.perform("capacity", "cycling", request("STOPPED", cycles=30), progress)

    asyncio.run(scenario())
    assert seen[:2] == sorted(seen[:2]) and 0 < seen[0] < 0.1
    assert len(seen) < 10
    cycler.resume()
    assert cycler.state.value == "idle"


# -- analysis --------------------------------------------------------------------------------


def test_end_of_life_cycle_rules():
    assert analysis.end_of_life_cycle([1.0, 0.9, 0.85, 0.79, 0.7]) == 4
    assert analysis.end_of_life_cycle([1.0, 0.95, 0.9]) is None
    assert analysis.end_of_life_cycle([1.0, 0.95, 0.9], aborted=True) == 3
    assert analysis.end_of_life_cycle([], aborted=True) == 1


def test_extrapolated_end_of_life_recovers_a_known_fade():
    n = np.arange(1, 61, dtype=float)
    truth_a, truth_b = 0.004, 0.8  # r(n) = 1 - a (n-1)^b reaches 0.8 at n = 1 + 50^(1/0.8)
    rng = np.random.default_rng(0)
    capacities = 1.5 * (1 - truth_a * (n - 1) ** truth_b) * (1 + 3e-4 * rng.standard_normal(len(n)))
    truth = 1 + (0.2 / truth_a) ** (1 / truth_b)
    estimate = analysis.estimate_end_of_life(capacities.tolist())
    assert not estimate.measured and estimate.success
    assert abs(estimate.cycle - truth) < max(3 * estimate.uncertainty, 0.05 * truth)
    assert estimate.uncertainty < 0.2 * truth


def test_capacity_vector_variance_grows_with_fade():
    voltage = np.linspace(4.1, 2.6, 50)
    fresh = DischargeCurve(voltage.tolist(), np.linspace(0, 1.5, 50).tolist())
    slightly = DischargeCurve(voltage.tolist(), np.linspace(0, 1.45, 50).tolist())
    badly = DischargeCurve(voltage.tolist(), np.linspace(0, 1.2, 50).tolist())
    small = analysis.capacity_vector_variance(fresh, slightly)
    large = analysis.capacity_vector_variance(fresh, badly)
    assert small is not None and large is not None and large > small
    assert analysis.capacity_vector_variance(fresh, fresh) is None


def test_degradation_workflow_result_validates_against_finales2(trend_runs, finales2):
    cells = [trend_runs[k] for k in ("reference-1C", "doomed-3C")]
    hard = trend_runs["short-1C"] | {"test_completed": False, "abort_reason": "test"}
    output = analysis.degradation_workflow_output(
        [c.model_dump(mode="json") for c in REFERENCE_ELECTROLYTE], cells + [hard], internal_reference="workflow-1"
    )
    data = output.model_dump(mode="json")
    jsonschema.validate(data, finales2.output_schema("degradationEOL", "degradation_workflow"))
    reference, doomed, failed = data["degradationEOL"]
    assert doomed["end_of_life"] == trend_runs["doomed-3C"]["end_of_life_cycle"] and doomed["meta"]["rating"] == 5
    assert reference["end_of_life"] > CYCLES and reference["meta"]["success"]
    assert math.isfinite(reference["end_of_life_uncertainty"]) and reference["end_of_life_uncertainty"] > 0
    assert failed["meta"]["success"] is False
    assert len(reference["capacity_trajectory"]) == len(reference["capacity_trajectory_uncertainty"]) == CYCLES


def test_a_robot_made_cell_moves_to_the_cycler_through_the_shelf(finales2, shelf_dir):
    from labweave.drivers.coin_cell_robot.frontend import CoinCellRobot
    from labweave.drivers.coin_cell_robot.sim import SimulatedRobotBackend

    robot = CoinCellRobot(SimulatedRobotBackend(shelf_dir, seed=9, fault_rate=0.0))
    assembly = copy.deepcopy(finales2.example_parameters("cell_assembly", "autobass_assembly"))
    assembly["batch_volume"] = 1
    made = asyncio.run(robot.perform("cell_assembly", "autobass_assembly", assembly))["batch_output"][0]
    uuid = made["cell_info"]["uuid"]
    # a second process would open the same directory; a fresh shelf object stands in for it
    cycler = Cycler(SimulatedCyclerBackend(CellShelf(shelf_dir), seed=9))
    result = cycle(cycler, request(uuid, cycles=2))
    assert result["cell_info"]["uuid"] == uuid and len(result["capacity_list"]) == 2
    record = CellShelf(shelf_dir).get(uuid)
    assert record.assembled_by == "sim-autobass" and record.cycled
    # the robot's electrolyte (the FINALES2 example: 0.15 M LiPF6, mostly DMC) is what was cycled
    assert record.electrolyte[0].fraction == pytest.approx(0.0128, rel=0.05)
