"""Battery payloads: electrolyte formulation, coin-cell assembly, cycling, end of life.

The shapes are FINALES2's (BIG-MAP ``FINALES2_schemas``: quantities
``electrolyte``/``flow``, ``cell_assembly``/``autobass_assembly``,
``capacity``/``cycling`` and ``degradationEOL``/``degradation_workflow``), with
the same field names, nesting, optionality and ``unit`` annotations, so that
FINALES2 requests validate against the schemas generated here and the results
produced here validate against FINALES2's published output schemas.

Two families live here:

* generic payload models (:class:`Chemical`, :class:`FormulationComponent`,
  :class:`Cell`, :class:`CellInfo`...) as FINALES2 defines them, used in
  results and wherever any battery chemistry may appear;
* the parameter models of the lab's instruments (:class:`FlowInput`,
  :class:`AssemblyInput`, :class:`CapacityCyclingInput`), which narrow the
  generic ones to what the instruments can do: the chemicals the formulation
  robot stocks, the electrode and separator discs the assembly robot can
  handle, the voltage, current and C-rate ranges of a cycler channel. These
  bounds are declared once, here, with their units, so the capability schema,
  the published FINALES limitations and the instruments' own checks agree.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

#: Tolerance on the sum of molar fractions of a formulation.
FRACTION_SUM_TOLERANCE = 0.01


# -- generic FINALES2 payloads ---------------------------------------------


class Chemical(BaseModel):
    """A chemical identified by SMILES and InChIKey."""

    SMILES: str = Field(description="A SMILES string representing the chemical.")
    InChIKey: str = Field(description="The hashed standard International Chemical Identifier of the chemical.")


class FormulationComponent(BaseModel):
    """A chemical as a component of a formulation, with its fraction in the mixture."""

    chemical: Chemical = Field(description="The chemical, which is a component of the formulation.")
    fraction: float = Field(
        ge=0.0, le=1.0, description="The unitless fraction of the chemical in the total of the mixture."
    )
    fraction_type: str = Field(
        description="What kind of fraction is given (molar, volume, mass...). Only molar fractions "
        "('molPerMol') are supported by FINALES2."
    )


class Location(BaseModel):
    """Where a physical sample or piece of equipment can be found."""

    address: str = Field(description="The physical address (or institute) where the object can be found.")
    detail_1: str | None = Field(default=None, description="A laboratory, a device or a cabinet.")
    detail_2: str | None = Field(default=None, description="A bench, a shelf or a port in a machine.")


class FormulationInfo(BaseModel):
    """Documentation of a formulation (or an electrode or electrolyte batch)."""

    name: str | None = Field(default=None, description="A human readable name of the formulation.")
    uuid: str | None = Field(default=None, description="A unique identifier assigned to this formulation.")
    preparation_date: str | None = Field(default=None, description="The date when the formulation was prepared.")
    batch: str | None = Field(default=None, description="A batch number for the formulation.")
    location: Location | None = Field(default=None, description="Where the physical formulation can be found.")


class ChemicalInfo(BaseModel):
    """Documentation of a chemical used in a formulation."""

    name: str | None = Field(default=None, description="A human readable name of the chemical.")
    molar_mass: tuple[float, float] | None = Field(
        default=None,
        description="The molar mass of the chemical and its uncertainty.",
        json_schema_extra={"unit": "gram / mole"},
    )
    density: tuple[float, float] | None = Field(
        default=None,
        description="The density of the chemical and its uncertainty.",
        json_schema_extra={"unit": "gram / centimeter ** 3"},
    )
    batch: str | None = Field(default=None, description="A batch number of the chemical.")
    manufacturer: str | None = Field(default=None, description="The manufacturer of the chemical.")
    manufacturing_date: str | None = Field(default=None, description="The date when the chemical was made.")


class MethodMeta(BaseModel):
    """Whether a method ran successfully and how the tenant rates its data."""

    success: bool = Field(description="Whether the method finished successfully.")
    rating: int = Field(ge=0, le=5, description="Quality of the result from the tenant side, 0 (lowest) to 5.")


class RunInfo(BaseModel):
    """Metadata common to all data generated in one run of a method."""

    formulation: list[FormulationComponent] = Field(
        description="The chemicals contained in the sample and their fractions."
    )
    internal_reference: str = Field(description="An internal ID identifying this run of the method.")
    formulation_info: FormulationInfo | None = Field(default=None, description="Documentation of the formulation.")
    chemicals_info: dict[str, ChemicalInfo] | None = Field(
        default=None, description="Documentation of the chemicals, keyed by InChIKey."
    )


class Electrode(BaseModel):
    """An electrode disc."""

    material: list[FormulationComponent] = Field(description="The composition of the electrode.")
    mass_loading: float | None = Field(
        default=None,
        description="The capacity per unit area of the electrode.",
        json_schema_extra={"unit": "milliampere_hour / centimeter ** 2"},
    )
    size: float | None = Field(
        default=None,
        description="The area of the electrode, cut to a circular shape.",
        json_schema_extra={"unit": "centimeter ** 2"},
    )


class Separator(BaseModel):
    """A separator disc."""

    material: str = Field(description="The product name of the separator, e.g. Celgard 2325.")
    size: float | None = Field(
        default=None, description="The area of the circular separator.", json_schema_extra={"unit": "centimeter ** 2"}
    )


class BatteryChemistry(BaseModel):
    """The chemistry of a cell: electrolyte and electrodes."""

    # A Sequence (read-only, covariant) so that AssemblyChemistry can narrow it to the robot's
    # ElectrolyteComponent; JSON and list input validate to a list as before.
    electrolyte: Sequence[FormulationComponent] = Field(description="The composition of the electrolyte.")
    anode: Electrode | None = Field(default=None, description="The definition of the anode.")
    cathode: Electrode | None = Field(default=None, description="The definition of the cathode.")


class Cell(BaseModel):
    """A cell: its chemistry, separator and electrolyte volume."""

    battery_chemistry: BatteryChemistry = Field(description="The chemistry of the cell.")
    separator: Separator | None = Field(default=None, description="The definition of the separator.")
    electrolyte_volume: float | None = Field(
        default=None, description="The volume of electrolyte in the cell.", json_schema_extra={"unit": "microliter"}
    )


class CellInfo(BaseModel):
    """Documentation of a cell: its identity, batch, components and location."""

    cell_name: str | None = Field(default=None, description="A human readable name of the cell (e.g. CR2032).")
    uuid: str | None = Field(default=None, description="A unique identifier assigned to this cell.")
    assembly_date: str | None = Field(default=None, description="The date when the cell was made.")
    batch: str | None = Field(default=None, description="A batch number for the cells.")
    anode_info: FormulationInfo | None = Field(default=None, description="Documentation of the anode.")
    cathode_info: FormulationInfo | None = Field(default=None, description="Documentation of the cathode.")
    electrolyte_info: FormulationInfo | None = Field(default=None, description="Documentation of the electrolyte.")
    cell_location: Location | None = Field(default=None, description="Where the physical cell can be found.")


def _check_fraction_sum(components: list) -> list:
    """Molar fractions of a formulation must sum to one and name each chemical once."""
    if not components:
        raise ValueError("a formulation needs at least one component")
    total = sum(c.fraction for c in components)
    if abs(total - 1.0) > FRACTION_SUM_TOLERANCE:
        raise ValueError(f"molar fractions sum to {total:.4f}, not 1 (tolerance {FRACTION_SUM_TOLERANCE})")
    keys = [c.chemical.InChIKey for c in components]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"chemical(s) listed twice: {', '.join(str(k) for k in duplicated)}")
    return components


# -- the formulation robot's stock and the assembly robot's discs ------------


class StockedChemical(str, enum.Enum):
    """Chemicals the lab's formulation robot stocks, by InChIKey."""

    LIPF6 = "AXPLOJNSKRXQPA-UHFFFAOYSA-N"
    EC = "KMTRUDSVKNLOMY-UHFFFAOYSA-N"
    EMC = "JBTWLSYIZRCDFO-UHFFFAOYSA-N"
    DMC = "IEJIGPNLZYLLBP-UHFFFAOYSA-N"
    DEC = "OIFBSDVPJOWBCH-UHFFFAOYSA-N"
    PC = "RUOJZAUFBMNUDX-UHFFFAOYSA-N"
    VC = "VAYTZRYEBVHVLE-UHFFFAOYSA-N"
    FEC = "SBLRHMKNNHXPHG-UHFFFAOYSA-N"


