"""Two DFT results of the lab (GPAW, PBE, 300 eV, 2.0 k-points per reciprocal angstrom), as fine-tuning examples.

The ordered 4-atom cells AgAl3 (L1_2) and AgAl (L1_0) of the fcc alloy pool, copied from the DFT
table ``benchmarks/data/fcc_alloys_dft_pbe_ordered4.json`` (its fitted equation of state and
elemental references; the formation energies are kept to check the energy shifts against).
"""

from __future__ import annotations

REFERENCES = [
    {"element": "Ag", "structure": "fcc", "energy_per_atom": -2.5476022830077207, "volume_per_atom": 17.874100991788037},
    {"element": "Al", "structure": "fcc", "energy_per_atom": -3.803732489201355, "volume_per_atom": 16.62377095818769},
]

AG_AL3 = {
    "result_id": "dft-AgAl3",
    "alloy": {"composition": {"Ag": 0.25, "Al": 0.75}, "supercell": 1, "seed": 0},
    "energy_per_atom": -3.3420259566827912, "volume_per_atom": 16.954210806843555,
    "bulk_modulus": 67.29931673709604, "bulk_modulus_derivative": 8.88589842455922,
    "references": REFERENCES,
}
AG_AL = {
    "result_id": "dft-AgAl",
    "alloy": {"composition": {"Ag": 0.5, "Al": 0.5}, "supercell": 1, "seed": 0},
    "energy_per_atom": -3.1984175199827227, "volume_per_atom": 16.96969245506246,
    "bulk_modulus": 94.93232074151136, "bulk_modulus_derivative": 4.186007205214707,
    "references": REFERENCES,
}
#: The DFT formation (mixing) energies of the two, eV/atom.
FORMATION = {"dft-AgAl3": 0.14767398097015505, "dft-AgAl": -0.02275013387818481}
