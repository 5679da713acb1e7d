"""What a cycler backend does, and the data it hands back.

A backend receives a :class:`CyclingProtocol` (currents in amperes, voltages
in volts: the policy of turning C-rates into currents is the frontend's) and
returns a :class:`CyclingRun`: what the channel measured, cycle by cycle.
The simulated backend and a real one (an Arbin or a BioLogic channel group)
are siblings under :class:`CyclerBackend`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from labweave.drivers.base import Backend, Progress


@dataclass(frozen=True)
class CyclingProtocol:
    """A formation-then-cycling schedule for one cell.

    Each cycle is a constant-current charge to the upper voltage, a
    constant-voltage hold until the current falls below the cut-off (skipped
    if the cut-off is not below the charge current), and a constant-current
    discharge to the lower voltage.

    Attributes:
        capacity_ah: capacity the C-rates refer to.
        formation_cycles: number of formation cycles.
        number_cycles: number of cycles after formation.
        formation_charge_a, formation_discharge_a, formation_cv_cutoff_a: formation currents.
        charge_a, discharge_a, cv_cutoff_a: cycling currents.
        formation_v_max, formation_v_min: formation voltage window.
        v_max, v_min: cycling voltage window.
    """

    capacity_ah: float
    formation_cycles: int
    number_cycles: int
    formation_charge_a: float
    formation_discharge_a: float
    formation_cv_cutoff_a: float
    charge_a: float
    discharge_a: float
    cv_cutoff_a: float
    formation_v_max: float
    formation_v_min: float
    v_max: float
    v_min: float

    @property
    def formation_charge_c_rate(self) -> float:
        return self.formation_charge_a / self.capacity_ah

    @property
    def charge_c_rate(self) -> float:
        return self.charge_a / self.capacity_ah


def curve_cycles(number_cycles: int) -> tuple[int, int]:
    """The early and late cycles whose discharge curves are compared (1-based).

    Severson et al. (Nat. Energy 4, 383 (2019)) compare cycles 10 and 100; for
    shorter tests the early cycle moves to half the test.
    """
    return min(10, max(1, number_cycles // 2)), number_cycles


@dataclass
class DischargeCurve:
    """A discharge measured densely enough to compare curves: voltage (V) and capacity (mAh)."""

    voltage: list[float]
    capacity_mah: list[float]


@dataclass
class CycleMeasurement:
    """What a channel measured during one cycle.

    Attributes:
        charge_capacity_mah: charge passed in (CC plus CV).
        discharge_capacity_mah: charge taken out.
        mean_charge_voltage, mean_discharge_voltage: capacity-weighted mean voltages.
        charge_c_rate: charge current over the protocol's capacity.
        reached_v_max: whether the charge reached the upper voltage.
        curve: the discharge curve, for the cycles the channel records densely.
    """

    charge_capacity_mah: float
    discharge_capacity_mah: float
    mean_charge_voltage: float
    mean_discharge_voltage: float
    charge_c_rate: float
    reached_v_max: bool = True
    curve: DischargeCurve | None = None

    @property
    def coulombic_efficiency(self) -> float:
        if self.charge_capacity_mah <= 0:
            return 0.0
        return self.discharge_capacity_mah / self.charge_capacity_mah


@dataclass
class CyclingRun:
    """A finished (or aborted) test of one cell.

    Attributes:
        cell_uuid: the cell.
        channel: the channel it ran on.
        formation: formation cycles.
        cycles: cycles after formation.
        abort_reason: why the channel stopped early, or None.
        stand_in: the cell was not on the shelf; a nominal stand-in was cycled.
    """

    cell_uuid: str
    channel: int
    formation: list[CycleMeasurement] = field(default_factory=list)
    cycles: list[CycleMeasurement] = field(default_factory=list)
    abort_reason: str | None = None
    stand_in: bool = False

    @property
    def completed(self) -> bool:
        return self.abort_reason is None


class CyclerBackend(Backend, abc.ABC):
    """A battery cycler's channel group."""

    @abc.abstractmethod
    async def nominal_capacity(self, cell_uuid: str) -> float:
        """Nominal capacity of a cell, Ah (what an operator would enter for it)."""

    @abc.abstractmethod
    async def run_test(self, cell_uuid: str, protocol: CyclingProtocol, progress: Progress) -> CyclingRun:
        """Put the cell on a free channel, run the protocol, return the measurements.

        Raises:
            InstrumentFault: no free channel, a cell that cannot be tested, a channel error.
            InstrumentStopped: the cycler was stopped during the test.
        """
