"""Measured lattice constants and bulk moduli of the fcc metals, to judge computed ones against.

Values at room temperature from C. Kittel, *Introduction to Solid State
Physics*, 8th ed. (Wiley, 2005): lattice constants from chapter 1 (Table 3,
"crystal structures of the elements"), bulk moduli from chapter 3 (Table 3,
"isothermal bulk modulus and compressibility", converted from 10^11 N/m^2 to
GPa). Room-temperature values include thermal expansion and zero-point motion,
which static DFT leaves out: they make the measured lattice constant larger by
roughly 0.01-0.02 A and the bulk modulus smaller by a few per cent than the
static-lattice value DFT computes; the LDA/PBE bracket is much wider.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "C. Kittel, Introduction to Solid State Physics, 8th ed. (Wiley, 2005), ch. 1 Table 3 and ch. 3 Table 3"


@dataclass(frozen=True)
class Measured:
    """One element's measured fcc lattice constant (angstrom) and bulk modulus (GPa), at room temperature."""

    element: str
    lattice_constant: float
    bulk_modulus: float


FCC_METALS: dict[str, Measured] = {m.element: m for m in (
    Measured("Al", 4.05, 72.2),
    Measured("Ni", 3.52, 186.0),
    Measured("Cu", 3.61, 137.0),
    Measured("Pd", 3.89, 180.8),
    Measured("Ag", 4.09, 100.7),
    Measured("Pt", 3.92, 278.3),
    Measured("Au", 4.08, 173.2),
)}
