"""Crystals for a calculation: from the JSON structure or from a prototype alloy.

Errors name the parameter field at fault (``structure.symbols``,
``alloy.composition``...), so a requester knows what to change.
"""

from __future__ import annotations

import logging
from typing import cast

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from ase.neighborlist import neighbor_list

from labweave.drivers.base import ParameterError
from labweave.schemas.atomistic import AlloyPrototype, BulkPropertiesParameters, CrystalStructure, PerovskitePrototype

log = logging.getLogger(__name__)

#: Atoms closer than this (angstrom) are refused as unphysical overlaps.
MIN_DISTANCE = 0.7


def reference_structure(symbol: str) -> str:
    """Name of an element's ground-state crystal structure (ASE's reference state).

    Args:
        symbol: chemical symbol.

    Returns:
        e.g. ``"fcc"``, ``"bcc"``, ``"hcp"``, ``"diamond"``.
    """
    state = reference_states[atomic_numbers[symbol]]
    return str(state["symmetry"]) if state else "none"  # ASE types the table's values as object


def fcc_lattice_guess(composition: dict[str, float]) -> float:
    """Vegard's-law lattice constant of an fcc alloy from the elements' own (angstrom).

    Each element's fcc lattice constant is taken from its experimental
    reference state when fcc, else from its atomic volume (a = (4 V)^(1/3)).

    Args:
        composition: atomic fractions.

    Returns:
        sum_i x_i a_i.
    """
    total = 0.0
    for symbol, fraction in composition.items():
        state = reference_states[atomic_numbers[symbol]] or {}
        if state.get("symmetry") == "fcc":
            a = cast(float, state["a"])  # ASE types the table's values as object; "a" is a float
        else:
            atoms = bulk(symbol)
            a = (4.0 * atoms.get_volume() / len(atoms)) ** (1.0 / 3.0)
        total += fraction * a
    return total


def site_counts(composition: dict[str, float], sites: int) -> dict[str, int]:
    """Whole numbers of atoms per element closest to the fractions (largest remainder).

    Args:
        composition: atomic fractions summing to 1.
        sites: number of lattice sites.

    Returns:
        Atoms per element, summing to ``sites``.

    Raises:
        ParameterError: an element's fraction rounds to no atom at all.
    """
    exact = {s: f * sites for s, f in composition.items()}
    counts = {s: int(np.floor(v)) for s, v in exact.items()}
    short = sites - sum(counts.values())
    for symbol in sorted(exact, key=lambda s: exact[s] - counts[s], reverse=True)[:short]:
        counts[symbol] += 1
    for symbol, count in counts.items():
        if count == 0:
            raise ParameterError(
                "alloy.composition",
                f"{symbol} at {composition[symbol]:g} gives no atom in {sites} sites; use a larger supercell",
            )
    return counts


def build_alloy(alloy: AlloyPrototype) -> Atoms:
    """A random substitutional fcc alloy in a cubic supercell.

    Args:
        alloy: prototype, composition, supercell and arrangement seed.

    Returns:
        The atoms at the Vegard's-law lattice constant.
    """
    n = alloy.supercell
    atoms = bulk("Cu", alloy.prototype, a=fcc_lattice_guess(alloy.composition), cubic=True).repeat((n, n, n))
    counts = site_counts(alloy.composition, len(atoms))
    symbols = np.concatenate([[s] * c for s, c in sorted(counts.items())])
    rng = np.random.default_rng(alloy.seed)
    atoms.set_chemical_symbols(list(rng.permutation(symbols)))
    return atoms


def build_structure(structure: CrystalStructure) -> Atoms:
    """ASE atoms from a validated JSON structure, refusing overlapping atoms.

    Args:
        structure: the crystal.

    Returns:
        The atoms.

    Raises:
        ParameterError: two atoms (or an atom and a periodic image) overlap.
    """
    atoms = Atoms(symbols=structure.symbols, positions=structure.positions, cell=structure.cell, pbc=structure.pbc)
    distances = neighbor_list("d", atoms, MIN_DISTANCE)
    if distances.size:
        raise ParameterError(
            "structure.positions", f"atoms {float(distances.min()):.2f} A apart (closer than {MIN_DISTANCE} A)"
        )
    return atoms


def build_crystal(params: BulkPropertiesParameters) -> Atoms:
    """The crystal a calculation starts from.

    Args:
        params: validated parameters (exactly one of structure and alloy).

    Returns:
        The atoms.
    """
    if params.structure is not None:
        return build_structure(params.structure)
    if params.perovskite is not None:
        return build_perovskite(params.perovskite)
    if params.alloy is None:
        raise ParameterError("alloy", "give exactly one of 'structure', 'perovskite' and 'alloy'")
    return build_alloy(params.alloy)


#: Fractional positions of the cubic perovskite ABX3: A, B, then the three X.
PEROVSKITE_SITES = ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5))


def build_perovskite(perovskite: PerovskitePrototype) -> Atoms:
    """The 5-atom cubic cell of ABX3 at the starting lattice constant."""
    a = perovskite.lattice_constant
    symbols = [perovskite.a_site, perovskite.b_site] + [perovskite.anion] * 3
    return Atoms(symbols, scaled_positions=PEROVSKITE_SITES, cell=[a, a, a], pbc=True)


def elements_of(params: BulkPropertiesParameters) -> tuple[str, list[str]]:
    """The field holding a crystal's elements and the elements themselves.

    Args:
        params: validated parameters.

    Returns:
        (field name, sorted distinct symbols).
    """
    if params.structure is not None:
        return "structure.symbols", sorted(set(params.structure.symbols))
    if params.perovskite is not None:
        p = params.perovskite
        return "perovskite", sorted({p.a_site, p.b_site, p.anion})
    if params.alloy is None:
        raise ParameterError("alloy", "give exactly one of 'structure', 'perovskite' and 'alloy'")
    return "alloy.composition", sorted(params.alloy.composition)
