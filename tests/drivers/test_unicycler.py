"""Universal cycling protocols (aurora-unicycler): the same protocol run on the simulated cycler and
turned into a tomato payload that tomato's schema accepts; steps an instrument cannot run refused by name."""

from __future__ import annotations

import asyncio

import pytest
from aurora_unicycler import CyclingProtocol as UnicyclerProtocol
from aurora_unicycler._core import (ConstantCurrent, ConstantVoltage, ImpedanceSpectroscopy, Loop, OpenCircuitVoltage,
                                    RecordParams, SampleParams, SafetyParams, Tag)

from labweave.drivers.base import ParameterError
from labweave.drivers.cycler.experiment import build_experiment, plan_cycles
from labweave.drivers.cycler.frontend import Cycler, protocol_from
from labweave.drivers.cycler.sim import SimulatedCyclerBackend
from labweave.drivers.cycler.unicycler import check_tasks, tomato_tasks, unrolled
from labweave.drivers.tomato.limits import AttrLimit
from labweave.drivers.tomato.payload import build_payload, check_payload

CAPACITY_MAH = 2.0


def protocol(formation: int = 2, cycles: int = 3, extra: list | None = None, charge_rate: float = 1.0) -> dict:
    """Formation at C/10 with a CV hold to C/20, then 1C/1C cycles with a hold to C/20, in unicycler's format."""
    return UnicyclerProtocol(
        sample=SampleParams(name="cell-7", capacity_mAh=CAPACITY_MAH),
        record=RecordParams(time_s=60),
        safety=SafetyParams(max_voltage_V=4.3, min_voltage_V=2.9),
        method=[
            *(extra or []),
            Tag(tag="formation"),
            ConstantCurrent(rate_C=0.1, until_voltage_V=4.2),
            ConstantVoltage(voltage_V=4.2, until_rate_C=0.05),
            ConstantCurrent(rate_C=-0.1, until_voltage_V=3.0),
            Loop(loop_to="formation", cycle_count=formation),
            Tag(tag="cycling"),
            ConstantCurrent(rate_C=charge_rate, until_voltage_V=4.1),
            ConstantVoltage(voltage_V=4.1, until_rate_C=0.05),
            ConstantCurrent(rate_C=-1.0, until_voltage_V=3.0),
            Loop(loop_to="cycling", cycle_count=cycles),
        ],
    ).to_dict()


def request(unicycler: dict, cycles: int | None = 3) -> dict:
    params = {"cycling_protocol": "BIG-MAP-Standard", "cell_info": {"uuid": "UNI-1", "cell_name": "CR2032"},
              "location": {"address": "labweave simulated lab", "detail_1": "cycler"},
              "reservation_number": "test", "protocol": unicycler}
    if cycles is not None:
        params["number_cycles"] = cycles
    return params


def test_a_unicycler_protocol_runs_on_the_simulated_cycler_and_becomes_a_tomato_payload():
    unicycler = protocol()
    cycler = Cycler(SimulatedCyclerBackend(None, seed=2))
    params = cycler.validate("capacity", "cycling", request(unicycler))
    capacity = CAPACITY_MAH / 1000
    schedule = protocol_from(params, params.capacity)
    assert schedule.formation_cycles == 2 and schedule.number_cycles == 3
    assert schedule.formation_charge_a == pytest.approx(0.1 * capacity)
    assert schedule.formation_cv_cutoff_a == pytest.approx(0.05 * capacity)
    assert schedule.discharge_a == pytest.approx(1.0 * capacity)
    assert (schedule.formation_v_max, schedule.formation_v_min, schedule.v_max, schedule.v_min) == (4.2, 3.0, 4.1, 3.0)
    # the simulated cycler's PyBaMM experiment: charge, hold, discharge per cycle, formation then cycling
    plan, stop = plan_cycles(schedule, None)
    assert stop is None and [c.stage for c in plan] == ["formation"] * 2 + ["cycling"] * 3
    experiment = build_experiment(plan)
    assert len(experiment.cycles) == 5
    result = asyncio.run(cycler.perform("capacity", "cycling", request(unicycler)))
    assert len(result["capacity_list"]) == 3
    assert 0.5 * CAPACITY_MAH < result["capacity_list"][0] <= 1.2 * CAPACITY_MAH  # mAh, 1C from a 4.1 V hold

    # the same protocol as tomato tasks, loops unrolled, accepted by tomato's own payload schema
    tasks = tomato_tasks(cycler_protocol := UnicyclerProtocol.model_validate(unicycler), None)
    assert [t["technique_name"] for t in tasks] == ["constant_current", "constant_voltage", "constant_current"] * 5
    first, hold, discharge = tasks[:3]
    assert first["task_params"] == {"current": pytest.approx(0.1 * capacity), "limit_voltage_max": 4.2}
    assert hold["task_params"] == {"voltage": 4.2, "limit_current_min": pytest.approx(0.05 * capacity)}
    assert discharge["task_params"] == {"current": pytest.approx(-0.1 * capacity), "limit_voltage_min": 3.0}
    assert first["max_duration"] == pytest.approx(15 * 3600) and first["sampling_interval"] == 60
    payload = build_payload(tasks, "cell-7", __import__("pathlib").Path("out"), "cell-7")
    parsed = check_payload(payload)
    assert parsed.version == "2.2" and len(parsed.method) == 15 and parsed.method[6].task_params["current"] > 0
    assert cycler_protocol.sample.name == "cell-7"


