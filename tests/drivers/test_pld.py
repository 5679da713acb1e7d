"""The PLD chamber: growth physics trends, seeded noise, limits and safe stop."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from labweave.drivers.base import InstrumentState, InstrumentStopped, ParameterError
from labweave.drivers.pld.deposition import PulsedDeposition
from labweave.drivers.pld.frontend import PldChamber
from labweave.drivers.pld.materials import TARGETS
from labweave.drivers.pld.plume import ChamberGeometry, ablated_depth, deliver_pulse
from labweave.drivers.pld.sim import SimulatedPldBackend
from labweave.schemas.thin_film import GrowthResult, TargetMaterial

BASE = {
    "target": "SrTiO3",
    "substrate": "SrTiO3",
    "laser_fluence": 2.0,
    "substrate_temperature": 1000.0,
    "oxygen_pressure": 1.0,
    "repetition_rate": 1.0,
    "pulses": 160,
}


def grow(seed: int = 0, **changes) -> dict:
    chamber = PldChamber(SimulatedPldBackend(seed=seed))
    return asyncio.run(chamber.perform("thin_film", "pld_growth", {**BASE, **changes}))


@pytest.mark.parametrize("temperature", [400.0, 800.0, 1000.0, 1300.0])
def test_growth_model_conserves_material_and_keeps_layers_ordered(temperature):
    kinetics = TARGETS[TargetMaterial.SRTIO3].surface_kinetics(temperature, miscut_deg=0.5)
    deposition = PulsedDeposition(kinetics, pulse_interval=0.5, arrival_time=1e-5)
    for _ in range(60):
        deposition.fire(0.05)
        theta = deposition.surface.theta
        assert theta[0] == 1.0 and np.all(np.diff(theta) <= 1e-12) and theta.min() >= 0.0
    assert deposition.surface.thickness() == pytest.approx(deposition.dose_landed, rel=1e-9)
    times, intensity = deposition.model_trace()
    assert np.all(np.diff(times) > 0) and intensity.min() >= 0.0 and intensity.max() <= 1.0


def test_result_matches_published_schema():
    result = grow()
    GrowthResult.model_validate(result)
    trace = result["rheed"]
    assert 100 < len(trace["time"]) <= 4001
    assert trace["time"][0] == 0.0 and trace["time"][-1] >= BASE["pulses"] / BASE["repetition_rate"]
    assert result["pulses_fired"] == BASE["pulses"]
    assert result["thickness_nm"] == pytest.approx(
        result["thickness_unit_cells"] * TARGETS[TargetMaterial.SRTIO3].lattice_nm
    )


def test_cooler_substrate_gives_fewer_oscillations_and_rougher_film():
    hot, warm, cold = (grow(substrate_temperature=t) for t in (1000.0, 850.0, 700.0))
    assert hot["growth_mode"] == "layer_by_layer"
    assert cold["growth_mode"] == "island_3d"
    assert hot["rheed_oscillations"] >= 6
    assert hot["rheed_oscillations"] >= warm["rheed_oscillations"] > cold["rheed_oscillations"]
    assert hot["rms_roughness_nm"] < warm["rms_roughness_nm"] < cold["rms_roughness_nm"]
    # Slower surface transport: the surface recovers more slowly after each pulse.
    assert hot["rheed_recovery_time"] < cold["rheed_recovery_time"]


def test_pulses_faster_than_recovery_roughen_the_film():
    slow, fast, faster = (grow(substrate_temperature=900.0, repetition_rate=f) for f in (1.0, 10.0, 20.0))
    assert slow["rheed_recovery_time"] < 1.0  # recovered before the next pulse at 1 Hz
    assert slow["growth_mode"] == "layer_by_layer"
    assert slow["rheed_oscillations"] > fast["rheed_oscillations"] >= faster["rheed_oscillations"]
    assert slow["rms_roughness_nm"] < fast["rms_roughness_nm"] < faster["rms_roughness_nm"]
    assert faster["island_density_per_um2"] > slow["island_density_per_um2"]


def test_growth_rate_rises_with_fluence_above_threshold():
    threshold = TARGETS[TargetMaterial.SRTIO3].ablation_threshold
    below = grow(laser_fluence=0.5, pulses=50)
    assert 0.5 < threshold
    assert below["growth_rate"] == 0.0 and below["thickness_nm"] == 0.0
    rates = [grow(laser_fluence=f, pulses=50)["growth_rate"] for f in (1.2, 2.0, 4.0)]
    assert 0 < rates[0] < rates[1] < rates[2]
    # Logarithmic ablation law: equal fluence ratios add equal depths.
    target = TARGETS[TargetMaterial.SRTIO3]
    assert ablated_depth(4.0, target) - ablated_depth(2.0, target) == pytest.approx(
        ablated_depth(2.0, target) - ablated_depth(1.0, target)
    )


def test_background_gas_slows_the_plume_and_lowers_the_rate():
    rates = [grow(oxygen_pressure=p, pulses=50)["growth_rate"] for p in (0.01, 5.0, 50.0)]
    assert rates[0] > rates[1] > rates[2] > 0
    target = TARGETS[TargetMaterial.SRTIO3]
    energies = [deliver_pulse(2.0, p, target, ChamberGeometry()).arrival_energy_ev for p in (1e-3, 1.0, 5.0, 50.0)]
    assert energies[0] > energies[1] > energies[2] >= energies[3]
    assert energies[0] > 10.0 and energies[3] < 0.1  # hyperthermal in vacuum, thermalised at 50 Pa


def test_step_flow_on_a_strongly_miscut_hot_substrate():
    result = grow(substrate_temperature=1250.0, laser_fluence=1.0, substrate_miscut_deg=1.0, pulses=100)
    assert result["growth_mode"] == "step_flow"
    assert result["step_flow_fraction"] > 0.9
    assert result["rheed_oscillations"] == 0


def test_same_seed_same_trace_other_seed_other_trace():
    first, again, other = grow(seed=7, pulses=60), grow(seed=7, pulses=60), grow(seed=8, pulses=60)
    assert first["rheed"]["intensity"] == again["rheed"]["intensity"]
    assert first["thickness_unit_cells"] == again["thickness_unit_cells"]
    assert first["rheed"]["intensity"] != other["rheed"]["intensity"]


def test_chamber_state_carries_over_between_growths():
    backend = SimulatedPldBackend(seed=3)
    chamber = PldChamber(backend)
    first = asyncio.run(chamber.perform("thin_film", "pld_growth", {**BASE, "pulses": 40}))
    assert backend.target_pulses[TargetMaterial.SRTIO3] == 40
    assert backend.heater_temperature == BASE["substrate_temperature"]
    backend.target_pulses[TargetMaterial.SRTIO3] = 200_000  # a worn target
    worn = asyncio.run(chamber.perform("thin_film", "pld_growth", {**BASE, "pulses": 40}))
    assert worn["growth_rate"] < 0.85 * first["growth_rate"]
    backend.polish_target(TargetMaterial.SRTIO3)
    assert backend.target_yield(TargetMaterial.SRTIO3) == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("substrate_temperature", 1400.0),
        ("substrate_temperature", 250.0),
        ("oxygen_pressure", 500.0),
        ("laser_fluence", 6.0),
        ("repetition_rate", 50.0),
        ("pulses", 20_000),
        ("target", "YBa2Cu3O7"),
    ],
)
def test_out_of_limit_recipe_refused_naming_the_field(field, value):
    chamber = PldChamber(SimulatedPldBackend())
    with pytest.raises(ParameterError) as err:
        asyncio.run(chamber.perform("thin_film", "pld_growth", {**BASE, field: value}))
    assert err.value.field == field


def test_unmounted_target_refused():
    chamber = PldChamber(SimulatedPldBackend(targets=(TargetMaterial.SRTIO3,)))
    with pytest.raises(ParameterError) as err:
        chamber.validate("thin_film", "pld_growth", {**BASE, "target": "LaAlO3"})
    assert err.value.field == "target"
    limits = chamber.limitations()[0]["limitations"]
    assert limits["target"] == ["SrTiO3"]
    assert limits["substrate_temperature"] == [{"min": 300.0, "max": 1273.15}]  # the heater's 1000 degC


def test_capability_schema_carries_units():
    capability = PldChamber(SimulatedPldBackend()).capabilities()[0]
    assert (capability["quantity"], capability["method"]) == ("thin_film", "pld_growth")
    props = capability["json_schema_specifications"]["properties"]
    assert props["oxygen_pressure"]["unit"] == "pascal"
    assert props["laser_fluence"]["unit"] == "joule / centimeter ** 2"


def test_safe_stop_interrupts_growth_between_pulses():
    backend = SimulatedPldBackend(seed=2)
    chamber = PldChamber(backend)

    async def scenario():
        task = asyncio.create_task(chamber.perform("thin_film", "pld_growth", {**BASE, "pulses": 5000}))
        for _ in range(3000):
            if backend.target_pulses[TargetMaterial.SRTIO3] >= 30:
                break
            await asyncio.sleep(0.01)
        await chamber.safe_stop()
        with pytest.raises(InstrumentStopped):
            await task

    asyncio.run(scenario())
    fired = backend.target_pulses[TargetMaterial.SRTIO3]
    assert 30 <= fired < 5000
    assert chamber.state is InstrumentState.STOPPED
    with pytest.raises(InstrumentStopped):
        asyncio.run(chamber.perform("thin_film", "pld_growth", {**BASE, "pulses": 5}))
    chamber.resume()
    result = asyncio.run(chamber.perform("thin_film", "pld_growth", {**BASE, "pulses": 5}))
    assert result["pulses_fired"] == 5
