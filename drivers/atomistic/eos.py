"""Relaxation and equation of state: the equilibrium volume and bulk modulus.

The procedure, identical for every method:

1. Relax atomic positions and the cell volume together (BFGS on ASE's
   ``FrechetCellFilter`` with hydrostatic strain, so the cell keeps its
   shape) until every force and the cell stress fall below ``fmax``.
2. Sample the energy at seven volumes, linear strains -3 % ... +3 % around the
   relaxed cell (fractional coordinates kept), and fit the third-order
   Birch-Murnaghan equation of state (Birch, Phys. Rev. 71, 809 (1947)). The
   fit is linear: E is a cubic polynomial in x = V^(-2/3) (the Eulerian
   strain form); V0 is its stationary point, B0 = V d2E/dV2 at V0 and
   B0' = dB/dP there.
3. If V0 falls outside the sampled volumes (or the energies have no minimum
   there) the scan is recentred once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa

log = logging.getLogger(__name__)

#: Linear strains of the EOS scan.
EOS_STRAINS = np.linspace(-0.03, 0.03, 7)


@dataclass(frozen=True)
class Relaxation:
    """Outcome of a relaxation."""

    steps: int
    max_force: float
    converged: bool


@dataclass(frozen=True)
class EosFit:
    """A third-order Birch-Murnaghan fit, per atom.

    Attributes:
        volume: V0 (angstrom^3/atom).
        energy: E0 (eV/atom).
        bulk_modulus: B0 (GPa).
        bulk_modulus_derivative: B0'.
        residual: RMS residual of the fit (eV/atom).
        inside: whether V0 lies within the sampled volumes.
    """

    volume: float
    energy: float
    bulk_modulus: float
    bulk_modulus_derivative: float
    residual: float
    inside: bool


def relax(
    atoms: Atoms, fmax: float, max_steps: int, check_stop: Callable[[], None] | None = None, cell: bool = True
) -> Relaxation:
    """Relax positions and (with ``cell``) the volume in place (the atoms carry their calculator).

    Args:
        atoms: atoms with a calculator attached.
        fmax: convergence of forces and stress (eV/angstrom).
        max_steps: most optimizer steps.
        check_stop: called after every step; raises to abandon the relaxation.
        cell: relax the volume too; without it the positions relax in the
            fixed cell and the equation-of-state scan alone finds the volume.

    Returns:
        Steps taken, largest residual force, and whether fmax was reached.
    """
    if cell:
        # ASE annotates ``atoms: Atoms``, but its optimizers take a cell filter (its documented use).
        optimizer = BFGS(FrechetCellFilter(atoms, hydrostatic_strain=True), logfile=None)  # type: ignore[arg-type]
    else:
        optimizer = BFGS(atoms, logfile=None)
    if check_stop is not None:
        optimizer.attach(check_stop, interval=1)
    converged = bool(optimizer.run(fmax=fmax, steps=max_steps))
    forces = atoms.get_forces()
    max_force = float(np.sqrt((forces**2).sum(axis=1)).max())
    return Relaxation(steps=int(optimizer.nsteps), max_force=max_force, converged=converged)


def fit_birch_murnaghan(volumes: np.ndarray, energies: np.ndarray) -> EosFit:
    """Fit E(V) per atom with the third-order Birch-Murnaghan form.

    Args:
        volumes: volumes per atom (angstrom^3), at least 4.
        energies: energies per atom (eV).

    Returns:
        The fit.

    Raises:
        ValueError: the energies have no minimum near the sampled volumes.
    """
    x = volumes ** (-2.0 / 3.0)
    poly = np.polynomial.Polynomial.fit(x, energies, 3).convert()
    d1, d2, d3 = poly.deriv(1), poly.deriv(2), poly.deriv(3)
    roots = [float(r.real) for r in np.asarray(d1.roots(), dtype=complex) if abs(r.imag) < 1e-12 and r.real > 0 and d2(r.real) > 0]
    if not roots:
        raise ValueError("the energy has no minimum near the sampled volumes")
    x0 = min(roots, key=lambda r: abs(r - x.mean()))
    v0 = x0 ** (-1.5)
    # dx/dV = -(2/3) V^(-5/3); at the minimum dE/dx = 0, so
    # B = V d2E/dV2 = V (dx/dV)^2 E''(x) and dB/dP = -(V/B) dB/dV.
    dxdv = -(2.0 / 3.0) * v0 ** (-5.0 / 3.0)
    d2xdv2 = (10.0 / 9.0) * v0 ** (-8.0 / 3.0)
    b0 = v0 * dxdv**2 * d2(x0)
    # dB/dV = d2E/dV2 + V d3E/dV3; at V0 (E'(x0) = 0):
    # d2E/dV2 = E'' x'^2, d3E/dV3 = E''' x'^3 + 3 E'' x' x''.
    d2e = d2(x0) * dxdv**2
    d3e = d3(x0) * dxdv**3 + 3.0 * d2(x0) * dxdv * d2xdv2
    b0_prime = -(d2e + v0 * d3e) / d2e
    residual = float(np.sqrt(np.mean((poly(x) - energies) ** 2)))
    inside = bool(volumes.min() <= v0 <= volumes.max())
    return EosFit(
        volume=float(v0),
        energy=float(poly(x0)),
        bulk_modulus=float(b0 / GPa),
        bulk_modulus_derivative=float(b0_prime),
        residual=residual,
        inside=inside,
    )


def birch_murnaghan_energy(volume: float, energy: float, volume0: float, bulk_modulus: float,
                           bulk_modulus_derivative: float) -> float:
    """E(V) per atom of a third-order Birch-Murnaghan equation of state.

    Args:
        volume: V (angstrom^3/atom).
        energy: E0 (eV/atom).
        volume0: V0 (angstrom^3/atom).
        bulk_modulus: B0 (GPa).
        bulk_modulus_derivative: B0'.

    Returns:
        E0 + 9 V0 B0 / 16 [(eta - 1)^3 B0' + (eta - 1)^2 (6 - 4 eta)], eta = (V0/V)^(2/3) (eV/atom).
    """
    eta = (volume0 / volume) ** (2.0 / 3.0)
    b0 = bulk_modulus * GPa
    return energy + 9.0 * volume0 * b0 / 16.0 * ((eta - 1.0) ** 3 * bulk_modulus_derivative
                                                   + (eta - 1.0) ** 2 * (6.0 - 4.0 * eta))



def birch_murnaghan_pressure(volume: float, volume0: float, bulk_modulus: float,
                             bulk_modulus_derivative: float) -> float:
    """P(V) = -dE/dV of the third-order Birch-Murnaghan equation of state (:func:`birch_murnaghan_energy`).

    Args:
        volume: V (angstrom^3/atom).
        volume0: V0 (angstrom^3/atom).
        bulk_modulus: B0 (GPa).
        bulk_modulus_derivative: B0'.

    Returns:
        3 B0 / 2 [(V0/V)^(7/3) - (V0/V)^(5/3)] [1 + 3/4 (B0' - 4) ((V0/V)^(2/3) - 1)] (GPa; positive
        when compressed).
    """
    ratio = volume0 / volume
    eta = ratio ** (2.0 / 3.0)
    return 1.5 * bulk_modulus * (ratio ** (7.0 / 3.0) - ratio ** (5.0 / 3.0)) * (
        1.0 + 0.75 * (bulk_modulus_derivative - 4.0) * (eta - 1.0))

def _scan(atoms: Atoms) -> tuple[EosFit | None, float]:
    """Energies at the EOS strains around the current cell, fitted.

    Returns:
        The fit (atoms left at its V0), or ``None`` if the energies have no
        minimum near the scan (atoms left at the lowest energy sampled), and
        the scale of that cell relative to the scan's centre.
    """
    n = len(atoms)
    cell = atoms.get_cell().copy()
    volumes, energies = [], []
    # The unstrained cell first: its energy is usually the relaxation's last one, already computed.
    strains = sorted(EOS_STRAINS, key=abs)
    for strain in strains:
        atoms.set_cell(cell * (1.0 + strain), scale_atoms=True)
        volumes.append(atoms.get_volume() / n)
        energies.append(atoms.get_potential_energy() / n)
    try:
        fit = fit_birch_murnaghan(np.asarray(volumes), np.asarray(energies))
    except ValueError:
        lowest = 1.0 + strains[int(np.argmin(energies))]
        atoms.set_cell(cell * lowest, scale_atoms=True)
        return None, lowest
    scale = (fit.volume * n / abs(np.linalg.det(cell))) ** (1.0 / 3.0)
    atoms.set_cell(cell * scale, scale_atoms=True)
    return fit, scale


def equation_of_state(atoms: Atoms) -> tuple[EosFit, int]:
    """Scan the volume around the current cell and fit; recentre once if needed.

    The scan is recentred on the fitted minimum when it lies outside the
    sampled volumes, or on the lowest energy sampled when the energies have no
    minimum there (a starting cell far from equilibrium).

    The atoms are left scaled to the fitted equilibrium volume.

    Args:
        atoms: relaxed atoms with a calculator attached.

    Returns:
        The fit and the number of energies computed.

    Raises:
        ValueError: no minimum after recentring.
    """
    fit, scale = _scan(atoms)
    if fit is not None and fit.inside:
        return fit, len(EOS_STRAINS)
    log.info("EOS minimum outside the scan (linear scale %.3f); recentring", scale)
    fit, _ = _scan(atoms)
    if fit is None:
        raise ValueError("the energy has no minimum near the sampled volumes, even after recentring")
    return fit, 2 * len(EOS_STRAINS)


def fcc_lattice_constant(volume_per_atom: float) -> float:
    """Cubic lattice constant of an fcc crystal with this volume per atom (angstrom)."""
    return math.pow(4.0 * volume_per_atom, 1.0 / 3.0)