class SeparatorMaterial(str, enum.Enum):
    """Separator discs the assembly robot's magazine holds."""

    CELGARD_2325 = "Celgard(R) 2325"
    CELGARD_2325_PLAIN = "Celgard 2325"
    GLASS_FIBRE = "Glasfiber"


class ElectrolyteChemical(Chemical):
    """A chemical the formulation robot stocks (identified by InChIKey)."""

    InChIKey: StockedChemical = Field(description="The InChIKey of a chemical in the robot's stock.")


class ElectrolyteComponent(FormulationComponent):
    """A component of an electrolyte the robot can formulate (molar fractions only)."""

    chemical: ElectrolyteChemical = Field(description="The chemical, one of the robot's stock.")
    fraction_type: Literal["molPerMol"] = Field(description="Molar fraction; the only type supported.")


class ElectrolyteInput(BaseModel):
    """The electrolyte to formulate."""

    formulation: list[ElectrolyteComponent] = Field(
        min_length=1, max_length=8, description="The chemicals of the electrolyte and their molar fractions."
    )

    @field_validator("formulation")
    @classmethod
    def _fractions(cls, value: list[ElectrolyteComponent]) -> list[ElectrolyteComponent]:
        return _check_fraction_sum(value)


class FlowInput(BaseModel):
    """Parameters of ``electrolyte``/``flow``: formulate a volume of electrolyte."""

    electrolyte: ElectrolyteInput = Field(description="The electrolyte formulation to prepare.")
    volume: float = Field(
        ge=0.5, le=20.0, description="The volume of electrolyte to formulate.", json_schema_extra={"unit": "milliliter"}
    )


