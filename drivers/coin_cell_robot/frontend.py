"""The coin-cell robot frontend: ``electrolyte``/``flow`` and ``cell_assembly``/``autobass_assembly``.

Policy lives here: what the robot accepts (the bounds on the parameter
models in :mod:`labweave.schemas.battery`, plus LiPF6 solubility), which electrolyte vial feeds a batch of cells (the vial
named by ``cell_info.electrolyte_info.uuid`` if the robot holds it and it
has the requested formulation, else a vial formulated for the batch), that
every part and enough electrolyte is there before the first cell is started,
and how the robot rates each cell from its own sensors.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
from datetime import datetime, timezone

from pydantic import BaseModel

from labweave.drivers.base import Instrument, InstrumentFault, InstrumentStopped, Operation, ParameterError, Progress
from labweave.drivers.cells import CATALOGUE, NOMINAL_BUILD, chemical
from labweave.drivers.coin_cell_robot.backend import (
    AssembledCell,
    CellSpec,
    CoinCellRobotBackend,
    ElectrolyteBatch,
    StockExhausted,
)
from labweave.schemas.battery import (
    AssemblyInput,
    AssemblyOutput,
    AutoBASSOutput,
    BatteryChemistry,
    Cell,
    CellInfo,
    ChemicalInfo,
    ElectrodeDisc,
    ElectrolyteOutput,
    FlowInput,
    FlowOutput,
    FormulationComponent,
    FormulationInfo,
    MethodMeta,
    RunInfo,
    Separator,
    SeparatorMaterial,
)

log = logging.getLogger(__name__)

#: Largest LiPF6 molar fraction the station dissolves at 25 °C (about 2 M in carbonates).
MAX_SALT_FRACTION = 0.16
#: Two formulations are the same if no molar fraction differs by more than this.
SAME_FORMULATION_TOLERANCE = 0.005
#: Spare volume formulated on top of what a batch of cells draws, mL.
SPARE_VOLUME_ML = 0.2
#: Default electrolyte volume per cell, uL.
DEFAULT_ELECTROLYTE_UL = NOMINAL_BUILD["electrolyte_volume_ul"]

FLOW = Operation("electrolyte", "flow", FlowInput, FlowOutput, run="formulate")
ASSEMBLY = Operation("cell_assembly", "autobass_assembly", AssemblyInput, AutoBASSOutput, run="assemble")


def _generic(components) -> list[FormulationComponent]:
    return [FormulationComponent.model_validate(c.model_dump(mode="json")) for c in components]


def _fractions(components) -> dict[str, float]:
    return {str(getattr(c.chemical.InChIKey, "value", c.chemical.InChIKey)): c.fraction for c in components}


def same_formulation(a, b, tolerance: float = SAME_FORMULATION_TOLERANCE) -> bool:
    """Whether two formulations name the same chemicals at the same molar fractions."""
    fa, fb = _fractions(a), _fractions(b)
    keys = set(fa) | set(fb)
    return all(abs(fa.get(k, 0.0) - fb.get(k, 0.0)) <= tolerance for k in keys)


def check_formulation(field: str, components) -> None:
    """Refuse formulations the station cannot make: more LiPF6 than dissolves.

    (With fractions summing to one, this also guarantees a solvent.)

    Raises:
        ParameterError: naming the salt's fraction.
    """
    for index, comp in enumerate(components):
        props = chemical(comp.chemical.InChIKey)
        if props.role == "salt" and comp.fraction > MAX_SALT_FRACTION:
            raise ParameterError(
                f"{field}.{index}.fraction",
                f"{props.name} molar fraction {comp.fraction} exceeds what dissolves ({MAX_SALT_FRACTION})",
            )


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def _chemicals_info(components) -> dict[str, ChemicalInfo]:
    out = {}
    for key in _fractions(components):
        props = CATALOGUE[key]
        out[key] = ChemicalInfo(
            name=props.name,
            molar_mass=(props.molar_mass, 0.01),
            density=(props.density, 0.005),
            batch=f"{props.name}-stock",
            manufacturer="labweave simulated supplier",
        )
    return out


def _vial_info(vial: ElectrolyteBatch) -> FormulationInfo:
    return FormulationInfo(
        name=vial.name, uuid=vial.uuid, preparation_date=vial.prepared_at[:10], batch=vial.name, location=vial.location
    )


def _rating(cell: AssembledCell, margin_mm: float, set_point: float) -> int:
    """The robot's rating of a cell from its camera and press log (0-5)."""
    ratio = cell.measured_offset_mm / max(margin_mm, 1e-6)
    rating = 5 if ratio < 0.3 else 4 if ratio < 0.6 else 3 if ratio < 0.9 else 2
    if abs(cell.logged_crimp_mpa / set_point - 1.0) > 0.06:
        rating -= 1
    return max(rating, 0)


