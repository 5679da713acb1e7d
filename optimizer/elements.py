"""Tabulated elemental properties with units, and the descriptors of ABO3 perovskites.

The values come from pymatgen's periodic table, which ships inside the
``pymatgen-core`` wheel (a dependency of CHGNet, the lab's MLIP), so nothing is
downloaded at run time:

- Shannon ionic radii (Shannon, Acta Cryst. A32, 751 (1976)) by oxidation state
  and coordination;
- Pauling electronegativities;
- standard atomic masses.

For a cubic ABO3 perovskite the A cation sits in the 12-fold cuboctahedral
site and the B cation in the 6-fold octahedral site, and O2- is taken 6-fold
(1.40 angstrom, Shannon's radius used for the tolerance factor). The
Goldschmidt tolerance factor

    t = (r_A + r_O) / (sqrt(2) (r_B + r_O))

is 1 for a perfect cubic fit of the ionic spheres (Goldschmidt,
Naturwissenschaften 14, 477 (1926)). The oxidation states of A and B add up to
six (the charge of O3): 1+5, 2+4 or 3+3; among the splits both tables
support, the one in both elements' common oxidation states wins.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labweave.optimizer.descriptors import Featurizer
from labweave.optimizer.space import SearchSpace
from labweave.schemas.campaign import CategoricalParameter

if TYPE_CHECKING:
    from labweave.optimizer.descriptors import PerovskiteFeatures

__all__ = [
    "PEROVSKITE_FEATURES",
    "PerovskiteFeaturizer",
    "Perovskite",
    "atomic_mass",
    "electronegativity",
    "perovskite",
    "shannon_radius",
    "tolerance_factor",
]

#: Coordination of the A site, the B site and the anion in a cubic perovskite.
A_COORDINATION, B_COORDINATION, O_COORDINATION = "XII", "VI", "VI"

#: The primary features of a perovskite and their units (pint syntax).
PEROVSKITE_FEATURES: dict[str, str] = {
    "r_A": "angstrom",
    "r_B": "angstrom",
    "X_A": "",
    "X_B": "",
    "n_A": "",
    "n_B": "",
    "m_A": "dalton",
    "m_B": "dalton",
    "t": "",
}


@functools.cache
def _element(symbol: str) -> Any:
    from pymatgen.core import Element

    try:
        return Element(symbol)
    except ValueError:
        raise ValueError(f"{symbol!r} is not a chemical symbol") from None


def shannon_radius(symbol: str, charge: int, coordination: str) -> float:
    """Shannon's ionic radius (angstrom) of an ion in a coordination (roman numerals, ``"XII"``).

    Raises:
        ValueError: naming the ion and the coordinations tabulated for it.
    """
    table = _element(symbol).data.get("Shannon radii", {})
    by_coordination = table.get(str(charge), {})
    spins = by_coordination.get(coordination)
    if not spins:
        known = sorted(by_coordination) or "none"
        raise ValueError(f"no Shannon radius for {symbol}{charge:+d} in coordination {coordination} (tabulated: {known})")
    # one entry, or high/low spin: take high spin, the usual state in oxides at room temperature
    entry = spins.get("", spins.get("High Spin", next(iter(spins.values()))))
    return float(entry["ionic_radius"])


def electronegativity(symbol: str) -> float:
    """Pauling electronegativity (dimensionless).

    Raises:
        ValueError: for an element without one.
    """
    value = float(_element(symbol).X)
    if not math.isfinite(value):
        raise ValueError(f"no Pauling electronegativity for {symbol}")
    return value


def atomic_mass(symbol: str) -> float:
    """Standard atomic mass (dalton)."""
    return float(_element(symbol).atomic_mass)


def tolerance_factor(r_a: float, r_b: float, r_o: float) -> float:
    """Goldschmidt's tolerance factor ``(r_A + r_O) / (sqrt(2) (r_B + r_O))``."""
    return (r_a + r_o) / (math.sqrt(2.0) * (r_b + r_o))


@dataclass(frozen=True)
class Perovskite:
    """An ABO3 perovskite's ions and descriptors."""

    a: str
    b: str
    n_a: int
    n_b: int
    r_a: float
    r_b: float
    r_o: float

    @property
    def tolerance(self) -> float:
        """The Goldschmidt tolerance factor."""
        return tolerance_factor(self.r_a, self.r_b, self.r_o)

    def features(self) -> dict[str, float]:
        """The primary features (see :data:`PEROVSKITE_FEATURES`)."""
        return {
            "r_A": self.r_a,
            "r_B": self.r_b,
            "X_A": electronegativity(self.a),
            "X_B": electronegativity(self.b),
            "n_A": float(self.n_a),
            "n_B": float(self.n_b),
            "m_A": atomic_mass(self.a),
            "m_B": atomic_mass(self.b),
            "t": self.tolerance,
        }


@functools.cache
def perovskite(a: str, b: str, a_valence: int | None = None) -> Perovskite:
    """The ions of ABO3: oxidation states adding up to six, Shannon radii in the perovskite sites.

    Args:
        a: the A cation's symbol.
        b: the B cation's symbol.
        a_valence: the A cation's oxidation state (B's is six less it); chosen from the
            tables if ``None``.

    Returns:
        The perovskite.

    Raises:
        ValueError: when no split of the charge has both radii tabulated.
    """
    r_o = shannon_radius("O", -2, O_COORDINATION)
    splits = [a_valence] if a_valence is not None else [1, 2, 3]
    found: list[Perovskite] = []
    problems = []
    for n_a in splits:
        try:
            found.append(
                Perovskite(
                    a, b, n_a, 6 - n_a,
                    shannon_radius(a, n_a, A_COORDINATION), shannon_radius(b, 6 - n_a, B_COORDINATION), r_o,
                )
            )
        except ValueError as exc:
            problems.append(str(exc))
    if not found:
        raise ValueError(f"{a}{b}O3: " + "; ".join(problems))
    common = [
        p for p in found
        if p.n_a in _element(a).common_oxidation_states and p.n_b in _element(b).common_oxidation_states
    ]
    return (common or found)[0]


class PerovskiteFeaturizer(Featurizer):
    """Primary features of ABO3 perovskites named by two categorical parameters."""

    def __init__(self, source: PerovskiteFeatures, space: SearchSpace) -> None:
        by_name = {p.name: p for p in space.parameters}
        for field, name in (("a_site", source.a_site), ("b_site", source.b_site)):
            if not isinstance(by_name.get(name), CategoricalParameter):
                raise ValueError(f"features.{field}: {name!r} is not a categorical parameter of the space")
        self.source = source
        super().__init__(list(PEROVSKITE_FEATURES), list(PEROVSKITE_FEATURES.values()))

    def row(self, point: Mapping[str, Any]) -> dict[str, float]:
        a, b = str(point[self.source.a_site]), str(point[self.source.b_site])
        return perovskite(a, b, self.source.valences.get(a)).features()