class ElectrolyteOutput(BaseModel):
    """The electrolyte as prepared."""

    formulation: list[FormulationComponent] = Field(description="The formulation as achieved (gravimetric).")
    volume: float = Field(description="The volume prepared.", json_schema_extra={"unit": "milliliter"})
    location: Location = Field(description="Where the prepared electrolyte can be picked up.")
    meta: MethodMeta = Field(description="Success and rating of this method for this quantity.")


class FlowOutput(BaseModel):
    """Result of ``electrolyte``/``flow``."""

    run_info: RunInfo = Field(description="The formulation and the internal reference of this run.")
    electrolyte: ElectrolyteOutput = Field(description="The electrolyte prepared.")


class ElectrodeDisc(Electrode):
    """An electrode disc the assembly robot can place in a CR2032 case."""

    mass_loading: float | None = Field(
        default=None,
        ge=0.5,
        le=5.0,
        description="Areal capacity of the electrode coating.",
        json_schema_extra={"unit": "milliampere_hour / centimeter ** 2"},
    )
    size: float | None = Field(
        default=None,
        ge=0.5,
        le=2.5,
        description="Area of the circular disc (a CR2032 case holds up to about 18 mm diameter).",
        json_schema_extra={"unit": "centimeter ** 2"},
    )


class SeparatorDisc(Separator):
    """A separator disc from the robot's magazine."""

    material: SeparatorMaterial = Field(description="The separator product in the robot's magazine.")
    size: float | None = Field(
        default=None,
        ge=0.5,
        le=3.2,
        description="Area of the circular separator.",
        json_schema_extra={"unit": "centimeter ** 2"},
    )


