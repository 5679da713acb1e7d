"""What a coin-cell robot backend does: formulate electrolytes, assemble cells.

The frontend decides *what* to make (which electrolyte batch feeds which
cells, how many cells, with which discs); a backend makes it, on real
hardware (an AutoBASS-type assembly line with a formulation station) or in
simulation. Amounts are in the robot's units: millilitres of liquid, grams of
salt, microlitres dispensed into a cell, counted parts.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from labweave.drivers.base import Backend, InstrumentFault, Progress
from labweave.drivers.cells import CellRecord
from labweave.schemas.battery import FormulationComponent, Location


class StockExhausted(InstrumentFault):
    """The robot lacks a chemical or a part for the job; nothing was consumed.

    Not retryable until an operator refills the stock.

    Attributes:
        item: the chemical (name) or part that is short.
    """

    def __init__(self, item: str, needed: float, available: float, unit: str):
        self.item = item
        super().__init__(
            f"stock of {item} exhausted: needs {needed:.4g} {unit}, {available:.4g} {unit} left", retryable=False
        )


@dataclass
class ElectrolyteBatch:
    """A vial of electrolyte the robot formulated.

    Attributes:
        uuid: the batch's identifier (FINALES ``formulation_info.uuid``).
        name: a human readable name.
        requested: the formulation asked for.
        achieved: the formulation as dosed (gravimetric), molar fractions.
        volume_ml: volume prepared.
        remaining_ml: volume still in the vial.
        prepared_at: ISO 8601 time of preparation.
        location: where the vial stands.
    """

    uuid: str
    name: str
    requested: list[FormulationComponent]
    achieved: list[FormulationComponent]
    volume_ml: float
    remaining_ml: float
    prepared_at: str
    location: Location


@dataclass(frozen=True)
class CellSpec:
    """One cell to assemble.

    Attributes:
        electrolyte_uuid: the electrolyte batch to draw from.
        electrolyte_volume_ul: volume to dispense.
        cathode_loading_mah_cm2, anode_loading_mah_cm2: areal capacities of the discs.
        cathode_area_cm2, anode_area_cm2, separator_area_cm2: disc areas.
        cathode_material, anode_material, separator_material: names.
    """

    electrolyte_uuid: str
    electrolyte_volume_ul: float
    cathode_loading_mah_cm2: float
    anode_loading_mah_cm2: float
    cathode_area_cm2: float
    anode_area_cm2: float
    separator_area_cm2: float
    cathode_material: str
    anode_material: str
    separator_material: str


@dataclass
class AssembledCell:
    """A cell as the robot made it, with what its own sensors saw.

    Attributes:
        record: the physical cell, as placed on the shelf.
        measured_offset_mm: anode-cathode offset seen by the alignment camera.
        logged_crimp_mpa: crimp pressure logged by the press.
        temperature_k: glovebox temperature at sealing.
        sealed_at: ISO 8601 time of sealing.
        image: where the alignment image is stored.
    """

    record: CellRecord
    measured_offset_mm: float
    logged_crimp_mpa: float
    temperature_k: float
    sealed_at: str
    image: str


class CoinCellRobotBackend(Backend, abc.ABC):
    """An electrolyte formulation station with a coin-cell assembly line."""

    #: Electrolyte drawn from the vial with every cell beyond what the cell
    #: receives (pipette tip and line), uL.
    dispense_dead_volume_ul: float = 5.0

    @abc.abstractmethod
    async def formulate(
        self, formulation: list[FormulationComponent], volume_ml: float, progress: Progress
    ) -> ElectrolyteBatch:
        """Dose the chemicals of a formulation into a new vial.

        Raises:
            StockExhausted: a chemical is short (nothing dosed).
            InstrumentFault: the station failed while dosing.
        """

    @abc.abstractmethod
    def electrolyte_batch(self, uuid: str) -> ElectrolyteBatch | None:
        """A batch the robot formulated and still holds, or None."""

    @abc.abstractmethod
    def check_parts(self, cells: int, separator_material: str) -> None:
        """Make sure the magazines hold parts for ``cells`` cells.

        Raises:
            StockExhausted: naming the missing part.
        """

    @abc.abstractmethod
    def new_batch_id(self) -> str:
        """A fresh identifier for a batch of cells."""

    @abc.abstractmethod
    async def assemble_cell(self, spec: CellSpec, batch_id: str) -> AssembledCell:
        """Assemble one cell, place it on the shelf and report it.

        Raises:
            StockExhausted: electrolyte or a part ran out.
            InstrumentFault: a mechanical fault (a dropped part; retryable).
        """
