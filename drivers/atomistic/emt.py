"""EMT: the lab's expensive, "DFT-like" reference method.

ASE's effective-medium theory potential (Jacobsen, Stoltze & Norskov, Surf.
Sci. 366, 394 (1996)) is parametrised for seven fcc metals; it reproduces
their lattice constants and bulk moduli closely (Cu: a0 3.59 A, B 134 GPa)
and gives physically sensible mixing energies of their alloys. ASE also
carries rough parameters for H, C, N and O, which are not fit for bulk
properties and are refused here.
"""

from __future__ import annotations

from typing import ClassVar

from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT

from labweave.drivers.atomistic.backend import AtomisticBackend

#: The metals EMT is parametrised for.
EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"})


class EmtBackend(AtomisticBackend):
    """Bulk properties by ASE's EMT potential."""

    method: ClassVar[str] = "emt"

    def supported_elements(self) -> frozenset[str]:
        return EMT_ELEMENTS

    def calculator(self) -> Calculator:
        return EMT()