class AssemblyChemistry(BatteryChemistry):
    """The chemistry of a cell the robot assembles."""

    electrolyte: list[ElectrolyteComponent] = Field(
        min_length=1, max_length=8, description="The electrolyte, made of the robot's stocked chemicals."
    )
    anode: ElectrodeDisc | None = Field(default=None, description="The anode disc.")
    cathode: ElectrodeDisc | None = Field(default=None, description="The cathode disc.")

    @field_validator("electrolyte")
    @classmethod
    def _fractions(cls, value: list[ElectrolyteComponent]) -> list[ElectrolyteComponent]:
        return _check_fraction_sum(value)


class AssemblyCell(Cell):
    """The cell the robot is asked to assemble."""

    battery_chemistry: AssemblyChemistry = Field(description="The chemistry of the cell.")
    separator: SeparatorDisc | None = Field(default=None, description="The separator disc.")
    electrolyte_volume: float | None = Field(
        default=None,
        ge=10.0,
        le=80.0,
        description="Electrolyte dispensed into the cell.",
        json_schema_extra={"unit": "microliter"},
    )


class AssemblyInput(BaseModel):
    """Parameters of ``cell_assembly``/``autobass_assembly``: assemble a batch of coin cells."""

    cell: AssemblyCell = Field(description="The cell to fabricate, with its chemistry.")
    cell_info: CellInfo = Field(description="Metadata of the cell, e.g. the ID of the electrolyte batch to use.")
    batch_volume: int | None = Field(
        default=None, ge=1, le=64, description="Number of cells to assemble in this batch with the same chemistry."
    )


class AssemblyOutput(BaseModel):
    """One assembled cell."""

    cell_info: CellInfo = Field(description="The metadata of the assembled cell, with its new uuid.")
    cell: Cell = Field(description="The cell as assembled (actual electrolyte volume).")
    manufacturing_img: str = Field(description="Where the cell's manufacturing images can be found.")
    meta: MethodMeta = Field(description="Success and rating of this cell's assembly.")
    temperature: float | None = Field(
        default=None, description="Temperature of cell assembly.", json_schema_extra={"unit": "kelvin"}
    )
    sealing_time: str | None = Field(default=None, description="When the cell was sealed (ISO 8601).")


class AutoBASSOutput(BaseModel):
    """Result of ``cell_assembly``/``autobass_assembly``."""

    batch_output: list[AssemblyOutput] = Field(description="One entry per cell of the batch.")
    batch_id: str = Field(description="The identifier of the assembled batch.")


# -- cycling ------------------------------------------------------------------


class CyclingCellInfo(CellInfo):
    """The cell to cycle; its uuid says which physical cell to put on a channel."""

    uuid: str = Field(min_length=1, max_length=200, description="The identifier of the cell to cycle.")