class CoinCellRobot(Instrument):
    """An electrolyte formulation station with a coin-cell assembly line.

    Args:
        backend: e.g. :class:`~.sim.SimulatedRobotBackend`.
    """

    name = "coin_cell_robot"
    backend_type = CoinCellRobotBackend
    operations = (FLOW, ASSEMBLY)

    def __init__(self, backend: CoinCellRobotBackend):
        super().__init__(backend)
        self.backend: CoinCellRobotBackend = backend

    def validate(self, quantity: str, method: str, parameters: dict) -> BaseModel:
        """Check parameters against the robot's limits before anything runs.

        Raises:
            ParameterError: naming the first offending field.
        """
        params = super().validate(quantity, method, parameters)
        if isinstance(params, FlowInput):
            check_formulation("electrolyte.formulation", params.electrolyte.formulation)
        elif isinstance(params, AssemblyInput):
            check_formulation("cell.battery_chemistry.electrolyte", params.cell.battery_chemistry.electrolyte)
        return params

    # -- electrolyte/flow --------------------------------------------------
    async def formulate(self, params: FlowInput, progress: Progress) -> FlowOutput:
        """Formulate a vial of electrolyte."""
        requested = params.electrolyte.formulation
        vial = await self.backend.formulate(_generic(requested), params.volume, progress)
        deviation = max(abs(_fractions(vial.achieved).get(k, 0.0) - x) for k, x in _fractions(requested).items())
        rating = 5 if deviation < 0.002 else 4 if deviation < 0.005 else 3
        return FlowOutput(
            run_info=RunInfo(
                formulation=_generic(requested),
                internal_reference=vial.uuid,
                formulation_info=_vial_info(vial),
                chemicals_info=_chemicals_info(requested),
            ),
            electrolyte=ElectrolyteOutput(
                formulation=vial.achieved,
                volume=vial.volume_ml,
                location=vial.location,
                meta=MethodMeta(success=True, rating=rating),
            ),
        )

    # -- cell_assembly/autobass_assembly -------------------------------------
    async def assemble(self, params: AssemblyInput, progress: Progress) -> AutoBASSOutput:
        """Assemble a batch of identical coin cells."""
        cell = params.cell
        chemistry = cell.battery_chemistry
        count = params.batch_volume or 1
        volume_ul = cell.electrolyte_volume or DEFAULT_ELECTROLYTE_UL
        separator = cell.separator.material.value if cell.separator else SeparatorMaterial.CELGARD_2325.value
        spec = CellSpec(
            electrolyte_uuid="",
            electrolyte_volume_ul=volume_ul,
            cathode_loading_mah_cm2=self._disc(chemistry.cathode, "mass_loading", "cathode_loading_mah_cm2"),
            anode_loading_mah_cm2=self._disc(chemistry.anode, "mass_loading", "anode_loading_mah_cm2"),
            cathode_area_cm2=self._disc(chemistry.cathode, "size", "cathode_area_cm2"),
            anode_area_cm2=self._disc(chemistry.anode, "size", "anode_area_cm2"),
            separator_area_cm2=(
                cell.separator.size if cell.separator and cell.separator.size else NOMINAL_BUILD["separator_area_cm2"]
            ),
            cathode_material=self._material(chemistry.cathode, "NMC811"),
            anode_material=self._material(chemistry.anode, "graphite-SiOx"),
            separator_material=separator,
        )
        need_ml = count * (volume_ul + self.backend.dispense_dead_volume_ul) / 1000.0
        vial = self._vial_for(params, need_ml)
        self.backend.check_parts(count, separator)
        if vial is None:
            vial = await self.backend.formulate(
                _generic(chemistry.electrolyte), max(0.5, need_ml * 1.1 + SPARE_VOLUME_ML), _no_progress
            )
        spec = dataclasses.replace(spec, electrolyte_uuid=vial.uuid)
        batch_id = self.backend.new_batch_id()
        margin = 10.0 * (math.sqrt(spec.anode_area_cm2 / math.pi) - math.sqrt(spec.cathode_area_cm2 / math.pi))
        outputs: list[AssemblyOutput] = []
        for index in range(count):
            try:
                made = await self.backend.assemble_cell(spec, batch_id)
            except (InstrumentFault, InstrumentStopped):
                if outputs:
                    log.warning(
                        "%s: batch %s interrupted after %d cell(s), already on the shelf: %s",
                        self.name,
                        batch_id,
                        len(outputs),
                        ", ".join(o.cell_info.uuid or "" for o in outputs),
                    )
                raise
            outputs.append(self._output(params, made, vial, batch_id, margin))
            outcome = progress((index + 1) / count, f"cell {index + 1}/{count} of batch {batch_id}")
            if inspect.isawaitable(outcome):
                await outcome
        return AutoBASSOutput(batch_output=outputs, batch_id=batch_id)

    @staticmethod
    def _disc(disc: ElectrodeDisc | None, attribute: str, default_key: str) -> float:
        value = getattr(disc, attribute, None) if disc is not None else None
        return float(value) if value is not None else float(NOMINAL_BUILD[default_key])

    @staticmethod
    def _material(disc: ElectrodeDisc | None, default: str) -> str:
        if disc is None or not disc.material:
            return default
        return " + ".join(c.chemical.SMILES for c in disc.material)

    def _vial_for(self, params: AssemblyInput, need_ml: float) -> ElectrolyteBatch | None:
        """The held vial the request names, checked; None if a new vial must be formulated.

        Raises:
            ParameterError: the named vial holds another formulation.
            StockExhausted: the named vial holds too little for the batch.
        """
        info = params.cell_info.electrolyte_info
        if info is None or not info.uuid:
            return None
        vial = self.backend.electrolyte_batch(info.uuid)
        if vial is None:
            log.info("%s: electrolyte %s is not in the rack; formulating one for the batch", self.name, info.uuid)
            return None
        if not same_formulation(vial.requested, params.cell.battery_chemistry.electrolyte):
            raise ParameterError(
                "cell_info.electrolyte_info.uuid", f"vial {vial.name} holds a different formulation than requested"
            )
        if vial.remaining_ml < need_ml:
            raise StockExhausted(f"electrolyte {vial.name}", need_ml, vial.remaining_ml, "mL")
        return vial

    def _output(
        self, params: AssemblyInput, made: AssembledCell, vial: ElectrolyteBatch, batch_id: str, margin: float
    ) -> AssemblyOutput:
        record = made.record
        chemistry = params.cell.battery_chemistry
        info = params.cell_info.model_dump()
        info.update(
            cell_name=info.get("cell_name") or record.cell_name,
            uuid=record.uuid,
            assembly_date=_today(),
            batch=batch_id,
            electrolyte_info=_vial_info(vial).model_dump(),
            cell_location=record.location.model_dump() if record.location else None,
        )
        built = Cell(
            battery_chemistry=BatteryChemistry(
                electrolyte=vial.achieved,
                anode=chemistry.anode.model_dump(mode="json") if chemistry.anode else None,
                cathode=chemistry.cathode.model_dump(mode="json") if chemistry.cathode else None,
            ),
            separator=Separator(material=record.separator_material, size=record.separator_area_cm2),
            electrolyte_volume=round(record.electrolyte_volume_ul, 2),
        )
        set_point = record.nominal_crimp_pressure_mpa
        return AssemblyOutput(
            cell_info=CellInfo.model_validate(info),
            cell=built,
            manufacturing_img=made.image,
            meta=MethodMeta(success=made.measured_offset_mm <= margin, rating=_rating(made, margin, set_point)),
            temperature=round(made.temperature_k, 2),
            sealing_time=made.sealed_at,
        )


async def _no_progress(fraction: float, message: str) -> None:
    return None
