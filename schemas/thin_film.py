"""Thin-film payloads: a pulsed-laser-deposition recipe and what a growth reports.

The recipe's bounds are those of the lab's PLD chamber (heater, gas inlet,
excimer laser, pulse counter); they are declared here, once, with their units,
so the server's capability schema, the published limitations and the
chamber's own check all come from the same numbers.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TargetMaterial(str, enum.Enum):
    """Ceramic targets the chamber's carousel can hold."""

    SRTIO3 = "SrTiO3"
    LAALO3 = "LaAlO3"
    SRRUO3 = "SrRuO3"


class SubstrateMaterial(str, enum.Enum):
    """Single-crystal substrates, (001) pseudo-cubic surfaces."""

    SRTIO3 = "SrTiO3"
    LAALO3 = "LaAlO3"
    NDGAO3 = "NdGaO3"
    DYSCO3 = "DyScO3"


class GrowthMode(str, enum.Enum):
    """How the film grew, as RHEED and the surface morphology tell it."""

    LAYER_BY_LAYER = "layer_by_layer"
    STEP_FLOW = "step_flow"
    ISLAND_3D = "island_3d"


class GrowthRecipe(BaseModel):
    """One PLD growth: what the operator sets on the chamber.

    Bounds are the chamber's: heater 300-1300 K, oxygen inlet 1e-5-100 Pa,
    excimer fluence 0.5-5 J/cm2 on the target, repetition 0.1-20 Hz, at most
    10,000 pulses per growth.
    """

    model_config = ConfigDict(extra="forbid")

    target: TargetMaterial = Field(description="Ceramic target ablated by the laser.")
    substrate: SubstrateMaterial = Field(
        default=SubstrateMaterial.SRTIO3, description="Single-crystal substrate, (001) surface."
    )
    substrate_miscut_deg: float = Field(
        default=0.1,
        ge=0.02,
        le=2.0,
        description="Vicinal miscut angle of the substrate; sets the terrace width.",
        json_schema_extra={"unit": "degree"},
    )
    laser_fluence: float = Field(
        ge=0.5, le=5.0, description="Laser fluence on the target.", json_schema_extra={"unit": "joule / centimeter ** 2"}
    )
    substrate_temperature: float = Field(
        ge=300.0, le=1300.0, description="Heater set point (substrate temperature).", json_schema_extra={"unit": "kelvin"}
    )
    oxygen_pressure: float = Field(
        ge=1e-5, le=100.0, description="Background oxygen pressure.", json_schema_extra={"unit": "pascal"}
    )
    repetition_rate: float = Field(
        ge=0.1, le=20.0, description="Laser repetition rate.", json_schema_extra={"unit": "hertz"}
    )
    pulses: int = Field(ge=1, le=10_000, description="Number of laser pulses.", json_schema_extra={"unit": "dimensionless"})


class RheedTrace(BaseModel):
    """Specular RHEED intensity sampled in time, normalised to the bare substrate."""

    model_config = ConfigDict(extra="forbid")

    time: list[float] = Field(description="Sample times from the first pulse.", json_schema_extra={"unit": "second"})
    intensity: list[float] = Field(
        description="Specular spot intensity over that of the bare substrate.", json_schema_extra={"unit": "dimensionless"}
    )
    sample_rate: float = Field(gt=0, description="Camera frame rate.", json_schema_extra={"unit": "hertz"})

    @model_validator(mode="after")
    def _same_length(self) -> RheedTrace:
        if len(self.time) != len(self.intensity):
            raise ValueError("time and intensity must have the same length")
        return self


class GrowthResult(BaseModel):
    """What a PLD growth reports: RHEED, thickness, roughness and growth mode."""

    model_config = ConfigDict(extra="forbid")

    rheed: RheedTrace
    growth_rate: float = Field(
        ge=0, description="Film grown per pulse.", json_schema_extra={"unit": "unit_cell / pulse"}
    )
    thickness_nm: float = Field(ge=0, description="Final film thickness.", json_schema_extra={"unit": "nanometer"})
    thickness_unit_cells: float = Field(
        ge=0, description="Final film thickness.", json_schema_extra={"unit": "unit_cell"}
    )
    rms_roughness_nm: float = Field(
        ge=0, description="RMS height of the final surface.", json_schema_extra={"unit": "nanometer"}
    )
    growth_mode: GrowthMode
    rheed_oscillations: int = Field(ge=0, description="Clear RHEED intensity oscillations counted in the trace.")
    step_flow_fraction: float = Field(
        ge=0, le=1, description="Share of the film incorporated at substrate steps.", json_schema_extra={"unit": "dimensionless"}
    )
    island_density_per_um2: float = Field(
        ge=0, description="Island density of the first grown layer.", json_schema_extra={"unit": "1 / micrometer ** 2"}
    )
    rheed_recovery_time: float = Field(
        ge=0, description="Mean time constant of the RHEED recovery after a pulse.", json_schema_extra={"unit": "second"}
    )
    arrival_kinetic_energy: float = Field(
        ge=0,
        description="Mean kinetic energy of plume species reaching the substrate.",
        json_schema_extra={"unit": "electron_volt"},
    )
    lattice_mismatch_percent: float = Field(
        description="(a_substrate - a_film) / a_film.", json_schema_extra={"unit": "percent"}
    )
    growth_time: float = Field(
        ge=0, description="Time from first pulse to end of recording.", json_schema_extra={"unit": "second"}
    )
    pulses_fired: int = Field(ge=0, description="Laser pulses fired in this growth.")
