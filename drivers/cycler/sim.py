"""A simulated cycler: channels that cycle shelf cells through PyBaMM.

The backend takes the physical cell from the shelf (:mod:`labweave.drivers.cells`),
maps its electrolyte and build to a PyBaMM single-particle model with SEI
growth and stress-driven active-material loss (:mod:`.formulation`,
:mod:`.cell_model`), runs the protocol as a PyBaMM experiment (:mod:`.experiment`)
through its executor (:mod:`labweave.drivers.compute`: a worker thread here, or
a Dask worker, :func:`simulate_test`), and reports what a channel measures,
with seeded measurement noise. The backend keeps the state (the shelf, each
cell's test count, the channels) and draws the noise's seed; the solve itself
is a pure function of the cell, the protocol and that seed, so it gives the
same numbers wherever it runs. The OKane2022 parameter set is loaded once per
process (:func:`base_parameters`). A cell the shelf does not hold is cycled as a nominal
stand-in of the reference electrolyte seeded from its uuid, with a warning.
A cell already cycled to the end of a test is refused: it is aged, and the
model does not carry its state over.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import pybamm
from pydantic import Field

from labweave.drivers.base import (
    BackendContext,
    BackendSettings,
    InstrumentFault,
    InstrumentStopped,
    PhysicalLimit,
    Progress,
)
from labweave.drivers.cells import CellRecord, CellShelf, InternalShort, stand_in_cell
from labweave.drivers.cycler import cell_model
from labweave.drivers.cycler.backend import CycleMeasurement, CyclerBackend, CyclingProtocol, CyclingRun
from labweave.drivers.cycler.experiment import LOGGED_VARIABLES, build_experiment, measure_cycle, plan_cycles
from labweave.drivers.cycler.formulation import electrolyte_properties
from labweave.drivers.compute import Computation

log = logging.getLogger(__name__)

#: Relative standard uncertainty of a channel's capacity measurement
#: (0.02 % of reading, a research-grade cycler's current accuracy).
CAPACITY_NOISE = 2e-4
#: Absolute capacity noise floor, mAh.
CAPACITY_NOISE_FLOOR = 2e-4
#: What a channel of the simulated cycler can do (a coin-cell channel: 2 A, within 0-5 V).
CHANNEL_LIMITS = (
    PhysicalLimit("I_max", "a cycler channel", high="2000 mA"),
    PhysicalLimit("V_max", "a cycler channel", high="5 V"),
    PhysicalLimit("V_min", "a cycler channel", low="0 V"),
)


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


_base: pybamm.ParameterValues | None = None
_base_lock = threading.Lock()


def base_parameters() -> pybamm.ParameterValues:
    """The OKane2022 parameter set, loaded once per process (a worker's warm-up) and never modified."""
    global _base
    with _base_lock:
        if _base is None:
            _base = cell_model.base_parameters()
        return _base


class _ChannelWatch(pybamm.callbacks.Callback):
    """Stops the solve on a safe stop and reports progress after each cycle."""

    def __init__(self, stop: threading.Event, report: Callable[[float, str], None], total: int, channel: int):
        self.stop = stop
        self.report = report
        self.total = max(total, 1)
        self.channel = channel

    def on_cycle_start(self, logs):
        if self.stop.is_set():
            raise InstrumentStopped(f"channel {self.channel}: test stopped by a safe stop")

    def on_cycle_end(self, logs):
        done, _ = logs.get("cycle number", (0, self.total))
        self.report(min(done / self.total, 1.0), f"channel {self.channel}: cycle {done}/{self.total}")


@dataclass
class ChannelState:
    """What a channel of the cycler does now: the current it sources, its relay, the cell on it."""

    current_a: float = 0.0
    relay_closed: bool = False
    cell_uuid: str | None = None


class SimulatedCyclerSettings(BackendSettings):
    """Options of the simulated cycler (``--backend-option channels=4``).

    Args:
        channels: number of channels.
        name: the cycler's name, recorded in the cells' histories.
    """

    channels: int = Field(default=8, ge=1, le=64)
    name: str = Field(default="sim-cycler", min_length=1, max_length=64)


class SimulatedCyclerBackend(CyclerBackend):
    """A seeded, stateful simulated cycler (registered as ``cycler.simulated``).

    Args:
        shelf: the cell shelf (or its directory); None means every cell is a stand-in.
        seed: seed of the measurement noise; the noise of a test is drawn from
            (seed, cell uuid, number of earlier tests of that cell here), so the
            same seed gives the same numbers whatever the order of concurrent tests.
        channels: number of channels.
        name: the cycler's name, recorded in the cells' histories.
        rtol: relative tolerance of the solver (1e-5 keeps capacities within
            about 0.1 % of the converged solution).
    """

    settings_model = SimulatedCyclerSettings

    def __init__(
        self,
        shelf: CellShelf | str | os.PathLike | None = None,
        *,
        seed: int = 0,
        channels: int = 8,
        name: str = "sim-cycler",
        rtol: float = 1e-5,
    ):
        if isinstance(shelf, (str, Path, os.PathLike)):
            shelf = CellShelf(shelf)
        self.shelf = shelf
        self.name = name
        self.rtol = rtol
        if seed < 0:
            raise ValueError(f"seed must be non-negative, not {seed}")
        self.seed = seed
        self._tests_of_cell: Counter[str] = Counter()
        self._free_channels = list(range(1, channels + 1))
        self.channels = {number: ChannelState() for number in range(1, channels + 1)}
        self._running: set[threading.Event] = set()
        self._channels = channels
        self._warned: set[str] = set()
        self.tests_run = 0

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        """A cycler taking its cells from the shelf of the lab in ``context.state_dir``."""
        assert isinstance(settings, SimulatedCyclerSettings)
        return cls(CellShelf.of_lab(context.state_dir), seed=context.seed, channels=settings.channels,
                   name=settings.name)

    offloads = True

    def concurrency(self) -> int:
        """One test per channel."""
        return self._channels

    def warmups(self) -> tuple[Callable[[], object], ...]:
        return (base_parameters,)

    def physical_limits(self, method: str) -> tuple[PhysicalLimit, ...]:
        return CHANNEL_LIMITS

    async def setup(self) -> None:
        await self.executor.prepare(self.warmups())
        if not self.executor.remote:
            await asyncio.to_thread(base_parameters)

    safe_state = "every channel at zero current and open circuit, its cell disconnected and the channel released"

    async def stop(self) -> None:
        """Zero every channel's current and open its relay at once; the test on it ends at its next cycle start."""
        for stop in list(self._running):
            stop.set()
        for number, state in self.channels.items():
            if state.relay_closed:
                log.warning("%s: channel %d to zero current and open circuit (cell %s)", self.name, number,
                            state.cell_uuid)
            state.current_a, state.relay_closed = 0.0, False

    def in_safe_state(self) -> bool:
        return all(state.current_a == 0.0 and not state.relay_closed for state in self.channels.values())

    # -- cells -----------------------------------------------------------
    def cell(self, cell_uuid: str) -> CellRecord:
        """The physical cell: from the shelf, or a seeded stand-in (with a warning)."""
        record = self.shelf.get(cell_uuid) if self.shelf is not None else None
        if record is None:
            record = stand_in_cell(cell_uuid)
            if cell_uuid in self._warned:
                return record
            self._warned.add(cell_uuid)
            log.warning(
                "%s: cell %s is not on the shelf; cycling a nominal stand-in of the reference electrolyte "
                "seeded from its uuid",
                self.name,
                cell_uuid,
            )
        return record

    async def nominal_capacity(self, cell_uuid: str) -> float:
        record = self.cell(cell_uuid)
        return record.cathode_loading_mah_cm2 * record.cathode_area_cm2 / 1000.0

    # -- tests -------------------------------------------------------------
    async def run_test(self, cell_uuid: str, protocol: CyclingProtocol, progress: Progress) -> CyclingRun:
        record = self.cell(cell_uuid)
        if record.cycled:
            raise InstrumentFault(
                f"cell {cell_uuid} was already cycled to the end of a test; it is aged, use a fresh cell",
                retryable=False,
            )
        if not self._free_channels:
            raise InstrumentFault(f"{self.name}: every channel is busy", retryable=True)
        channel = self._free_channels.pop(0)
        # noise seeded by (cycler seed, cell, how often this cycler tested it), so
        # results do not depend on the order in which concurrent tests start
        self._tests_of_cell[cell_uuid] += 1
        noise_seed = [self.seed, _stable_hash(cell_uuid), self._tests_of_cell[cell_uuid]]
        stop = threading.Event()
        self._running.add(stop)
        self.tests_run += 1
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:
            def deliver() -> None:
                outcome = progress(fraction, message)
                if inspect.isawaitable(outcome):
                    asyncio.ensure_future(outcome)

            loop.call_soon_threadsafe(deliver)

        log.info("%s: cell %s on channel %d", self.name, cell_uuid, channel)
        state = self.channels[channel]
        state.cell_uuid, state.relay_closed, state.current_a = cell_uuid, True, protocol.formation_charge_a
        try:
            computation = Computation(simulate_test, (record, protocol, channel, noise_seed, self.rtol, self.name),
                                      name="pybamm-cycling", warmups=self.warmups(),
                                      local={"stop": stop, "report": report})
            run = await self.executor.run(computation, stop)
        finally:
            self._running.discard(stop)
            state.current_a, state.relay_closed, state.cell_uuid = 0.0, False, None  # the channel is released
            self._free_channels.append(channel)
            self._free_channels.sort()
        if self.shelf is not None and not record.stand_in:
            self.shelf.record_event(
                cell_uuid,
                "cycled",
                by=self.name,
                channel=channel,
                cycles=len(run.cycles),
                abort_reason=run.abort_reason,
            )
        return run


def simulate_test(
    record: CellRecord,
    protocol: CyclingProtocol,
    channel: int,
    noise_seed: list[int],
    rtol: float,
    cycler: str,
    stop: threading.Event | None = None,
    report: Callable[[float, str], None] | None = None,
) -> CyclingRun:
    """Run the protocol on the cell model, as an executor runs it (a worker thread here, or a Dask worker).

    Args:
        record: the cell, as the shelf holds it.
        protocol: the schedule.
        channel: the channel it runs on (recorded in the run).
        noise_seed: seed of the measurement noise (drawn by the backend).
        rtol: the solver's relative tolerance.
        cycler: the cycler's name (for the log).
        stop: set by a safe stop (only where it runs in the backend's process).
        report: progress per cycle (only there, too).
    """
    rng = np.random.default_rng(noise_seed)
    base = base_parameters()
    run = CyclingRun(cell_uuid=record.uuid, channel=channel, stand_in=record.stand_in)
    electrolyte = electrolyte_properties(record.electrolyte)
    design = cell_model.design_cell(record, electrolyte, base)
    v_min = min(protocol.formation_v_min, protocol.v_min)
    v_max = max(protocol.formation_v_max, protocol.v_max)
    values = cell_model.parameter_values(design, base, v_min, v_max)
    short = next((d for d in record.defects if isinstance(d, InternalShort)), None)
    plan, abort_reason = plan_cycles(protocol, short)
    log.debug(
        "cell %s: area %.3f cm2, R %.2f ohm, SEI x%.2f, cathode LAM x%.2f, kappa %.3f S/m",
        record.uuid,
        design.area_m2 * 1e4,
        design.series_resistance_ohm,
        design.sei_factor,
        design.cathode_lam_factor,
        electrolyte.conductivity,
    )
    if not plan:
        run.abort_reason = abort_reason
        return run
    simulation = pybamm.Simulation(
        cell_model.build_model(),
        parameter_values=values,
        experiment=build_experiment(plan),
        # only what a channel logs is kept: about a third less time per test
        solver=pybamm.IDAKLUSolver(rtol=rtol, atol=1e-7, output_variables=list(LOGGED_VARIABLES)),
        # one model for the whole schedule, step values as inputs: a short's
        # cycle-by-cycle currents do not each cost a model build
        experiment_model_mode="unified",
    )
    watch = _ChannelWatch(stop or threading.Event(), report or _ignore, len(plan), channel)
    try:
        solution = simulation.solve(initial_soc=0.0, callbacks=[watch], calc_esoh=False)
    except pybamm.SolverError as exc:
        run.abort_reason = f"the cell could not follow the protocol from its first step: {exc}"
        return run
    cycles = [c for c in solution.cycles if c is not None]
    for planned, cycle_solution in zip(plan, cycles, strict=False):
        measured, finished = measure_cycle(cycle_solution, planned, protocol.capacity_ah)
        measured = _with_noise(measured, rng)
        (run.formation if planned.stage == "formation" else run.cycles).append(measured)
        where = f"{planned.stage} cycle {planned.number}"
        if not measured.reached_v_max:
            abort_reason = f"{where}: the charge did not reach {planned.v_max} V within the step time limit"
            break
        if not finished:
            abort_reason = f"{where}: the discharge did not reach {planned.v_min} V"
            break
    else:
        if len(cycles) < len(plan):
            missing = plan[len(cycles)]
            abort_reason = (
                f"{missing.stage} cycle {missing.number}: the cell could no longer follow the protocol "
                f"({solution.termination})"
            )
    run.abort_reason = abort_reason
    if abort_reason:
        log.info("%s: test of %s ended early: %s", cycler, record.uuid, abort_reason)
    return run


def _with_noise(measured: CycleMeasurement, rng: np.random.Generator) -> CycleMeasurement:
    def noisy(value: float) -> float:
        return max(
            value * (1.0 + CAPACITY_NOISE * rng.standard_normal()) + CAPACITY_NOISE_FLOOR * rng.standard_normal(),
            0.0,
        )

    measured.charge_capacity_mah = noisy(measured.charge_capacity_mah)
    measured.discharge_capacity_mah = noisy(measured.discharge_capacity_mah)
    return measured


def _ignore(fraction: float, message: str) -> None:
    return None