class CapacityCyclingInput(BaseModel):
    """Parameters of ``capacity``/``cycling``: a formation and cycling protocol for one cell.

    Currents are C-rate times ``capacity``, as on a real cycler; ``V_max`` and
    ``V_min`` bound the formation cycles, ``cycling_V_max``/``cycling_V_min``
    the cycles that follow. Bounds are those of a cycler channel (±5 A) and of
    the cell chemistry's stable voltage window.
    """

    cycling_protocol: Literal["BIG-MAP-Standard"] = Field(description="The name of the cycling protocol.")
    number_cycles: int = Field(ge=1, le=1000, description="Number of cycles after formation.")
    cell_info: CyclingCellInfo = Field(description="The cell to cycle.")
    location: Location = Field(description="The cycler (and channel group) to use.")
    reservation_number: str = Field(description="The reservation of the cycler channel.")
    I_max: float | None = Field(
        default=None, ge=1e-5, le=5.0, description="Largest current allowed.", json_schema_extra={"unit": "ampere"}
    )
    V_max: float | None = Field(
        default=None, ge=3.8, le=4.2, description="Upper voltage limit.", json_schema_extra={"unit": "volt"}
    )
    V_min: float | None = Field(
        default=None, ge=2.5, le=3.5, description="Lower voltage limit.", json_schema_extra={"unit": "volt"}
    )
    capacity: float | None = Field(
        default=None,
        ge=1e-5,
        le=0.1,
        description="Nominal capacity of the cell; C-rates refer to it.",
        json_schema_extra={"unit": "ampere_hour"},
    )
    c_rate_charge_formation: float | None = Field(
        default=None, ge=0.02, le=2.0, description="Charge C-rate of formation.", json_schema_extra={"unit": "1 / hour"}
    )
    c_rate_discharge_formation: float | None = Field(
        default=None,
        ge=0.02,
        le=2.0,
        description="Discharge C-rate of formation.",
        json_schema_extra={"unit": "1 / hour"},
    )
    CV_I_cutoff_formation: float | None = Field(
        default=None,
        ge=1e-6,
        le=5.0,
        description="Current ending the constant-voltage hold of formation.",
        json_schema_extra={"unit": "ampere"},
    )
    repetions_formation_cycle: int | None = Field(default=None, ge=0, le=10, description="Number of formation cycles.")
    cycling_V_max: float | None = Field(
        default=None, ge=3.8, le=4.2, description="Upper voltage of cycling.", json_schema_extra={"unit": "volt"}
    )
    cycling_V_min: float | None = Field(
        default=None, ge=2.5, le=3.5, description="Lower voltage of cycling.", json_schema_extra={"unit": "volt"}
    )
    c_rate_charge: float | None = Field(
        default=None, ge=0.1, le=3.0, description="Charge C-rate of cycling.", json_schema_extra={"unit": "1 / hour"}
    )
    c_rate_discharge: float | None = Field(
        default=None, ge=0.1, le=5.0, description="Discharge C-rate of cycling.", json_schema_extra={"unit": "1 / hour"}
    )
    CV_I_cutoff: float | None = Field(
        default=None,
        ge=1e-6,
        le=5.0,
        description="Current ending the constant-voltage hold of cycling.",
        json_schema_extra={"unit": "ampere"},
    )
    protocol: dict[str, Any] | None = Field(
        default=None,
        description="A cycling protocol in aurora-unicycler's format (labweave addition): when given, its steps "
                    "set the voltage windows, C-rates, CV cut-offs and cycle counts; a step the cycler cannot run "
                    "is refused by name.",
    )


