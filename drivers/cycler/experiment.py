"""The cycling schedule as a PyBaMM experiment, and what the channel measures from it.

An internal short is a resistance in parallel with the cell: while the channel
charges at I, the cell itself receives I - V/R_short, and while it
discharges at I the cell delivers I + V/R_short. With V near its nominal
3.7 V over most of a cycle, the leak is taken as the constant current
3.7 V / R_short within a cycle; the short grows (R_short shrinks by the
record's decay per cycle) from cycle to cycle. The channel measures the
external charge, so a shorted cell shows coulombic efficiencies well below
one; once the leak outruns the charge current the cell can no longer reach
the upper voltage and the channel ends the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pybamm

from labweave.drivers.cells import InternalShort
from labweave.drivers.cycler.backend import CycleMeasurement, CyclingProtocol, DischargeCurve, curve_cycles

#: Voltage at which a short's leakage current is evaluated, V.
SHORT_VOLTAGE = 3.7
#: Step time limits of the channel, as multiples of the nominal step time.
CC_TIME_LIMIT = 2.0
#: Longest constant-voltage hold, s (formation, cycling).
CV_TIME_LIMIT = {"formation": 4 * 3600.0, "cycling": 2 * 3600.0}
#: Sampling period of the channel's log, s; discharges of the cycles whose
#: curves are compared are logged densely.
LOG_PERIOD = {"formation": 900.0, "cycling": 300.0, "curve": 30.0}
#: The variables a channel logs (all the measurement needs).
LOGGED_VARIABLES = ("Time [s]", "Current [A]", "Voltage [V]", "Discharge capacity [A.h]")
#: Tolerance on reaching a voltage limit, V.
VOLTAGE_TOLERANCE = 0.01


@dataclass
class PlannedCycle:
    """One cycle of the schedule as the channel will run it.

    Attributes:
        stage: ``formation`` or ``cycling``.
        number: 1-based within the stage.
        steps: PyBaMM steps (cell currents, leak included).
        leak_a: the short's leakage current this cycle.
        charge_a: the channel's charge current (external).
        v_max, v_min: voltage window.
        record_curve: whether the discharge is logged densely.
    """

    stage: str
    number: int
    steps: list = field(default_factory=list)
    leak_a: float = 0.0
    charge_a: float = 0.0
    v_max: float = 4.2
    v_min: float = 2.5
    record_curve: bool = False


def _amps(value: float) -> str:
    return f"{value:.9f}A"


def _cycle_steps(
    stage: str,
    charge_a: float,
    discharge_a: float,
    cv_cutoff_a: float,
    v_max: float,
    v_min: float,
    capacity_ah: float,
    leak_a: float,
    record_curve: bool,
) -> list:
    """Charge (CC), hold (CV, unless its cut-off is not below the charge current), discharge."""
    period = LOG_PERIOD[stage]
    cell_charge = charge_a - leak_a
    steps = [
        pybamm.step.current(
            -cell_charge,
            termination=f"{v_max:.4f}V",
            duration=max(CC_TIME_LIMIT * capacity_ah / charge_a * 3600.0, 600.0),
            period=period,
            direction="charge",
        )
    ]
    if cv_cutoff_a < charge_a:
        cell_cutoff = cv_cutoff_a - leak_a
        hold = {"duration": CV_TIME_LIMIT[stage], "period": period, "direction": "charge"}
        if cell_cutoff > 0.02 * cv_cutoff_a:
            hold["termination"] = _amps(cell_cutoff)
        steps.append(pybamm.step.voltage(v_max, **hold))
    steps.append(
        pybamm.step.current(
            discharge_a + leak_a,
            termination=f"{v_min:.4f}V",
            duration=max(CC_TIME_LIMIT * capacity_ah / discharge_a * 3600.0, 600.0),
            period=LOG_PERIOD["curve"] if record_curve else period,
            direction="discharge",
        )
    )
    return steps


def plan_cycles(protocol: CyclingProtocol, short: InternalShort | None) -> tuple[list[PlannedCycle], str | None]:
    """The schedule cycle by cycle, with the short's leak, until the leak wins.

    Args:
        protocol: currents and windows.
        short: the cell's internal short, if it has one.

    Returns:
        The planned cycles, and the reason the channel will stop early (None
        if every cycle can be run).
    """
    plan: list[PlannedCycle] = []
    early, late = curve_cycles(protocol.number_cycles)
    stages = [("formation", n) for n in range(1, protocol.formation_cycles + 1)]
    stages += [("cycling", n) for n in range(1, protocol.number_cycles + 1)]
    for index, (stage, number) in enumerate(stages):
        leak = 0.0
        if short is not None:
            resistance = short.resistance_ohm * (1.0 - short.decay_per_cycle) ** index
            leak = SHORT_VOLTAGE / resistance
        if stage == "formation":
            charge, discharge, cutoff = (
                protocol.formation_charge_a,
                protocol.formation_discharge_a,
                protocol.formation_cv_cutoff_a,
            )
            v_max, v_min = protocol.formation_v_max, protocol.formation_v_min
        else:
            charge, discharge, cutoff = protocol.charge_a, protocol.discharge_a, protocol.cv_cutoff_a
            v_max, v_min = protocol.v_max, protocol.v_min
        if charge - leak < 0.05 * charge:
            reason = (
                f"{stage} cycle {number}: internal short leaks {leak * 1e3:.3f} mA, the {charge * 1e3:.3f} mA "
                f"charge cannot bring the cell to {v_max} V"
            )
            return plan, reason
        record = stage == "cycling" and number in (1, early, late)
        plan.append(
            PlannedCycle(
                stage=stage,
                number=number,
                steps=_cycle_steps(stage, charge, discharge, cutoff, v_max, v_min, protocol.capacity_ah, leak, record),
                leak_a=leak,
                charge_a=charge,
                v_max=v_max,
                v_min=v_min,
                record_curve=record,
            )
        )
    return plan, None


def build_experiment(plan: list[PlannedCycle]) -> pybamm.Experiment:
    """A PyBaMM experiment with one operating-condition tuple per planned cycle."""
    return pybamm.Experiment([tuple(cycle.steps) for cycle in plan])


def _step_data(step_solution) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(step_solution["Time [s]"].entries, dtype=float)
    current = np.asarray(step_solution["Current [A]"].entries, dtype=float)
    voltage = np.asarray(step_solution["Voltage [V]"].entries, dtype=float)
    passed = np.asarray(step_solution["Discharge capacity [A.h]"].entries, dtype=float)
    return t, current, voltage, passed


def _mean_voltage(voltage: np.ndarray, passed: np.ndarray) -> float:
    q = np.abs(passed - passed[0])
    if q[-1] <= 0 or len(q) < 2:
        return float(voltage.mean())
    return float(np.trapezoid(voltage, q) / q[-1])


def measure_cycle(cycle_solution, planned: PlannedCycle, capacity_ah: float) -> tuple[CycleMeasurement, bool]:
    """What the channel measured during one simulated cycle.

    Steps are told apart by the sign of their current (the cell's current,
    positive on discharge); the short's leak is added back to get the
    external charge.

    Returns:
        The measurement (true values, before instrument noise), and whether
        the cycle finished its discharge at the lower voltage.
    """
    charge_ah = discharge_ah = 0.0
    charge_s = discharge_s = 0.0
    charge_v: list[np.ndarray] = []
    charge_q: list[np.ndarray] = []
    top_voltage = -np.inf
    curve = None
    discharged = False
    mean_discharge_v = float("nan")
    for step in cycle_solution.steps:
        if step is None or isinstance(step, pybamm.EmptySolution) or len(step.t) < 2:
            continue
        t, current, voltage, passed = _step_data(step)
        dq = abs(passed[-1] - passed[0])
        dt = t[-1] - t[0]
        if np.mean(current) < 0:
            charge_ah += dq
            charge_s += dt
            charge_v.append(voltage)
            charge_q.append(np.abs(passed - passed[0]) + (charge_ah - dq))
            top_voltage = max(top_voltage, float(voltage.max()))
        else:
            discharge_ah += dq
            discharge_s += dt
            mean_discharge_v = _mean_voltage(voltage, passed)
            discharged = bool(voltage[-1] <= planned.v_min + VOLTAGE_TOLERANCE)
            if planned.record_curve:
                delivered = np.abs(passed - passed[0]) - planned.leak_a * (t - t[0]) / 3600.0
                curve = DischargeCurve(voltage=voltage.tolist(), capacity_mah=(delivered * 1000.0).tolist())
    mean_charge_v = float("nan")
    if charge_v:
        v = np.concatenate(charge_v)
        q = np.concatenate(charge_q)
        mean_charge_v = float(np.trapezoid(v, q) / q[-1]) if q[-1] > 0 else float(v.mean())
    charge_ext = charge_ah + planned.leak_a * charge_s / 3600.0
    discharge_ext = max(discharge_ah - planned.leak_a * discharge_s / 3600.0, 0.0)
    measurement = CycleMeasurement(
        charge_capacity_mah=float(charge_ext * 1000.0),
        discharge_capacity_mah=float(discharge_ext * 1000.0),
        mean_charge_voltage=mean_charge_v,
        mean_discharge_voltage=mean_discharge_v,
        charge_c_rate=float(planned.charge_a / capacity_ah),
        reached_v_max=bool(top_voltage >= planned.v_max - VOLTAGE_TOLERANCE),
        curve=curve,
    )
    return measurement, discharged
