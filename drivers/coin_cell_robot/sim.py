"""A simulated coin-cell robot: a formulation station and an assembly line.

The model keeps the robot's state: reservoirs of the stocked chemicals
(millilitres of liquid, grams of LiPF6) and magazines of parts (cases,
spacers, springs, separator and electrode discs), the electrolyte vials it
has made, and counters of vials, batches and cells. Everything random comes
from one seeded generator, so the same seed and the same jobs give the same
cells.

What varies from cell to cell, as it does on a real line:

* dosing: each liquid pump delivers its volume within 0.5 % (1 sigma), the
  powder doser its salt mass within 1 %, so the achieved molar fractions
  differ slightly from those requested;
* dispensing: the electrolyte volume in a cell within 2 %;
* alignment: the anode's centre lands within 0.15 mm (1 sigma per axis) of
  the cathode's, and about one pick in a hundred slips by a further 0.4 mm;
* crimping: the press reaches its set pressure within 4 %;
* electrode discs: their loadings vary by 1.5 %.

Failures follow from those variations: an anode that no longer covers the
cathode edge (offset beyond the radius margin between the discs), or an
over-crimp that cuts the separator, leaves a soft internal short; an
under-crimped seal leaks. With the default spreads about 5 % of cells are
defective (about 3 % shorted, 2 % leaking, measured over 1,920 cells). The robot does not know which: it only sees its camera's
offset and its press log, which set the rating it reports. Mechanical faults
(a gripper dropping a part, an unsettled balance) raise a retryable
:class:`~labweave.drivers.base.InstrumentFault`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import uuid as uuidlib
from datetime import datetime, timezone
from typing import Self

import numpy as np
from pydantic import Field

from labweave.drivers.base import (
    BackendContext,
    BackendSettings,
    InstrumentFault,
    InstrumentStopped,
    PhysicalLimit,
    Progress,
)
from labweave.drivers.cells import (
    CATALOGUE,
    NOMINAL_BUILD,
    CellRecord,
    CellShelf,
    Defect,
    ElectrolyteLeak,
    InternalShort,
    chemical,
    component,
)
from labweave.drivers.coin_cell_robot.backend import (
    AssembledCell,
    CellSpec,
    CoinCellRobotBackend,
    ElectrolyteBatch,
    StockExhausted,
)
from labweave.schemas.battery import FormulationComponent, Location, StockedChemical

log = logging.getLogger(__name__)

#: Reservoir contents of a freshly stocked robot: mL of each solvent, mL of
#: each additive, g of LiPF6.
DEFAULT_CHEMICALS = {
    StockedChemical.LIPF6.value: 50.0,
    StockedChemical.EC.value: 250.0,
    StockedChemical.EMC.value: 250.0,
    StockedChemical.DMC.value: 250.0,
    StockedChemical.DEC.value: 250.0,
    StockedChemical.PC.value: 250.0,
    StockedChemical.VC.value: 25.0,
    StockedChemical.FEC.value: 25.0,
}
#: Parts of a freshly stocked robot: two magazines of 128 each. One magazine ran out in the demo's
#: electrolyte campaign (32 formulations and 10 replicates, 3 cells each, plus dropped parts).
DEFAULT_PARTS = {part: 256 for part in (
    "case", "spacer", "spring", "anode disc", "cathode disc",
    "separator Celgard(R) 2325", "separator Celgard 2325", "separator Glasfiber",
)}

#: Spreads of the line (1 sigma).
PUMP_CV = 0.005
POWDER_CV = 0.01
DISPENSE_CV = 0.02
ALIGNMENT_SIGMA_MM = 0.15
SLIP_PROBABILITY = 0.01
SLIP_MM = 0.4
CRIMP_CV = 0.04
LOADING_CV = 0.015
CAMERA_SIGMA_MM = 0.02
#: The station's hardware: its mixing vial holds 15 mL; its pipette dispenses 10-70 uL into a cell.
STATION_LIMITS = {
    "flow": (PhysicalLimit("volume", "the mixing vial", high="15 mL"),),
    "autobass_assembly": (PhysicalLimit("cell.electrolyte_volume", "the dispensing pipette", high="0.07 mL"),),
}


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


def short_probability(offset_mm: float, margin_mm: float, crimp_ratio: float) -> float:
    """Chance that a cell leaves the line with an internal short.

    Rises steeply once the anode no longer covers the cathode's edge
    (offset beyond the radius margin): lithium plates on the uncovered edge
    and dendrites bridge the separator; an over-crimp (above ~112 % of the
    set pressure) can cut the separator.
    """
    misalignment = 0.95 * _logistic((offset_mm - margin_mm) / 0.03)
    over_crimp = 0.5 * _logistic((crimp_ratio - 1.12) / 0.02)
    return min(0.005 + misalignment + over_crimp, 1.0)


def leak_probability(crimp_ratio: float) -> float:
    """Chance that the seal leaks: steep below ~91 % of the set crimp pressure."""
    return min(0.003 + 0.9 * _logistic((0.91 - crimp_ratio) / 0.01), 1.0)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class SimulatedRobotSettings(BackendSettings):
    """Options of the simulated robot (``--backend-option fault_rate=0``).

    Args:
        name: the robot's name (in records and ids).
        fault_rate: chance per cell of a gripper drop, per vial of an unsettled balance.
        time_scale: seconds of real waiting per second of robot time (0: none).
    """

    name: str = Field(default="sim-autobass", min_length=1, max_length=64)
    fault_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    time_scale: float = Field(default=0.0, ge=0.0, le=1.0)


class SimulatedRobotBackend(CoinCellRobotBackend):
    """A seeded, stateful simulated formulation station and assembly line (registered as ``robot.simulated``).

    Args:
        shelf: where assembled cells go (a :class:`CellShelf` or its directory).
        seed: seed of every random draw.
        name: the robot's name (in records and ids).
        chemicals: initial reservoir contents by InChIKey (mL, g for LiPF6);
            defaults to :data:`DEFAULT_CHEMICALS`.
        parts: initial magazine contents; defaults to :data:`DEFAULT_PARTS`.
        fault_rate: chance per cell of a gripper drop, per vial of an unsettled balance.
        crimp_pressure_mpa: the press's set point.
        time_scale: seconds of real waiting per second of robot time (0: none).
        location: where the robot stands.
    """

    #: Robot time per cell and per vial, s.
    SECONDS_PER_CELL = 180.0
    SECONDS_PER_VIAL = 600.0

    settings_model = SimulatedRobotSettings

    def __init__(
        self,
        shelf: CellShelf | str | os.PathLike,
        *,
        seed: int = 0,
        name: str = "sim-autobass",
        chemicals: dict[str, float] | None = None,
        parts: dict[str, int] | None = None,
        fault_rate: float = 0.01,
        crimp_pressure_mpa: float = NOMINAL_BUILD["crimp_pressure_mpa"],
        time_scale: float = 0.0,
        location: Location | None = None,
    ):
        self.shelf = shelf if isinstance(shelf, CellShelf) else CellShelf(shelf)
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.chemicals = dict(DEFAULT_CHEMICALS if chemicals is None else chemicals)
        self.parts = dict(DEFAULT_PARTS if parts is None else parts)
        self.fault_rate = fault_rate
        self.crimp_pressure_mpa = crimp_pressure_mpa
        self.time_scale = time_scale
        self.location = location or Location(address="labweave simulated lab", detail_1="glovebox", detail_2=name)
        self.batches: dict[str, ElectrolyteBatch] = {}
        self.vials_made = 0
        self.cell_batches_made = 0
        self.cells_made = 0
        self._stopped = False
        #: The line's mechanics: the arm's pose, the gripper, the crimping press, whether motion is enabled.
        self.arm_pose = "home"
        self.gripper_closed = False
        self.crimper_mpa = 0.0
        self.motion_enabled = True

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        """A robot putting its cells on the shelf of the lab in ``context.state_dir``."""
        assert isinstance(settings, SimulatedRobotSettings)
        return cls(CellShelf.of_lab(context.state_dir), seed=context.seed, name=settings.name,
                   fault_rate=settings.fault_rate, time_scale=settings.time_scale)

    def physical_limits(self, method: str) -> tuple[PhysicalLimit, ...]:
        return STATION_LIMITS.get(method, ())

    safe_state = "motion halted, gripper open, crimping press released, arm parked at its safe pose"

    async def setup(self) -> None:
        self._stopped = False
        self.motion_enabled = True

    async def stop(self) -> None:
        """Halt motion at once, open the gripper, release the press and park the arm; a cell under way is lost."""
        self._stopped = True
        self.motion_enabled = False
        if self.gripper_closed or self.crimper_mpa:
            log.warning("%s: halted with the arm at %s; gripper opened, press released", self.name, self.arm_pose)
        self.gripper_closed = False
        self.crimper_mpa = 0.0
        self.arm_pose = "safe"

    def in_safe_state(self) -> bool:
        return not self.motion_enabled and not self.gripper_closed and self.crimper_mpa == 0.0 \
            and self.arm_pose == "safe"

    async def _work(self, seconds: float) -> None:
        """Robot time passing (in real time when ``time_scale`` > 0), ended early by a stop.

        Raises:
            InstrumentStopped: a stop came while the robot worked.
        """
        remaining = seconds * self.time_scale
        while remaining > 0 and not self._stopped:
            await asyncio.sleep(min(remaining, 0.05))
            remaining -= 0.05
        if self._stopped:
            raise InstrumentStopped(f"{self.name}: stopped")

    @staticmethod
    def _id() -> str:
        """A globally unique id (not from the seeded generator: two robots with the
        same seed sharing a shelf must not overwrite each other's cells)."""
        return str(uuidlib.uuid4())

    # -- stock -------------------------------------------------------------
    def refill(self, item: str, amount: float) -> None:
        """Operator refill: add ``amount`` of a chemical (InChIKey) or part."""
        if item in self.chemicals or item in CATALOGUE:
            self.chemicals[item] = self.chemicals.get(item, 0.0) + amount
        else:
            self.parts[item] = self.parts.get(item, 0) + int(amount)

    def _take_chemicals(self, needs: dict[str, float]) -> None:
        for key, amount in needs.items():
            have = self.chemicals.get(key, 0.0)
            if have < amount:
                props = chemical(key)
                raise StockExhausted(props.name, amount, have, "g" if props.role == "salt" else "mL")
        for key, amount in needs.items():
            self.chemicals[key] -= amount

    def check_parts(self, cells: int, separator_material: str) -> None:
        for part in ("case", "spacer", "spring", "anode disc", "cathode disc", f"separator {separator_material}"):
            have = self.parts.get(part, 0)
            if have < cells:
                raise StockExhausted(part, cells, have, "pcs")

    # -- formulation -----------------------------------------------------------
    async def formulate(
        self, formulation: list[FormulationComponent], volume_ml: float, progress: Progress
    ) -> ElectrolyteBatch:
        """Dose a formulation: liquids by volume, LiPF6 by mass, ideal mixing of volumes."""
        molar_volume = sum(c.fraction * chemical(c.chemical.InChIKey).molar_volume for c in formulation)
        total_mol = volume_ml / molar_volume  # mol per mL of target over cm3/mol
        needs: dict[str, float] = {}
        for comp in formulation:
            props = chemical(comp.chemical.InChIKey)
            moles = total_mol * comp.fraction
            needs[props.key] = moles * props.molar_mass if props.role == "salt" else moles * props.molar_volume
        if self.rng.random() < self.fault_rate:
            raise InstrumentFault(f"{self.name}: the balance did not settle while taring the vial", retryable=True)
        self._take_chemicals(needs)
        dosed: dict[str, float] = {}
        volume = 0.0
        for key, amount in needs.items():
            props = chemical(key)
            spread = POWDER_CV if props.role == "salt" else PUMP_CV
            actual = amount * (1.0 + spread * self.rng.standard_normal())
            moles = actual / props.molar_mass if props.role == "salt" else actual / props.molar_volume
            dosed[key] = moles
            volume += moles * props.molar_volume
        total = sum(dosed.values())
        achieved = [component(key, round(moles / total, 6)) for key, moles in dosed.items()]
        await self._work(self.SECONDS_PER_VIAL)
        outcome = progress(1.0, f"{self.name}: vial of {volume:.3f} mL dosed")
        if inspect.isawaitable(outcome):
            await outcome
        self.vials_made += 1
        batch = ElectrolyteBatch(
            uuid=self._id(),
            name=f"{self.name}-electrolyte-{self.vials_made:04d}",
            requested=list(formulation),
            achieved=achieved,
            volume_ml=round(volume, 4),
            remaining_ml=volume,
            prepared_at=_now(),
            location=Location(address=self.location.address, detail_1=self.location.detail_1, detail_2="vial rack"),
        )
        self.batches[batch.uuid] = batch
        log.info("%s: formulated %s (%.3f mL)", self.name, batch.name, volume)
        return batch

    def electrolyte_batch(self, uuid: str) -> ElectrolyteBatch | None:
        return self.batches.get(uuid)

    # -- assembly --------------------------------------------------------------
    def new_batch_id(self) -> str:
        self.cell_batches_made += 1
        return f"{self.name}-B{self.cell_batches_made:04d}"

    def _take_part(self, part: str) -> None:
        have = self.parts.get(part, 0)
        if have < 1:
            raise StockExhausted(part, 1, have, "pcs")
        self.parts[part] = have - 1

    async def assemble_cell(self, spec: CellSpec, batch_id: str) -> AssembledCell:
        """Stack, wet and crimp one cell; its variations and defects are drawn here."""
        if self._stopped:
            raise InstrumentStopped(f"{self.name}: stopped")
        vial = self.batches.get(spec.electrolyte_uuid)
        draw_ml = (spec.electrolyte_volume_ul + self.dispense_dead_volume_ul) / 1000.0
        if vial is None:
            raise InstrumentFault(f"{self.name}: no electrolyte vial {spec.electrolyte_uuid}", retryable=False)
        if vial.remaining_ml < draw_ml:
            raise StockExhausted(f"electrolyte {vial.name}", draw_ml, vial.remaining_ml, "mL")
        self.check_parts(1, spec.separator_material)
        rng = self.rng
        if rng.random() < self.fault_rate:
            self._take_part("case")
            raise InstrumentFault(
                f"{self.name}: gripper dropped the case of the next cell of batch {batch_id}", retryable=True
            )
        for part in ("case", "spacer", "spring", "anode disc", "cathode disc", f"separator {spec.separator_material}"):
            self._take_part(part)
        vial.remaining_ml -= draw_ml

        volume = spec.electrolyte_volume_ul * (1.0 + DISPENSE_CV * rng.standard_normal())
        offset = float(np.hypot(*(ALIGNMENT_SIGMA_MM * rng.standard_normal(2))))
        if rng.random() < SLIP_PROBABILITY:
            offset += SLIP_MM
        crimp = self.crimp_pressure_mpa * (1.0 + CRIMP_CV * rng.standard_normal())
        crimp_ratio = crimp / self.crimp_pressure_mpa
        margin = 10.0 * (math.sqrt(spec.anode_area_cm2 / math.pi) - math.sqrt(spec.cathode_area_cm2 / math.pi))
        defects: list[Defect] = []
        if rng.random() < short_probability(offset, margin, crimp_ratio):
            cause = "anode misaligned past the cathode edge" if offset > margin else "separator damaged in crimping"
            defects.append(
                InternalShort(
                    resistance_ohm=float(25_000.0 * math.exp(0.8 * rng.standard_normal())),
                    decay_per_cycle=float(rng.uniform(0.01, 0.04)),
                    cause=cause,
                )
            )
        if rng.random() < leak_probability(crimp_ratio):
            defects.append(ElectrolyteLeak(severity=float(rng.uniform(0.2, 1.0)), cause="under-crimped seal"))

        self.cells_made += 1
        cell_id = self._id()
        record = CellRecord(
            uuid=cell_id,
            batch_id=batch_id,
            assembled_by=self.name,
            assembled_at=_now(),
            electrolyte=list(vial.achieved),
            electrolyte_uuid=vial.uuid,
            electrolyte_volume_ul=volume,
            nominal_electrolyte_volume_ul=spec.electrolyte_volume_ul,
            cathode_loading_mah_cm2=spec.cathode_loading_mah_cm2 * (1.0 + LOADING_CV * rng.standard_normal()),
            anode_loading_mah_cm2=spec.anode_loading_mah_cm2 * (1.0 + LOADING_CV * rng.standard_normal()),
            cathode_area_cm2=spec.cathode_area_cm2,
            anode_area_cm2=spec.anode_area_cm2,
            cathode_material=spec.cathode_material,
            anode_material=spec.anode_material,
            separator_material=spec.separator_material,
            separator_area_cm2=spec.separator_area_cm2,
            alignment_offset_mm=offset,
            crimp_pressure_mpa=crimp,
            nominal_crimp_pressure_mpa=self.crimp_pressure_mpa,
            defects=defects,
            location=Location(address=self.location.address, detail_1="cell shelf", detail_2=f"slot {self.cells_made}"),
        )
        measured_offset = abs(offset + CAMERA_SIGMA_MM * rng.standard_normal())
        temperature = 298.15 + 0.3 * rng.standard_normal()
        self.arm_pose, self.gripper_closed, self.crimper_mpa = "crimping press", True, crimp
        await self._work(self.SECONDS_PER_CELL)  # a stop here leaves an unfinished cell, never shelved
        self.arm_pose, self.gripper_closed, self.crimper_mpa = "cell shelf", False, 0.0
        self.shelf.put(record)
        if defects:
            log.debug("%s: cell %s left the line with %s", self.name, cell_id, [d.kind for d in defects])
        return AssembledCell(
            record=record,
            measured_offset_mm=measured_offset,
            logged_crimp_mpa=crimp,
            temperature_k=temperature,
            sealed_at=record.assembled_at,
            image=f"sim://{self.name}/{batch_id}/{cell_id}/alignment.png",
        )
