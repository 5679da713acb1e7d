"""From an electrolyte formulation to the parameters the cell model needs.

Molar fractions become a salt concentration and a solvent blend; the blend
and the concentration give an ionic conductivity (Landesfeind & Gasteiger
2019); and the chemistry of the blend (how much EC, PC, VC, FEC, how much
LiPF6, how much free solvent) gives two ageing multipliers relative to the
reference electrolyte (1.0 M LiPF6 in EC:EMC 3:7 w/w): one on the growth of
the anode SEI, one on the loss of cathode active material. The multipliers
are phenomenological: their forms follow the trends reported in the sources
cited on each function, their coefficients are this simulator's choices,
and they equal 1 for the reference electrolyte by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.optimize import nnls

from labweave.drivers.cells import REFERENCE_ELECTROLYTE, chemical
from labweave.schemas.battery import FormulationComponent

#: Cell temperature of the cycler's climate chamber, K.
CELL_TEMPERATURE = 298.15

#: Landesfeind & Gasteiger (J. Electrochem. Soc. 166, A3079 (2019)) fits of
#: the conductivity of LiPF6 in three solvent blends, coefficients p1..p6 of
#: :func:`landesfeind_conductivity`; each blend also given as its solvent mass
#: fractions (cyclic carbonate, EMC-like linear carbonate, DMC).
LANDESFEIND_BLENDS: dict[str, tuple[tuple[float, ...], tuple[float, float, float]]] = {
    "EC:EMC 3:7": ((5.21e-1, 2.28e2, -1.06, 3.53e-1, -3.59e-3, 1.48e-3), (0.30, 0.70, 0.00)),
    "EC:DMC 1:1": ((7.98e-1, 2.28e2, -1.22, 5.09e-1, -4.00e-3, 3.79e-3), (0.50, 0.00, 0.50)),
    "EMC:FEC 19:1": ((2.51e-2, 1.75e2, 1.23, 2.05e-1, -8.81e-2, 2.83e-3), (0.05, 0.95, 0.00)),
}

#: Primary solvation number of Li+ in carbonate blends (about four carbonyl
#: oxygens; Xu, Chem. Rev. 104, 4303 (2004); Borodin & Smith, J. Phys. Chem. B
#: 113, 1763 (2009)). Solvent bound to Li+ is not free to diffuse through the SEI.
LI_SOLVATION_NUMBER = 4.0


def landesfeind_conductivity(molarity: float, temperature: float, coeffs: tuple[float, ...]) -> float:
    """Ionic conductivity of LiPF6 in one solvent blend (Landesfeind & Gasteiger 2019).

    kappa = p1 (1 + (T - p2)) c (1 + p3 sqrt(c) + p4 (1 + p5 exp(1000/T)) c)
            / (1 + c^4 p6 exp(1000/T))   [mS/cm], c in mol/L,

    the form PyBaMM ships as ``electrolyte_conductivity_base_Landesfeind2019``.

    Args:
        molarity: salt concentration, mol/L.
        temperature: K.
        coeffs: p1..p6 of the blend.

    Returns:
        Conductivity in S/m (never below 1e-6).
    """
    p1, p2, p3, p4, p5, p6 = coeffs
    c = max(molarity, 0.0)
    arrhenius = math.exp(1000.0 / temperature)
    a = p1 * (1.0 + (temperature - p2))
    b = 1.0 + p3 * math.sqrt(c) + p4 * (1.0 + p5 * arrhenius) * c
    denominator = 1.0 + c**4 * (p6 * arrhenius)
    kappa_ms_cm = a * c * b / denominator
    return max(kappa_ms_cm / 10.0, 1e-6)


@dataclass(frozen=True)
class Composition:
    """An electrolyte's formulation expressed as a lab chemist would.

    Attributes:
        salt_molarity: LiPF6, mol/L of solution.
        salt_molality: LiPF6, mol/kg of solvent.
        solvent_molarity: all solvent and additive molecules, mol/L of solution.
        mass_fractions: solvent/additive name to mass fraction of the solvent blend.
    """

    salt_molarity: float
    salt_molality: float
    solvent_molarity: float
    mass_fractions: dict[str, float] = field(default_factory=dict)

    def w(self, name: str) -> float:
        """Mass fraction of one solvent or additive in the blend (0 if absent)."""
        return self.mass_fractions.get(name, 0.0)


def composition(formulation: list[FormulationComponent]) -> Composition:
    """Salt concentration and solvent blend of a molar-fraction formulation.

    Volumes mix ideally (pure-liquid molar volumes; LiPF6 by its apparent
    molar volume, see :data:`labweave.drivers.cells.CATALOGUE`).

    Raises:
        ValueError: a chemical is not in the lab's catalogue, or there is no solvent.
    """
    salt_moles = 0.0
    solvent_moles = 0.0
    solvent_mass = 0.0
    volume_cm3 = 0.0
    masses: dict[str, float] = {}
    for comp in formulation:
        try:
            props = chemical(comp.chemical.InChIKey)
        except KeyError as exc:
            raise ValueError(str(exc)) from None
        n = comp.fraction
        volume_cm3 += n * props.molar_volume
        if props.role == "salt":
            salt_moles += n
        else:
            solvent_moles += n
            mass = n * props.molar_mass
            solvent_mass += mass
            masses[props.name] = masses.get(props.name, 0.0) + mass
    if solvent_mass <= 0:
        raise ValueError("the formulation has no solvent")
    litres = volume_cm3 / 1000.0
    return Composition(
        salt_molarity=salt_moles / litres,
        salt_molality=salt_moles / (solvent_mass / 1000.0),
        solvent_molarity=solvent_moles / litres,
        mass_fractions={k: v / solvent_mass for k, v in masses.items()},
    )


def blend_weights(comp: Composition) -> dict[str, float]:
    """Weights of the measured Landesfeind blends that best reproduce a solvent blend.

    The blend is reduced to (cyclic, EMC-like linear, DMC) mass fractions (PC,
    VC, FEC count as cyclic; DEC as EMC-like) and projected onto the convex
    hull of the three measured blends by non-negative least squares with the
    weights summing to one, so the conductivity is interpolated between
    measurements, never extrapolated beyond them.
    """
    cyclic = comp.w("EC") + comp.w("PC") + comp.w("VC") + comp.w("FEC")
    target = np.array([cyclic, comp.w("EMC") + comp.w("DEC"), comp.w("DMC")])
    names = list(LANDESFEIND_BLENDS)
    basis = np.array([LANDESFEIND_BLENDS[n][1] for n in names]).T  # 3 fractions x 3 blends
    penalty = 10.0  # enforce sum(weights) = 1 strongly
    a = np.vstack([basis, penalty * np.ones(len(names))])
    b = np.concatenate([target, [penalty]])
    weights, _ = nnls(a, b)
    weights = weights / weights.sum()
    return {n: float(w) for n, w in zip(names, weights, strict=True)}


def conductivity(comp: Composition, temperature: float = CELL_TEMPERATURE) -> float:
    """Ionic conductivity of an electrolyte, S/m.

    A log-linear mixing rule over the measured blends (ln kappa is the
    weighted mean of the blends' ln kappa at the same concentration and
    temperature), weights from :func:`blend_weights`.
    """
    weights = blend_weights(comp)
    log_kappa = sum(
        w * math.log(landesfeind_conductivity(comp.salt_molarity, temperature, LANDESFEIND_BLENDS[name][0]))
        for name, w in weights.items()
        if w > 0
    )
    return math.exp(log_kappa)


def free_solvent_molarity(comp: Composition) -> float:
    """Solvent not bound in Li+ solvation shells, mol/L (at least 5 % of all solvent).

    Solvent-diffusion-limited SEI growth is proportional to the concentration
    of solvent that can reach the anode (Ploehn, Ramadass & White, J.
    Electrochem. Soc. 151, A456 (2004)); solvent in Li+ solvation shells is
    largely unavailable, which is why concentrated electrolytes passivate
    better (Yamada et al., Nat. Energy 4, 269 (2019)).
    """
    bound = LI_SOLVATION_NUMBER * comp.salt_molarity
    return max(comp.solvent_molarity - bound, 0.05 * comp.solvent_molarity)


def _hydrolysis(comp: Composition) -> float:
    """HF generation from LiPF6 with trace water grows with the salt concentration.

    LiPF6 <-> LiF + PF5; PF5 + H2O -> POF3 + 2 HF (Lux et al., Electrochem.
    Commun. 14, 47 (2012)); HF attacks the SEI and the cathode surface.
    """
    return 1.0 + 0.25 * comp.salt_molarity


def _anode_passivation(comp: Composition) -> float:
    """How poorly the anode SEI passivates (1 = well, larger = worse).

    * EC is reduced to a compact, passivating SEI on graphite; blends with
      little EC passivate poorly (Xu, Chem. Rev. 104, 4303 (2004); Peled &
      Menkin, J. Electrochem. Soc. 164, A1703 (2017)): factor 1 + 2 exp(-w_EC/0.08).
    * VC and FEC form polymeric/LiF-rich SEI that slows further growth
      (Aurbach et al., Electrochim. Acta 47, 1423 (2002); Burns et al., J.
      Electrochem. Soc. 160, A1451 (2013)); the benefit saturates at about
      2 wt% VC and 5 wt% FEC.
    * PC without enough EC or additive co-intercalates and exfoliates
      graphite (Fong, von Sacken & Dahn, J. Electrochem. Soc. 137, 2009
      (1990)): up to a ninefold factor as PC dominates the cyclic carbonates.
    """
    w_ec, w_pc, w_vc, w_fec = comp.w("EC"), comp.w("PC"), comp.w("VC"), comp.w("FEC")
    ec = 1.0 + 2.0 * math.exp(-(w_ec + 0.5 * w_fec) / 0.08)
    additives = 1.0 + 1.5 * min(w_vc / 0.02, 1.0) + 1.0 * min(w_fec / 0.05, 1.0)
    pc_share = w_pc / (w_pc + w_ec + 4.0 * (w_vc + w_fec)) if w_pc > 0 else 0.0
    exfoliation = 1.0 + 8.0 * pc_share**2
    return ec * exfoliation / additives


def _cathode_attack(comp: Composition) -> float:
    """How hard the electrolyte attacks the Ni-rich cathode's cracked surfaces.

    * EC is chemically oxidised by lattice oxygen released from Ni-rich NMC
      at high state of charge, producing water and acids (Jung et al., J.
      Electrochem. Soc. 164, A1361 (2017)): factor 1 + 0.8 w_EC.
    * HF from LiPF6 hydrolysis dissolves transition metals (Zhan et al.,
      Energy Environ. Sci. 11, 243 (2018)): :func:`_hydrolysis`.
    * VC and FEC build a cathode interphase that slows the attack.

    Cracks let electrolyte into secondary particles, where this attack turns
    mechanical damage into lost active material (Ryu et al., Chem. Mater. 30,
    1155 (2018)); the model scales the stress-driven loss of cathode active
    material by this factor.
    """
    w_ec, w_vc, w_fec = comp.w("EC"), comp.w("VC"), comp.w("FEC")
    protection = 1.0 + 0.5 * min(w_vc / 0.02, 1.0) + 0.5 * min(w_fec / 0.05, 1.0)
    return (1.0 + 0.8 * w_ec) * _hydrolysis(comp) / protection


def interphase_resistance(comp: Composition) -> float:
    """Extra interphase resistance from VC beyond about 2 wt%, ohm cm2.

    Thicker VC-derived films raise cell impedance (Burns et al., J.
    Electrochem. Soc. 160, A1668 (2013)): 15 ohm cm2 per wt% above 2 wt%.
    """
    return 15.0 * max(comp.w("VC") - 0.02, 0.0) / 0.01


@dataclass(frozen=True)
class ElectrolyteProperties:
    """What the cell model takes from the electrolyte.

    Attributes:
        composition: concentration and blend.
        conductivity: S/m at the cell temperature.
        free_solvent_molarity: mol/L.
        sei_growth_factor: multiplier on SEI growth, 1 for the reference electrolyte.
        cathode_attack_factor: multiplier on cathode active-material loss, 1 for the reference.
        interphase_resistance: extra film resistance, ohm cm2.
    """

    composition: Composition
    conductivity: float
    free_solvent_molarity: float
    sei_growth_factor: float
    cathode_attack_factor: float
    interphase_resistance: float


def _raw(comp: Composition) -> tuple[float, float, float]:
    free = free_solvent_molarity(comp)
    sei = free * _anode_passivation(comp) * _hydrolysis(comp)
    return free, sei, _cathode_attack(comp)


@lru_cache(maxsize=1)
def _reference() -> tuple[float, float, float]:
    return _raw(composition(REFERENCE_ELECTROLYTE))


def electrolyte_properties(
    formulation: list[FormulationComponent], temperature: float = CELL_TEMPERATURE
) -> ElectrolyteProperties:
    """Map a formulation to the electrolyte properties of the cell model.

    Args:
        formulation: molar fractions of catalogue chemicals.
        temperature: K.

    Returns:
        The properties; ageing factors relative to the reference electrolyte.

    Raises:
        ValueError: unknown chemical or no solvent.
    """
    comp = composition(formulation)
    free, sei, cathode = _raw(comp)
    _, sei_ref, cathode_ref = _reference()
    return ElectrolyteProperties(
        composition=comp,
        conductivity=conductivity(comp, temperature),
        free_solvent_molarity=free,
        sei_growth_factor=sei / sei_ref,
        cathode_attack_factor=cathode / cathode_ref,
        interphase_resistance=interphase_resistance(comp),
    )