def test_nested_loops_unroll_as_unicycler_counts_them():
    inner = UnicyclerProtocol(
        sample=SampleParams(name="n", capacity_mAh=1.0), record=RecordParams(time_s=10),
        method=[OpenCircuitVoltage(until_time_s=30), Tag(tag="outer"),
                ConstantCurrent(rate_C=0.5, until_voltage_V=4.2), Tag(tag="inner"),
                ConstantCurrent(rate_C=-0.5, until_voltage_V=3.0), Loop(loop_to="inner", cycle_count=2),
                Loop(loop_to="outer", cycle_count=3)])
    kinds = [("+" if t["task_params"].get("current", 0) > 0 else "-") if t["technique_name"] == "constant_current"
             else "ocv" for t in tomato_tasks(inner, None)]
    assert kinds == ["ocv"] + ["+", "-", "-"] * 3


@pytest.mark.parametrize("change, where, words", [
    ({"extra": [OpenCircuitVoltage(until_time_s=600)]}, "protocol.method[0]", "(open_circuit_voltage)"),
    ({"extra": [ImpedanceSpectroscopy(start_frequency_Hz=1e5, end_frequency_Hz=0.1, amplitude_V=0.01)]},
     "protocol.method[0]", "(impedance_spectroscopy)"),
    ({"charge_rate": 4.0}, "protocol.method[6]", "(constant_current) c_rate_charge: Input should be less than or "
                                                  "equal to 3"),
])
def test_a_protocol_the_simulated_cycler_cannot_run_is_refused_with_the_step_named(change, where, words):
    cycler = Cycler(SimulatedCyclerBackend(None))
    with pytest.raises(ParameterError) as err:
        cycler.validate("capacity", "cycling", request(protocol(**change)))
    assert err.value.field == where and words in str(err.value)


def test_a_request_whose_cycle_count_disagrees_with_its_protocol_is_refused():
    with pytest.raises(ParameterError, match="number_cycles: the protocol runs 3 cycles after formation, the "
                                             "request asks for 5"):
        Cycler(SimulatedCyclerBackend(None)).validate("capacity", "cycling", request(protocol(), cycles=5))


def test_a_bad_protocol_is_refused_by_field():
    bad = protocol()
    bad["method"][1]["rate_C"] = "fast"
    with pytest.raises(ParameterError) as err:
        Cycler(SimulatedCyclerBackend(None)).validate("capacity", "cycling", request(bad))
    assert err.value.field.startswith("protocol.method.1")


def test_a_protocol_the_tomato_device_cannot_run_is_refused_with_the_step_named():
    unicycler = UnicyclerProtocol.model_validate(protocol())
    tasks = unrolled(unicycler, None)
    limits = {"current": AttrLimit("current", "number", "A", -0.1, 0.1), "limit_voltage_max": AttrLimit(
        "limit_voltage_max", "number", "V", 0, 5), "limit_voltage_min": AttrLimit("limit_voltage_min", "number",
                                                                                  "V", 0, 5),
        "voltage": AttrLimit("voltage", "number", "V", 0, 4.15),
        "limit_current_min": AttrLimit("limit_current_min", "number", "A", 0, 0.1)}
    with pytest.raises(ParameterError) as err:
        check_tasks(tasks, {"count", "random"}, limits)
    assert err.value.field == "protocol.method[1]" and "offers count, random" in str(err.value)
    techniques = {"constant_current", "constant_voltage", "open_circuit_voltage"}
    with pytest.raises(ParameterError) as err:  # the 4.2 V hold of formation is above this channel's 4.15 V
        check_tasks(tasks, techniques, limits)
    assert err.value.field == "protocol.method[2]" and "voltage: 4.2 V is above the device's maximum 4.15 V" \
        in str(err.value)
    check_tasks(unrolled(UnicyclerProtocol.model_validate(protocol()), None), techniques,
                limits | {"voltage": AttrLimit("voltage", "number", "V", 0, 4.3)})
    with pytest.raises(ParameterError, match=r"protocol.method\[0\]: \(impedance_spectroscopy\) no tomato task"):
        tomato_tasks(UnicyclerProtocol.model_validate(protocol(extra=[ImpedanceSpectroscopy(
            start_frequency_Hz=1e5, end_frequency_Hz=0.1, amplitude_V=0.01)])), None)
