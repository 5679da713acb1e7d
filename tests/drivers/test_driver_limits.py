"""The driver boundary: parameters outside an instrument's own limits never reach its backend.

Each simulated instrument is called directly (no server) with values outside
the physical limits its backend declares (narrower than the wire's bounds,
and written in other units than the parameters), and with values outside the
parameter model's bounds: the call is refused naming the field and the
limit, and the backend is untouched.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from labweave.drivers.atomistic.frontend import ChgnetSimulator, EmtSimulator
from labweave.drivers.base import Instrument, ParameterError, PhysicalLimit, field_unit
from labweave.drivers.cells import REFERENCE_ELECTROLYTE
from labweave.drivers.coin_cell_robot.frontend import CoinCellRobot
from labweave.drivers.coin_cell_robot.sim import SimulatedRobotBackend
from labweave.drivers.cycler.frontend import Cycler
from labweave.drivers.cycler.sim import SimulatedCyclerBackend
from labweave.drivers.pld.frontend import PldChamber
from labweave.drivers.pld.sim import SimulatedPldBackend
from labweave.schemas.battery import AssemblyInput
from labweave.schemas.thin_film import GrowthRecipe, TargetMaterial

RECIPE = {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0, "substrate_temperature": 1000.0,
          "oxygen_pressure": 1.0, "repetition_rate": 2.0, "pulses": 10}


def refused(instrument: Instrument, quantity: str, method: str, parameters: dict) -> ParameterError:
    with pytest.raises(ParameterError) as err:
        asyncio.run(instrument.perform(quantity, method, parameters))
    return err.value


@pytest.mark.parametrize(("field", "value", "limit"), [
    ("substrate_temperature", 1280.0, "the substrate heater, 1000 degC (1273.15 kelvin)"),
    ("laser_fluence", 4.8, "the excimer laser on the target, 45 mJ / mm ** 2 (4.5 joule / centimeter ** 2)"),
    ("oxygen_pressure", 70.0, "the oxygen inlet, 0.6 mbar (60.0 pascal)"),
])
def test_pld_chamber_refuses_a_recipe_beyond_its_hardware(field, value, limit):
    backend = SimulatedPldBackend()
    chamber = PldChamber(backend)
    assert GrowthRecipe.model_validate(RECIPE | {field: value})  # within the wire's bounds: only the chamber refuses
    error = refused(chamber, "thin_film", "pld_growth", RECIPE | {field: value})
    assert error.field == field and limit in str(error), str(error)
    # nothing reached the chamber: the heater was not touched, no pulse fired, no target selected
    assert backend.heater_temperature == 300.0 and backend.selected_target is None
    assert sum(backend.target_pulses.values()) == 0
    assert chamber.state.value == "idle"
    # a recipe at the limit itself runs
    result = asyncio.run(chamber.perform("thin_film", "pld_growth", RECIPE | {"substrate_temperature": 1273.15}))
    assert result["pulses_fired"] == 10


def test_pld_chamber_refuses_beyond_the_wire_bounds_and_unmounted_targets():
    backend = SimulatedPldBackend(targets=(TargetMaterial.SRTIO3,))
    chamber = PldChamber(backend)
    assert refused(chamber, "thin_film", "pld_growth", RECIPE | {"pulses": 20_000}).field == "pulses"
    assert refused(chamber, "thin_film", "pld_growth", RECIPE | {"target": "LaAlO3"}).field == "target"
    assert sum(backend.target_pulses.values()) == 0


def test_robot_refuses_more_electrolyte_than_its_vial_or_pipette_holds(tmp_path, finales2):
    backend = SimulatedRobotBackend(tmp_path / "shelf", fault_rate=0.0)
    robot = CoinCellRobot(backend)
    electrolyte = [c.model_dump(mode="json") for c in REFERENCE_ELECTROLYTE]
    error = refused(robot, "electrolyte", "flow", {"electrolyte": {"formulation": electrolyte}, "volume": 16.0})
    assert error.field == "volume" and "the mixing vial, 15 mL (15.0 milliliter)" in str(error)
    assembly = copy.deepcopy(finales2.example_parameters("cell_assembly", "autobass_assembly"))
    assembly["batch_volume"] = 2
    assembly["cell"]["electrolyte_volume"] = 75.0
    AssemblyInput.model_validate(assembly)  # the wire admits 80 uL
    error = refused(robot, "cell_assembly", "autobass_assembly", assembly)
    assert error.field == "cell.electrolyte_volume" and "the dispensing pipette, 0.07 mL (70.0 microliter)" in str(error)
    assert (backend.vials_made, backend.cells_made) == (0, 0)


def test_cycler_refuses_a_current_beyond_its_channels():
    backend = SimulatedCyclerBackend(None)
    cycler = Cycler(backend)
    params = {"cycling_protocol": "BIG-MAP-Standard", "number_cycles": 5,
              "cell_info": {"uuid": "CELL-1", "cell_name": "CR2032"},
              "location": {"address": "labweave simulated lab", "detail_1": "cycler"}, "reservation_number": "t"}
    error = refused(cycler, "capacity", "cycling", params | {"I_max": 3.0})
    assert error.field == "I_max" and "a cycler channel, 2000 mA (2.0 ampere)" in str(error)
    assert refused(cycler, "capacity", "cycling", params | {"number_cycles": 5000}).field == "number_cycles"
    assert backend.tests_run == 0 and backend._free_channels == list(range(1, 9))


def test_atomistic_codes_refuse_a_convergence_below_their_forces_precision():
    chgnet = ChgnetSimulator()  # the check needs no model: nothing is loaded, nothing computed
    params = {"alloy": {"composition": {"Cu": 1.0}, "supercell": 1}, "fmax": 0.005}
    error = refused(chgnet, "bulk_properties", "chgnet", params)
    assert error.field == "fmax" and "10 meV / angstrom (0.01 electron_volt / angstrom)" in str(error)
    assert chgnet.limitations()[0]["limitations"]["fmax"] == [{"min": 0.01, "max": 0.5}]
    emt = EmtSimulator()
    assert refused(emt, "bulk_properties", "emt", params | {"fmax": 0.0005}).field == "fmax"
    assert refused(emt, "bulk_properties", "emt", params | {"max_steps": 0}).field == "max_steps"
    assert emt.backend._references == {}  # no element was ever computed


def test_physical_limits_are_published_in_the_parameters_units():
    """What the server is told is what the driver checks: the same limits, converted by pint."""
    chamber = PldChamber(SimulatedPldBackend())
    limits = chamber.limitations()[0]["limitations"]
    assert limits["laser_fluence"] == [{"min": 0.5, "max": 4.5}]
    assert limits["oxygen_pressure"] == [{"min": 1e-05, "max": 60.0}]
    assert field_unit(GrowthRecipe, "substrate_temperature") == "kelvin"
    assert field_unit(AssemblyInput, "cell.electrolyte_volume") == "microliter"
    with pytest.raises(ValueError, match="no unit"):
        field_unit(GrowthRecipe, "target")
    assert PhysicalLimit("t", "a heater", low="20 degC", high="1 kK").bounds("kelvin") == (293.15, 1000.0)
