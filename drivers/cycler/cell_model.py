"""A coin cell as PyBaMM parameters: geometry, resistances and ageing rates.

The electrochemistry is PyBaMM's single-particle model with solvent-diffusion
limited SEI growth, SEI film resistance, stress-driven loss of active material
and a lumped series resistance, on the ``OKane2022`` parameter set (LG M50:
NMC811 against graphite-SiOx; O'Kane et al., Phys. Chem. Chem. Phys. 24, 7909
(2022)), which carries the SEI and mechanical-degradation parameters. Why two
ageing mechanisms: SEI growth is driven by time (it is what the electrolyte
controls), while stress-driven loss of active material is driven by the
concentration gradients in the particles, which grow with current, so that
a cell cycled faster loses more per cycle (Reniers, Mulder & Howey, J.
Electrochem. Soc. 166, A3189 (2019)). Pure time-driven SEI alone would make
faster cycling look *longer*-lived per cycle.

Scaling to a coin cell: the M50's electrodes are cut to the overlap of the
coin cell's discs, their thicknesses scaled by the requested areal loadings
relative to the M50's 4.87 mAh/cm2 (so anode and cathode at equal loadings
keep the M50's balance), and ``Nominal cell capacity [A.h]`` scaled with them.

Ageing acceleration: with OKane2022's own rates the coin cell loses only
1-2 % of its capacity in 100 cycles at 1C, so no test would reach end of
life. Here the SEI solvent diffusivity is multiplied by
:data:`SEI_ACCELERATION` and both electrodes' LAM rate constants by
:data:`LAM_ACCELERATION`, so that a reference cell (reference electrolyte,
1C/1C, 25 °C) loses about 6 % of its first-cycle capacity in 40 cycles and
reaches 80 % after roughly 150 cycles; simulated campaigns stay short while
the trends (rate, formulation, defects) are the model's. The SEI is
accelerated more than the LAM, so that lithium lost to the SEI is the main
fade mode, as in graphite | NMC cells cycled within their voltage window
(Birkl et al., J. Power Sources 341, 373 (2017)), and the electrolyte, which
sets the SEI's growth, weighs on the cycle life as it does in practice (a
0.4 M salt in EMC alone takes about a third off it, 2 wt% VC adds about a
third), while stress-driven LAM keeps faster cycling costly (2C/2C: about
two thirds of the 1C life). Reported cycle
numbers are those of this accelerated cell; nothing is extrapolated by the
cycler (the end-of-life extrapolation of :mod:`.analysis` is separate and
labelled as such).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pybamm

from labweave.drivers.cells import CellRecord
from labweave.drivers.cycler.formulation import CELL_TEMPERATURE, ElectrolyteProperties

#: PyBaMM model options of the simulated cell.
MODEL_OPTIONS = {
    "SEI": "solvent-diffusion limited",
    "SEI film resistance": "distributed",
    "loss of active material": "stress-driven",
    "contact resistance": "true",
}

#: Multiplier on OKane2022's SEI solvent diffusivity (see module docstring).
SEI_ACCELERATION = 3000.0
#: Multiplier on OKane2022's stress-driven LAM rate constants.
LAM_ACCELERATION = 80.0
#: Largest electrolyte ageing multiplier the model accepts (beyond it the cell
#: is dead within formation anyway and the solver only gets stiffer).
MAX_ELECTROLYTE_FACTOR = 30.0

#: Areal capacity of OKane2022's electrodes: 5 Ah over 0.065 m x 1.58 m.
REFERENCE_AREAL_CAPACITY = 5.0 / (0.065 * 1.58) / 10.0  # mAh/cm2

#: Separator products: thickness (m) and porosity. Celgard 2325: 25 um
#: PP/PE/PP, 39 % (manufacturer data sheet); borosilicate glass fibre
#: (Whatman GF/A class), about 260 um, 90 %.
SEPARATORS = {
    "Celgard(R) 2325": (25e-6, 0.39),
    "Celgard 2325": (25e-6, 0.39),
    "Glasfiber": (260e-6, 0.90),
}

#: Series resistance of CR2032 hardware (case, spacer, spring contacts) at the
#: nominal crimp pressure, ohm.
HARDWARE_RESISTANCE = 2.0
#: Bruggeman exponent for porous media.
BRUGGEMAN = 1.5


def overlap_fraction(cathode_area_cm2: float, anode_area_cm2: float, offset_mm: float) -> float:
    """Fraction of the cathode disc facing the anode disc (area of two circles' lens).

    Args:
        cathode_area_cm2: cathode disc area.
        anode_area_cm2: anode disc area.
        offset_mm: centre-to-centre offset.

    Returns:
        Facing area over cathode area, 0..1.
    """
    r1 = math.sqrt(cathode_area_cm2 / math.pi) * 10.0  # mm
    r2 = math.sqrt(anode_area_cm2 / math.pi) * 10.0
    d = offset_mm
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r2 - r1):
        return min(r1, r2) ** 2 / r1**2
    a1 = r1**2 * math.acos((d**2 + r1**2 - r2**2) / (2 * d * r1))
    a2 = r2**2 * math.acos((d**2 + r2**2 - r1**2) / (2 * d * r2))
    a3 = 0.5 * math.sqrt((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2))
    return (a1 + a2 - a3) / (math.pi * r1**2)


def contact_resistance(crimp_pressure: float, nominal_pressure: float) -> float:
    """Hardware contact resistance at a crimp pressure, ohm.

    Constriction resistance of plastically deformed contacts scales as
    force^(-1/2) (Holm, Electric Contacts, 4th ed., Springer 1967).
    """
    return HARDWARE_RESISTANCE * math.sqrt(nominal_pressure / max(crimp_pressure, 1e-3))


@dataclass(frozen=True)
class CellDesign:
    """The coin cell as the model sees it.

    Attributes:
        area_m2: electrode area taking part (facing and wetted).
        negative_thickness_m, positive_thickness_m: scaled electrode thicknesses.
        nominal_capacity_ah: capacity the model scales its currents to.
        series_resistance_ohm: electrolyte, hardware and extra interphase resistance.
        sei_factor: electrolyte and defect multiplier on SEI growth.
        cathode_lam_factor: electrolyte and defect multiplier on cathode LAM.
        salt_concentration: mol/m3.
        wetted_fraction: share of electrode pores filled with electrolyte.
        separator_saturation: share of separator pores filled.
    """

    area_m2: float
    negative_thickness_m: float
    positive_thickness_m: float
    nominal_capacity_ah: float
    series_resistance_ohm: float
    sei_factor: float
    cathode_lam_factor: float
    salt_concentration: float
    wetted_fraction: float
    separator_saturation: float


def design_cell(record: CellRecord, electrolyte: ElectrolyteProperties, base: pybamm.ParameterValues) -> CellDesign:
    """Turn a shelf record and its electrolyte into the model's cell design.

    * Facing area: the lens of the two discs at the recorded alignment offset.
    * Wetting: electrolyte fills the electrode pores first (finer pores, by
      capillarity), then the separator; unwetted electrode is inactive, a
      partly filled separator conducts as (porosity x saturation)^1.5.
    * Series resistance: ionic resistance of separator and electrodes,
      R = [L_s/(kappa (eps_s S)^1.5) + (L_n/eps_n^1.5 + L_p/eps_p^1.5)/(3 kappa)] / A
      (a porous electrode under uniform reaction adds a third of its ionic
      resistance; Ogihara et al., J. Electrochem. Soc. 159, A1034 (2012)),
      plus the hardware contact (:func:`contact_resistance`) and any extra
      interphase film.
    * Defects: a leaking seal lets moisture in and electrolyte out,
      multiplying SEI growth by 1 + 4 severity and cathode attack by
      1 + 2 severity.

    Args:
        record: the physical cell.
        electrolyte: its electrolyte's properties.
        base: the OKane2022 parameter values (not modified).

    Returns:
        The design.
    """
    scale_p = record.cathode_loading_mah_cm2 / REFERENCE_AREAL_CAPACITY
    scale_n = record.anode_loading_mah_cm2 / REFERENCE_AREAL_CAPACITY
    thick_n = base["Negative electrode thickness [m]"] * scale_n
    thick_p = base["Positive electrode thickness [m]"] * scale_p
    eps_n = base["Negative electrode porosity"]
    eps_p = base["Positive electrode porosity"]
    facing_cm2 = record.cathode_area_cm2 * overlap_fraction(
        record.cathode_area_cm2, record.anode_area_cm2, record.alignment_offset_mm
    )

    sep_thick, sep_eps = SEPARATORS.get(record.separator_material, SEPARATORS["Celgard(R) 2325"])
    electrode_pores_ul = (record.cathode_area_cm2 * thick_p * eps_p + record.anode_area_cm2 * thick_n * eps_n) * 1e5
    separator_pores_ul = record.separator_area_cm2 * sep_thick * sep_eps * 1e5
    volume = record.electrolyte_volume_ul
    wetted = min(1.0, volume / electrode_pores_ul)
    saturation = min(1.0, max(volume - electrode_pores_ul, 0.0) / separator_pores_ul)
    saturation = max(saturation, 0.02)  # a film on the fibres still conducts a little

    area_cm2 = max(facing_cm2 * wetted, 1e-3)
    area_m2 = area_cm2 * 1e-4
    kappa = electrolyte.conductivity
    ionic = (
        sep_thick / (kappa * (sep_eps * saturation) ** BRUGGEMAN)
        + (thick_n / eps_n**BRUGGEMAN + thick_p / eps_p**BRUGGEMAN) / (3.0 * kappa)
    ) / area_m2
    series = (
        ionic
        + contact_resistance(record.crimp_pressure_mpa, record.nominal_crimp_pressure_mpa)
        + electrolyte.interphase_resistance / area_cm2
    )

    sei_factor = min(electrolyte.sei_growth_factor, MAX_ELECTROLYTE_FACTOR)
    cathode_factor = min(electrolyte.cathode_attack_factor, MAX_ELECTROLYTE_FACTOR)
    for defect in record.defects:
        if defect.kind == "leak":
            sei_factor *= 1.0 + 4.0 * defect.severity
            cathode_factor *= 1.0 + 2.0 * defect.severity

    return CellDesign(
        area_m2=area_m2,
        negative_thickness_m=thick_n,
        positive_thickness_m=thick_p,
        nominal_capacity_ah=record.cathode_loading_mah_cm2 * area_cm2 / 1000.0,
        series_resistance_ohm=series,
        sei_factor=sei_factor,
        cathode_lam_factor=cathode_factor,
        salt_concentration=max(electrolyte.composition.salt_molarity * 1000.0, 50.0),
        wetted_fraction=wetted,
        separator_saturation=saturation,
    )


def base_parameters() -> pybamm.ParameterValues:
    """A fresh copy of the OKane2022 parameter set."""
    return pybamm.ParameterValues("OKane2022")


def parameter_values(
    design: CellDesign, base: pybamm.ParameterValues, v_min: float, v_max: float
) -> pybamm.ParameterValues:
    """PyBaMM parameter values of a designed coin cell.

    Args:
        design: from :func:`design_cell`.
        base: OKane2022 values (copied, not modified).
        v_min, v_max: the protocol's voltage window; the model's own cut-offs
            are set just outside it so only the protocol ends steps.

    Returns:
        The parameter values.
    """
    values = base.copy()
    side = math.sqrt(design.area_m2)
    values.update(
        {
            "Electrode height [m]": side,
            "Electrode width [m]": side,
            "Negative electrode thickness [m]": design.negative_thickness_m,
            "Positive electrode thickness [m]": design.positive_thickness_m,
            "Nominal cell capacity [A.h]": design.nominal_capacity_ah,
            "Contact resistance [Ohm]": design.series_resistance_ohm,
            "Initial concentration in electrolyte [mol.m-3]": design.salt_concentration,
            "SEI solvent diffusivity [m2.s-1]": base["SEI solvent diffusivity [m2.s-1]"]
            * SEI_ACCELERATION
            * design.sei_factor,
            "Negative electrode LAM constant proportional term [s-1]": base[
                "Negative electrode LAM constant proportional term [s-1]"
            ]
            * LAM_ACCELERATION,
            "Positive electrode LAM constant proportional term [s-1]": base[
                "Positive electrode LAM constant proportional term [s-1]"
            ]
            * LAM_ACCELERATION
            * design.cathode_lam_factor,
            "Lower voltage cut-off [V]": max(v_min - 0.3, 2.0),
            "Upper voltage cut-off [V]": v_max + 0.15,
            "Ambient temperature [K]": CELL_TEMPERATURE,
            "Initial temperature [K]": CELL_TEMPERATURE,
        }
    )
    return values


def build_model() -> pybamm.lithium_ion.SPM:
    """The single-particle model with the ageing submodels of :data:`MODEL_OPTIONS`."""
    return pybamm.lithium_ion.SPM(dict(MODEL_OPTIONS))
