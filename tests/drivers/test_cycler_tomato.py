"""The cycler run by tomato (``cycler.tomato``): the schedule as tomato tasks that tomato's schema accepts,
and per-cycle capacities read from a data file in tomato's format (a NetCDF data tree, one group per
component role) that the test writes from a known cycling record."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from labweave.drivers.cycler.backend import CyclingProtocol
from labweave.drivers.cycler.frontend import Cycler
from labweave.drivers.cycler.tomato import TomatoCyclerBackend, cycles_from_data, schedule_tasks
from labweave.drivers.tomato.data import read_job_data
from labweave.drivers.tomato.payload import build_payload, check_payload
from labweave.services.tenant import catalog

CAPACITY_AH = 0.002


def schedule(formation: int = 2, cycles: int = 3) -> CyclingProtocol:
    return CyclingProtocol(
        capacity_ah=CAPACITY_AH, formation_cycles=formation, number_cycles=cycles,
        formation_charge_a=0.1 * CAPACITY_AH, formation_discharge_a=0.1 * CAPACITY_AH,
        formation_cv_cutoff_a=0.05 * CAPACITY_AH, charge_a=CAPACITY_AH, discharge_a=CAPACITY_AH,
        cv_cutoff_a=CAPACITY_AH,  # not below the charge current: no hold in cycling
        formation_v_max=4.2, formation_v_min=2.5, v_max=4.1, v_min=3.0)


def test_the_schedule_becomes_tomato_tasks_that_tomatos_schema_accepts(tmp_path):
    tasks = schedule_tasks(schedule(), sampling_seconds=10)
    kinds = [(t.technique_name, t.task_params.get("current", 0) > 0) for t in tasks]
    formation = [("constant_current", True), ("constant_voltage", False), ("constant_current", False)]
    cycling = [("constant_current", True), ("constant_current", False)]
    assert kinds == formation * 2 + cycling * 3
    assert tasks[0].task_params == {"current": pytest.approx(0.1 * CAPACITY_AH), "limit_voltage_max": 4.2}
    assert tasks[1].task_params == {"voltage": 4.2, "limit_current_min": pytest.approx(0.05 * CAPACITY_AH)}
    assert tasks[-1].task_params == {"current": pytest.approx(-CAPACITY_AH), "limit_voltage_min": 3.0}
    assert tasks[0].max_duration == pytest.approx(15 * 3600)  # 1.5 times the nominal 10 h of a C/10 charge
    parsed = check_payload(build_payload(tasks, "CELL-1", tmp_path, "cycling"))
    assert len(parsed.method) == 12 and parsed.method[0].component_role == "cycler"


def cycling_record(capacities_mah: list[tuple[float, float]], current_a: float, dt: float = 1.0):
    """Time, current and voltage of CC charge / rest / CC discharge / rest cycles passing the given charge
    and discharge capacities, sampled every ``dt`` seconds (a charge current positive)."""
    t, current, voltage, now = [], [], [], 0.0
    for charge_mah, discharge_mah in capacities_mah:
        for mah, sign, v0, v1 in ((charge_mah, 1, 3.5, 4.1), (discharge_mah, -1, 4.0, 3.0)):
            seconds = mah / 1000 / current_a * 3600
            n = int(round(seconds / dt))
            for k in range(n + 1):
                t.append(now + k * dt)
                current.append(sign * current_a)
                voltage.append(v0 + (v1 - v0) * k / n)
            now += n * dt
            for k in range(1, 61):  # a minute's rest
                t.append(now + k * dt)
                current.append(0.0)
                voltage.append(voltage[-1])
            now += 60 * dt
    return np.array(t) + 1.7e9, np.array(current), np.array(voltage)


def write_tomato_file(path, t, current, voltage, role: str = "cycler") -> None:
    """A job's data as tomato 2.x writes it: a data tree with one group per role, the job on the root."""
    ds = xr.Dataset({"I": (["uts"], current, {"units": "A"}), "Ewe": (["uts"], voltage, {"units": "V"})},
                    coords={"uts": (["uts"], t)}, attrs={"role": role})
    tree = xr.DataTree.from_dict({role: ds})
    tree.attrs = {"tomato_version": "2.2", "tomato_Job": json.dumps({"id": 7, "status": "c"})}
    tree.to_netcdf(path, engine="h5netcdf")


def test_capacity_per_cycle_is_read_from_tomatos_data(tmp_path):
    known = [(2.05, 1.90), (1.95, 1.89), (1.92, 1.86), (1.90, 1.83), (1.88, 1.80)]
    path = tmp_path / "results.7.nc"
    write_tomato_file(path, *cycling_record(known, current_a=0.002))
    data = read_job_data(path)
    assert data.tomato_version == "2.2" and data.job["id"] == 7 and set(data.groups) == {"cycler"}
    ds = data.groups["cycler"]
    cycles = cycles_from_data(ds["uts"].values, ds["I"].values, ds["Ewe"].values, CAPACITY_AH, v_max=4.1)
    assert len(cycles) == 5
    for cycle, (charge, discharge) in zip(cycles, known):
        assert cycle.charge_capacity_mah == pytest.approx(charge, rel=2e-3)
        assert cycle.discharge_capacity_mah == pytest.approx(discharge, rel=2e-3)
        assert cycle.coulombic_efficiency == pytest.approx(discharge / charge, rel=4e-3)
        assert cycle.mean_charge_voltage == pytest.approx(3.8, abs=0.01)
        assert cycle.mean_discharge_voltage == pytest.approx(3.5, abs=0.01)
        assert cycle.charge_c_rate == pytest.approx(1.0) and cycle.reached_v_max


def test_cycler_tomato_is_a_registered_backend_of_the_cycler(tmp_path):
    inst = catalog.build("cycler", "tomato", state=tmp_path,
                         options={"port": 1234, "pipeline": "pip-cycler", "nominal_capacity_mah": 3.0})
    assert isinstance(inst, Cycler) and isinstance(inst.backend, TomatoCyclerBackend)
    assert inst.backend.tomato.settings.pipeline == "pip-cycler"
    inst.backend.tomato.daemon.close()
