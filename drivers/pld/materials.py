"""Properties of the chamber's targets and substrates.

Lattice parameters are the room-temperature (pseudo-)cubic values. The
ablation thresholds (KrF, 248 nm) and the kinetic parameters are effective
values of the growth model, chosen inside the ranges reported for these
oxides and calibrated so that SrTiO3 homoepitaxy reproduces the observed
sequence of growth modes (Lippmaa et al., Appl. Phys. Lett. 76, 2439 (2000);
Koster et al., Appl. Phys. Lett. 74, 3729 (1999)): at 2 J/cm2, 1 Pa, 1 Hz
on a 0.1 deg substrate the model grows 3D islands below ~800 K and layer by
layer from ~900 K; at low dose per pulse (1-1.2 J/cm2) and 0.2-0.5 deg
miscut it grows by step flow from ~1200 K. SrRuO3, known to switch to step
flow at lower temperature than SrTiO3 (Choi et al., Appl. Phys. Lett. 79,
1447 (2001)), does so here ~100 K lower at the same dose; LaAlO3 needs a
higher fluence (higher ablation threshold) and temperature.

The "diffusion" energies are those of the slow, effective surface transport
of oxide growth units that sets the RHEED recovery after a pulse (seconds at
growth temperature, Ulbrandt et al. arXiv:2509.19181), not the hopping of a
single adatom.
"""

from __future__ import annotations

from dataclasses import dataclass

from labweave.schemas.thin_film import SubstrateMaterial, TargetMaterial

from .growth import SurfaceKinetics

#: Atomic mass unit (kg).
AMU = 1.66053906660e-27


@dataclass(frozen=True)
class TargetProperties:
    """One ceramic target and the kinetics of the film it grows.

    Attributes:
        lattice_nm: pseudo-cubic lattice parameter of the film (nm); one unit
            cell is one growth unit on one surface site.
        formula_mass_amu: mass of one formula unit (amu).
        atoms_per_formula: atoms in one formula unit (plume species are
            mostly atoms and monoxides; their mean mass sets the kinetic energy).
        ablation_threshold: KrF fluence at which ablation starts (J/cm2).
        optical_penetration_nm: effective optical penetration depth 1/alpha
            of the logarithmic ablation law (nm).
        diffusion_barrier_ev: activation energy of surface transport (eV).
        attempt_frequency: prefactor of surface transport (1/s).
        schwoebel_barrier_ev: additional Ehrlich-Schwoebel barrier for a
            growth unit to descend a step edge (eV).
        critical_nucleus: size i of the critical nucleus (growth units).
        nucleus_binding_ev: binding energy E_i of the critical nucleus (eV).
        nucleation_prefactor: sigma_i C_i of the nucleation rate (capture
            number times the statistical weight of the critical cluster); small
            for multi-cation oxide clusters, whose critical nucleus must hold
            the right cation ratio.
    """

    lattice_nm: float
    formula_mass_amu: float
    atoms_per_formula: int
    ablation_threshold: float
    optical_penetration_nm: float
    diffusion_barrier_ev: float
    attempt_frequency: float
    schwoebel_barrier_ev: float
    critical_nucleus: int
    nucleus_binding_ev: float
    nucleation_prefactor: float

    @property
    def species_mass_kg(self) -> float:
        """Mean mass of one plume species (kg)."""
        return self.formula_mass_amu / self.atoms_per_formula * AMU

    def surface_kinetics(self, temperature: float, miscut_deg: float) -> SurfaceKinetics:
        """The rates of this film's surface processes at ``temperature`` (K) on a substrate cut
        ``miscut_deg`` off its axis."""
        return SurfaceKinetics.at(
            temperature=temperature,
            diffusion_barrier_ev=self.diffusion_barrier_ev,
            attempt_frequency=self.attempt_frequency,
            schwoebel_barrier_ev=self.schwoebel_barrier_ev,
            critical_nucleus=self.critical_nucleus,
            nucleus_binding_ev=self.nucleus_binding_ev,
            nucleation_prefactor=self.nucleation_prefactor,
            lattice_nm=self.lattice_nm,
            miscut_deg=miscut_deg,
        )


TARGETS: dict[TargetMaterial, TargetProperties] = {
    TargetMaterial.SRTIO3: TargetProperties(
        lattice_nm=0.3905,
        formula_mass_amu=183.49,
        atoms_per_formula=5,
        ablation_threshold=0.8,
        optical_penetration_nm=16.0,
        diffusion_barrier_ev=1.90,
        attempt_frequency=1e13,
        schwoebel_barrier_ev=0.12,
        critical_nucleus=3,
        nucleus_binding_ev=0.90,
        nucleation_prefactor=1e-06,
    ),
    TargetMaterial.LAALO3: TargetProperties(
        lattice_nm=0.3790,
        formula_mass_amu=213.89,
        atoms_per_formula=5,
        ablation_threshold=1.1,
        optical_penetration_nm=14.0,
        diffusion_barrier_ev=2.00,
        attempt_frequency=1e13,
        schwoebel_barrier_ev=0.15,
        critical_nucleus=3,
        nucleus_binding_ev=1.00,
        nucleation_prefactor=1e-06,
    ),
    TargetMaterial.SRRUO3: TargetProperties(
        lattice_nm=0.3930,
        formula_mass_amu=236.69,
        atoms_per_formula=5,
        ablation_threshold=0.6,
        optical_penetration_nm=18.0,
        diffusion_barrier_ev=1.80,
        attempt_frequency=1e13,
        schwoebel_barrier_ev=0.10,
        critical_nucleus=3,
        nucleus_binding_ev=0.60,
        nucleation_prefactor=1e-06,
    ),
}


@dataclass(frozen=True)
class SubstrateProperties:
    """A single-crystal substrate: its (pseudo-)cubic surface lattice parameter (nm)."""

    lattice_nm: float


SUBSTRATES: dict[SubstrateMaterial, SubstrateProperties] = {
    SubstrateMaterial.SRTIO3: SubstrateProperties(lattice_nm=0.3905),
    SubstrateMaterial.LAALO3: SubstrateProperties(lattice_nm=0.3790),
    SubstrateMaterial.NDGAO3: SubstrateProperties(lattice_nm=0.3864),
    SubstrateMaterial.DYSCO3: SubstrateProperties(lattice_nm=0.3944),
}


def lattice_mismatch(target: TargetMaterial, substrate: SubstrateMaterial) -> float:
    """Misfit f = (a_substrate - a_film) / a_film (dimensionless).

    Args:
        target: the film's target material.
        substrate: the substrate.

    Returns:
        The misfit; positive means the film is under in-plane tension.
    """
    a_film = TARGETS[target].lattice_nm
    return (SUBSTRATES[substrate].lattice_nm - a_film) / a_film
