"""A battery cycler run by a tomato daemon (``cycler.tomato``): labweave's formation-and-cycling schedule
as tomato tasks, and tomato's record of the channel (current and voltage over time) as per-cycle
measurements.

The cycler's component in the tomato pipeline (role ``cycler`` by default) runs the techniques
``constant_current`` (``current`` in A, a charge positive, ending at ``limit_voltage_max`` or
``limit_voltage_min``), ``constant_voltage`` (``voltage``, ending below ``limit_current_min``) as
aurora-unicycler names them (:mod:`.unicycler`); the names of the current and voltage variables in
tomato's data are options, as drivers name them differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from pydantic import Field

from labweave.drivers.base import BackendContext, BackendSettings, InstrumentFault, Progress
from labweave.drivers.cycler.backend import CycleMeasurement, CyclerBackend, CyclingProtocol, CyclingRun
from labweave.drivers.tomato.backend import TomatoBackend, TomatoSettings
from labweave.drivers.tomato.payload import TomatoTask

#: Longest constant-current step, as a multiple of its nominal time (capacity / current).
CC_TIME_FACTOR = 1.5
#: Longest constant-voltage hold, s.
CV_SECONDS = 4 * 3600.0


class TomatoCyclerSettings(TomatoSettings):
    """``--backend-option`` of ``cycler.tomato``: the tomato options, and

    Args:
        role: the cycler's component role in the pipeline.
        nominal_capacity_mah: the capacity of the cells when a request gives none (tomato knows no cells).
        current_variable, voltage_variable: the names of the current (A) and voltage (V) in tomato's data.
        sampling_seconds: the channel's sampling interval.
    """

    role: str = "cycler"
    nominal_capacity_mah: float = Field(default=2.0, gt=0, le=100_000)
    current_variable: str = "I"
    voltage_variable: str = "Ewe"
    sampling_seconds: float = Field(default=30.0, gt=0, le=3600)


def schedule_tasks(protocol: CyclingProtocol, role: str = "cycler", sampling_seconds: float = 30.0) -> list[TomatoTask]:
    """The schedule as tomato tasks: per cycle a CC charge to the upper voltage, a CV hold until the cut-off
    (left out when the cut-off is not below the charge current, as on the simulated cycler), a CC discharge
    to the lower voltage; formation cycles first."""
    tasks: list[TomatoTask] = []
    stages = [("formation", protocol.formation_cycles), ("cycling", protocol.number_cycles)]
    for stage, count in stages:
        formation = stage == "formation"
        charge = protocol.formation_charge_a if formation else protocol.charge_a
        discharge = protocol.formation_discharge_a if formation else protocol.discharge_a
        cutoff = protocol.formation_cv_cutoff_a if formation else protocol.cv_cutoff_a
        v_max = protocol.formation_v_max if formation else protocol.v_max
        v_min = protocol.formation_v_min if formation else protocol.v_min
        for _ in range(count):
            tasks.append(TomatoTask(component_role=role, technique_name="constant_current",
                                    max_duration=CC_TIME_FACTOR * 3600 * protocol.capacity_ah / charge,
                                    sampling_interval=sampling_seconds,
                                    task_params={"current": charge, "limit_voltage_max": v_max}))
            if cutoff < charge:
                tasks.append(TomatoTask(component_role=role, technique_name="constant_voltage",
                                        max_duration=CV_SECONDS, sampling_interval=sampling_seconds,
                                        task_params={"voltage": v_max, "limit_current_min": cutoff}))
            tasks.append(TomatoTask(component_role=role, technique_name="constant_current",
                                    max_duration=CC_TIME_FACTOR * 3600 * protocol.capacity_ah / discharge,
                                    sampling_interval=sampling_seconds,
                                    task_params={"current": -discharge, "limit_voltage_min": v_min}))
    return tasks


@dataclass
class _Segment:
    charge: bool
    capacity_ah: float
    mean_voltage: float
    max_current: float
    max_voltage: float


def _segments(time_s: np.ndarray, current: np.ndarray, voltage: np.ndarray) -> list[_Segment]:
    """Runs of charge (I > 0) and discharge (I < 0), each with the charge passed (trapezoids) and its
    charge-weighted mean voltage; rests (I = 0) separate nothing."""
    out: list[_Segment] = []
    sign = np.sign(current)
    for i in range(1, len(time_s)):
        dt = time_s[i] - time_s[i - 1]
        step_sign = sign[i] if sign[i] != 0 else sign[i - 1]
        if step_sign == 0 or dt <= 0:
            continue
        mean_i = 0.5 * (current[i] + current[i - 1])
        if np.sign(mean_i) != step_sign:
            mean_i = current[i]
        passed = abs(mean_i) * dt / 3600.0
        volts = 0.5 * (voltage[i] + voltage[i - 1])
        is_charge = step_sign > 0
        if not out or out[-1].charge != is_charge:
            out.append(_Segment(is_charge, 0.0, 0.0, 0.0, -np.inf))
        seg = out[-1]
        total = seg.capacity_ah + passed
        seg.mean_voltage = (seg.mean_voltage * seg.capacity_ah + volts * passed) / total if total > 0 else volts
        seg.capacity_ah = total
        seg.max_current = max(seg.max_current, abs(float(current[i])))
        seg.max_voltage = max(seg.max_voltage, float(voltage[i]), float(voltage[i - 1]))
    return out


def cycles_from_data(time_s: Any, current_a: Any, voltage_v: Any, capacity_ah: float,
                     v_max: float | None = None) -> list[CycleMeasurement]:
    """Per-cycle measurements from a channel's record: a cycle is a charge followed by a discharge.

    Args:
        time_s, current_a, voltage_v: the record (a charge current positive).
        capacity_ah: the capacity C-rates refer to.
        v_max: the upper voltage, to tell whether a charge reached it (within 10 mV).
    """
    segments = _segments(np.asarray(time_s, float), np.asarray(current_a, float), np.asarray(voltage_v, float))
    cycles = []
    for charge, discharge in zip(segments, segments[1:]):
        if not charge.charge or discharge.charge:
            continue
        cycles.append(CycleMeasurement(
            charge_capacity_mah=charge.capacity_ah * 1e3, discharge_capacity_mah=discharge.capacity_ah * 1e3,
            mean_charge_voltage=charge.mean_voltage, mean_discharge_voltage=discharge.mean_voltage,
            charge_c_rate=charge.max_current / capacity_ah,
            reached_v_max=v_max is None or charge.max_voltage >= v_max - 0.01))
    return cycles


class TomatoCyclerBackend(CyclerBackend):
    """A cycler channel of a tomato pipeline (``labweave tenant run cycler --backend tomato``)."""

    settings_model = TomatoCyclerSettings

    def __init__(self, settings: TomatoCyclerSettings, context: BackendContext):
        self.settings = settings
        self.tomato = TomatoBackend(settings, settings.output_dir or context.state_dir / "tomato")

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        assert isinstance(settings, TomatoCyclerSettings)
        return cls(settings, context)

    async def setup(self) -> None:
        await self.tomato.setup()

    async def stop(self) -> None:
        await self.tomato.stop()

    async def nominal_capacity(self, cell_uuid: str) -> float:
        return self.settings.nominal_capacity_mah / 1000.0

    async def run_test(self, cell_uuid: str, protocol: CyclingProtocol, progress: Progress) -> CyclingRun:
        tasks = schedule_tasks(protocol, self.settings.role, self.settings.sampling_seconds)
        outcome = await self.tomato.run_job(tasks, cell_uuid, f"labweave-cycling-{cell_uuid}", progress)
        ds = outcome.data.groups.get(self.settings.role)
        names = (self.settings.current_variable, self.settings.voltage_variable)
        if ds is None or any(n not in ds for n in names):
            found = sorted(map(str, ds.data_vars)) if ds is not None else sorted(outcome.data.groups)
            raise InstrumentFault(f"tomato job {outcome.jobid}: no {' and '.join(names)} of the "
                                  f"{self.settings.role} in its data (found {', '.join(found)})",
                                  retryable=False)
        measured = cycles_from_data(ds["uts"].values, ds[names[0]].values, ds[names[1]].values,
                                    protocol.capacity_ah, protocol.v_max)
        formation = measured[:protocol.formation_cycles]
        cycles = measured[protocol.formation_cycles:]
        run = CyclingRun(cell_uuid, channel=1, formation=formation, cycles=cycles)
        expected = protocol.formation_cycles + protocol.number_cycles
        if len(measured) < expected:
            run.abort_reason = f"tomato recorded {len(measured)} of {expected} cycles"
        return run
