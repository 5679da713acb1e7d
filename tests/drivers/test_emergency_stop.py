"""An emergency stop brings each simulated instrument to its declared safe state, and ends its work.

Each backend declares its safe state in the lab's words (``Backend.safe_state``)
and models it: the chamber's laser off, its heater ramping down and its gas
valves closed; the cycler's channels at zero current and open circuit; the
robot halted with its gripper and press released; a calculation cancelled.
"""

from __future__ import annotations

import asyncio

import pytest

from labweave.drivers.atomistic.frontend import EmtSimulator
from labweave.drivers.base import Instrument, InstrumentState, InstrumentStopped
from labweave.drivers.cells import REFERENCE_ELECTROLYTE
from labweave.drivers.coin_cell_robot.frontend import CoinCellRobot
from labweave.drivers.coin_cell_robot.sim import SimulatedRobotBackend
from labweave.drivers.cycler.frontend import Cycler
from labweave.drivers.cycler.sim import SimulatedCyclerBackend
from labweave.drivers.pld.frontend import PldChamber
from labweave.drivers.pld.sim import SimulatedPldBackend

RECIPE = {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0, "substrate_temperature": 1000.0,
          "oxygen_pressure": 1.0, "repetition_rate": 2.0, "pulses": 5000}


async def stop_while(instrument: Instrument, quantity: str, method: str, params: dict, running) -> None:
    """Start an operation, wait until ``running()`` holds, emergency-stop; the operation must end stopped."""
    task = asyncio.create_task(instrument.perform(quantity, method, params))
    for _ in range(6000):
        if running() or task.done():
            break
        await asyncio.sleep(0.01)
    assert not task.done(), "the operation ended before it could be stopped"
    await instrument.safe_stop()
    with pytest.raises(InstrumentStopped):
        await asyncio.wait_for(task, 60)
    assert instrument.state is InstrumentState.STOPPED


def test_pld_chamber_laser_off_heater_ramping_down_gas_closed():
    backend = SimulatedPldBackend(seed=1)
    chamber = PldChamber(backend)
    assert "laser off" in backend.safe_state and "heater" in backend.safe_state

    async def scenario():
        await stop_while(chamber, "thin_film", "pld_growth", RECIPE, lambda: sum(backend.target_pulses.values()) >= 30)

    asyncio.run(scenario())
    fired = sum(backend.target_pulses.values())
    assert 30 <= fired < RECIPE["pulses"]
    assert backend.in_safe_state()
    assert not backend.laser_on and not backend.gas_valves_open and backend.heater_setpoint == 300.0
    # a heater does not go cold at once: it ramps down, and the closed chamber pumps down
    assert backend.heater_temperature == 1000.0 and backend.chamber_pressure == 1.0
    backend.elapse(60.0)
    assert backend.heater_temperature == pytest.approx(970.0)
    assert backend.chamber_pressure < 0.2
    backend.elapse(3600.0)
    assert backend.heater_temperature == 300.0 and backend.chamber_pressure < 1e-4
    assert sum(backend.target_pulses.values()) == fired  # no pulse fired while stopped
    with pytest.raises(InstrumentStopped):  # stopped until reset
        asyncio.run(chamber.perform("thin_film", "pld_growth", RECIPE | {"pulses": 5}))
    chamber.resume()
    assert asyncio.run(chamber.perform("thin_film", "pld_growth", RECIPE | {"pulses": 5}))["pulses_fired"] == 5
    assert backend.heater_setpoint == 1000.0 and not backend.in_safe_state()


def test_cycler_channel_to_zero_current_open_circuit_and_released():
    backend = SimulatedCyclerBackend(None, channels=2)
    cycler = Cycler(backend)
    params = {"cycling_protocol": "BIG-MAP-Standard", "number_cycles": 400,
              "cell_info": {"uuid": "ESTOP-CELL", "cell_name": "CR2032"},
              "location": {"address": "labweave simulated lab", "detail_1": "cycler"}, "reservation_number": "t"}
    seen: dict[str, object] = {}

    async def scenario():
        def on_channel():
            state = backend.channels[1]
            if state.relay_closed:
                seen.update(current=state.current_a, cell=state.cell_uuid)
            return state.relay_closed

        task = asyncio.create_task(cycler.perform("capacity", "cycling", params))
        for _ in range(6000):
            if on_channel() or task.done():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # well into the test
        await cycler.safe_stop()
        # at once: every channel at zero current, open circuit
        assert all(s.current_a == 0.0 and not s.relay_closed for s in backend.channels.values())
        with pytest.raises(InstrumentStopped):
            await asyncio.wait_for(task, 120)

    asyncio.run(scenario())
    assert seen["cell"] == "ESTOP-CELL" and seen["current"] > 0  # the channel was driving the cell
    assert backend.in_safe_state()
    assert backend.channels[1].cell_uuid is None and backend._free_channels == [1, 2]  # released
    assert "open circuit" in backend.safe_state


def test_robot_halted_gripper_and_press_released(tmp_path, finales2):
    import copy

    backend = SimulatedRobotBackend(tmp_path / "shelf", fault_rate=0.0, time_scale=0.01)  # 1.8 s per cell
    robot = CoinCellRobot(backend)
    params = copy.deepcopy(finales2.example_parameters("cell_assembly", "autobass_assembly"))
    params["batch_volume"] = 8
    params["cell"]["battery_chemistry"]["electrolyte"] = [c.model_dump(mode="json") for c in REFERENCE_ELECTROLYTE]

    async def scenario():
        await stop_while(robot, "cell_assembly", "autobass_assembly", params, lambda: backend.gripper_closed)

    asyncio.run(scenario())
    assert backend.in_safe_state()
    assert (backend.arm_pose, backend.gripper_closed, backend.crimper_mpa, backend.motion_enabled) == \
        ("safe", False, 0.0, False)
    # the cell in the press when the stop came is not on the shelf: only the finished ones are
    assert len(backend.shelf.uuids()) == backend.cells_made - 1
    robot.resume()
    asyncio.run(backend.setup())
    assert backend.motion_enabled


def test_atomistic_calculation_cancelled():
    emt = EmtSimulator()
    backend = emt.backend
    params = {"alloy": {"composition": {"Cu": 0.5, "Au": 0.5}, "supercell": 3, "seed": 5}, "fmax": 0.001}

    async def scenario():
        await stop_while(emt, "bulk_properties", "emt", params, lambda: backend.calculations > 0)
        for _ in range(3000):  # the worker thread ends at its next optimizer step
            if backend.calculations == 0:
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert backend.in_safe_state() and "cancelled" in backend.safe_state
