"""EMT: a quick stand-in for DFT in the tests and the fast demo, not a reference.

ASE's effective-medium theory potential (Jacobsen, Stoltze & Norskov, Surf.
Sci. 366, 394 (1996)) is parametrised for seven fcc metals. It is the cheapest
method of the lab (a 4-atom cell relaxes and is fitted in about 0.2 CPU
seconds, ten times faster than CHGNet), which is why tests and the fast demo
use it where a campaign needs a second method. It is not DFT-like: its
lattice constants are close for the late transition and noble metals (Cu:
a0 3.59 A against 3.61 measured), but its bulk moduli are off by tens of
per cent for some (Al: 38.5 GPa against about 72-76 measured), and its
mixing energies of aluminium alloys are unreliable. The lab's reference
method is DFT (:mod:`labweave.drivers.atomistic.dft`). ASE also carries
rough parameters for H, C, N and O, which are not fit for bulk properties
and are refused here."""

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
