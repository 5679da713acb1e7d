"""The instruments a tenant daemon can run, by name, with their backends.

Heavy imports (PyBaMM, ASE, CHGNet) happen only for the instruments asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from labweave.drivers.base import Instrument

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")


def _pld(seed: int, state: Path) -> Instrument:
    from labweave.drivers.pld.frontend import PldChamber
    from labweave.drivers.pld.sim import SimulatedPldBackend

    return PldChamber(SimulatedPldBackend(seed=seed))


def _emt(seed: int, state: Path) -> Instrument:
    from labweave.drivers.atomistic.frontend import EmtSimulator

    return EmtSimulator()


def _chgnet(seed: int, state: Path) -> Instrument:
    from labweave.drivers.atomistic.frontend import ChgnetSimulator

    return ChgnetSimulator()


def _robot(seed: int, state: Path) -> Instrument:
    from labweave.drivers.coin_cell_robot.frontend import CoinCellRobot
    from labweave.drivers.coin_cell_robot.sim import SimulatedRobotBackend

    return CoinCellRobot(SimulatedRobotBackend(state / "cells", seed=seed))


def _cycler(seed: int, state: Path) -> Instrument:
    from labweave.drivers.cycler.frontend import Cycler
    from labweave.drivers.cycler.sim import SimulatedCyclerBackend

    return Cycler(SimulatedCyclerBackend(state / "cells", seed=seed))


def workflow(client, cells: int = 2, cycles: int = 150) -> Instrument:
    """The degradation workflow tenant: it needs the client it posts sub-requests with."""
    from labweave.services.tenant.workflow import DegradationWorkflow

    return DegradationWorkflow(client, cells=cells, cycles=cycles)


SIMULATED: dict[str, Callable[[int, Path], Instrument]] = {
    "pld": _pld,
    "emt": _emt,
    "chgnet": _chgnet,
    "robot": _robot,
    "cycler": _cycler,
}


def build(name: str, backend: str = "sim", seed: int = 0, state: Path | None = None) -> Instrument:
    """An instrument by name; ``state`` is the simulated lab's folder (its cell shelf)."""
    if backend != "sim":
        raise ValueError(f"backend {backend!r}: only the simulated backends ('sim') ship with labweave")
    try:
        factory = SIMULATED[name]
    except KeyError:
        raise ValueError(f"unknown instrument {name!r}; choose from {', '.join(sorted(SIMULATED))}") from None
    return factory(seed, Path(state or "labweave-lab"))