class CapacityCyclingOutput(BaseModel):
    """Result of ``capacity``/``cycling``.

    The first six fields are FINALES2's; the others are labweave additions,
    which FINALES2's output schema admits (it does not forbid extra fields).
    Cycle ``n`` (1-based) is the ``n``-th cycle after formation; a cycle is a
    charge (CC, then CV) followed by a discharge.
    """

    capacity_list: list[float] = Field(
        description="Discharge capacity of each cycle after formation.",
        json_schema_extra={"unit": "milliampere_hour"},
    )
    channel_list: list[int] = Field(description="The cycler channel(s) the cell was cycled on.")
    cell_info: CellInfo = Field(description="The cell that was cycled.")
    delta_coulombic_efficiency: float | None = Field(
        default=None, description="Coulombic efficiency of the last cycle minus that of the early reference cycle."
    )
    voltage_gap_charge_discharge: float | None = Field(
        default=None,
        description="Mean charge voltage minus mean discharge voltage of the last cycle.",
        json_schema_extra={"unit": "volt"},
    )
    capacity_vector_variance: float | None = Field(
        default=None,
        description="log10 of the variance of Q_last(V) - Q_early(V) over the discharge curves (Severson et al. 2019).",
    )
    coulombic_efficiency_list: list[float] | None = Field(
        default=None, description="Discharge over charge capacity of each cycle after formation."
    )
    charge_capacity_list: list[float] | None = Field(
        default=None,
        description="Charge capacity (CC plus CV) of each cycle after formation.",
        json_schema_extra={"unit": "milliampere_hour"},
    )
    formation_capacity_list: list[float] | None = Field(
        default=None,
        description="Discharge capacity of each formation cycle.",
        json_schema_extra={"unit": "milliampere_hour"},
    )
    end_of_life_cycle: int | None = Field(
        default=None,
        ge=1,
        description="First cycle whose discharge capacity is below end_of_life_threshold times that of cycle 1, "
        "or the cycle at which the test was aborted; null if neither happened.",
    )
    end_of_life_threshold: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Capacity retention defining end of life."
    )
    average_charging_rate: float | None = Field(
        default=None,
        description="Mean charge C-rate over all cycles, formation included.",
        json_schema_extra={"unit": "1 / hour"},
    )
    maximum_charging_rate: float | None = Field(
        default=None, description="Largest charge C-rate applied.", json_schema_extra={"unit": "1 / hour"}
    )
    minimum_charging_rate: float | None = Field(
        default=None, description="Smallest charge C-rate applied.", json_schema_extra={"unit": "1 / hour"}
    )
    test_completed: bool | None = Field(default=None, description="Whether every requested cycle was run.")
    abort_reason: str | None = Field(default=None, description="Why the cycler stopped the test early, if it did.")


# -- end of life ----------------------------------------------------------------


class DegradationEOLInput(BaseModel):
    """Parameters of ``degradationEOL``: the chemistry whose cycle life is wanted."""

    battery_chemistry: BatteryChemistry = Field(description="The chemistry of the cells.")
    input_cycles: list[float] | None = Field(default=None, description="Capacities of the cycles measured so far.")
    average_charging_rate: float | None = Field(
        default=None, description="Mean charge C-rate.", json_schema_extra={"unit": "1 / hour"}
    )
    maximum_charging_rate: float | None = Field(
        default=None, description="Largest charge C-rate.", json_schema_extra={"unit": "1 / hour"}
    )
    minimum_charging_rate: float | None = Field(
        default=None, description="Smallest charge C-rate.", json_schema_extra={"unit": "1 / hour"}
    )
    delta_coulombic_efficiency: float | None = Field(default=None, description="Change of coulombic efficiency.")
    voltage_gap_charge_discharge: float | None = Field(
        default=None, description="Mean charge minus mean discharge voltage.", json_schema_extra={"unit": "volt"}
    )
    capacity_vector_variance: float | None = Field(default=None, description="log10 variance of Q(V) difference.")
    cell_info: CellInfo = Field(description="Metadata of the cells.")


class DegradationEOLOutput(BaseModel):
    """End of life of one cell: the cycle reaching the threshold, and the capacity trajectory."""

    end_of_life: int = Field(ge=1, description="The cycle at which the cell reaches end of life.")
    end_of_life_uncertainty: float = Field(ge=0.0, description="Standard uncertainty of end_of_life, in cycles.")
    capacity_trajectory: list[float] = Field(
        description="Discharge capacity per cycle.", json_schema_extra={"unit": "milliampere_hour"}
    )
    capacity_trajectory_uncertainty: list[float] = Field(
        description="Standard uncertainty of each capacity.", json_schema_extra={"unit": "milliampere_hour"}
    )
    meta: MethodMeta = Field(description="Success and rating of this estimate.")
    cell_info: CellInfo = Field(description="The cell this estimate is for.")


class DegradationWorkflowOutput(BaseModel):
    """Result of ``degradationEOL``/``degradation_workflow``."""

    run_info: RunInfo = Field(description="The formulation and internal reference of the workflow run.")
    degradationEOL: list[DegradationEOLOutput] = Field(description="One entry per cycled cell.")
