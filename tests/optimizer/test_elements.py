"""Elemental descriptors of perovskites from pymatgen's shipped tables, checked against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labweave.optimizer.descriptors import PerovskiteFeatures, featurizer
from labweave.optimizer.elements import (
    PEROVSKITE_FEATURES,
    atomic_mass,
    electronegativity,
    perovskite,
    shannon_radius,
    tolerance_factor,
)
from labweave.optimizer.sisso.units import parse_unit
from labweave.optimizer.space import SearchSpace


@pytest.mark.parametrize(
    ("ion", "charge", "coordination", "radius"),
    [
        ("Sr", 2, "XII", 1.44),  # Shannon 1976, Table 1
        ("Ba", 2, "XII", 1.61),
        ("La", 3, "XII", 1.36),
        ("K", 1, "XII", 1.64),
        ("Ti", 4, "VI", 0.605),
        ("Zr", 4, "VI", 0.72),
        ("Nb", 5, "VI", 0.64),
        ("Al", 3, "VI", 0.535),
        ("O", -2, "VI", 1.40),
        ("Sr", 2, "VI", 1.18),  # the same ion, another coordination
    ],
)
def test_shannon_radii_are_the_tabulated_ones_for_the_coordination(ion, charge, coordination, radius):
    assert shannon_radius(ion, charge, coordination) == pytest.approx(radius)


def test_a_missing_radius_names_the_ion_and_the_tabulated_coordinations():
    with pytest.raises(ValueError, match=r"no Shannon radius for Ti\+4 in coordination XII \(tabulated: \['IV', 'V', 'VI', 'VIII'\]\)"):
        shannon_radius("Ti", 4, "XII")
    with pytest.raises(ValueError, match="not a chemical symbol"):
        shannon_radius("Xx", 2, "VI")


def test_electronegativity_and_mass():
    assert electronegativity("O") == pytest.approx(3.44)
    assert electronegativity("Sr") == pytest.approx(0.95)
    assert atomic_mass("Ti") == pytest.approx(47.867, abs=1e-3)
    assert atomic_mass("Ba") == pytest.approx(137.327, abs=1e-3)


@pytest.mark.parametrize(
    ("a", "b", "valences", "t"),
    [
        ("Sr", "Ti", (2, 4), 1.002),  # the cubic archetype: t ~ 1
        ("Ba", "Ti", (2, 4), 1.062),  # t > 1: the ferroelectric off-centring of Ti
        ("Ca", "Ti", (2, 4), 0.966),  # t < 1: octahedral tilts (orthorhombic CaTiO3)
        ("La", "Al", (3, 3), 1.009),
        ("K", "Nb", (1, 5), 1.054),
    ],
)
def test_perovskite_valences_and_tolerance_factor(a, b, valences, t):
    p = perovskite(a, b)
    assert (p.n_a, p.n_b) == valences
    assert p.tolerance == pytest.approx(t, abs=1e-3)
    assert tolerance_factor(p.r_a, p.r_b, p.r_o) == p.tolerance


def test_a_perovskite_no_charge_split_supports_is_refused():
    with pytest.raises(ValueError, match=r"NaAlO3: "):
        perovskite("Na", "Al")  # Al5+ does not exist


def test_featurizer_gives_the_table_with_units_sisso_can_check():
    space = SearchSpace.from_parameters(
        [
            {"name": "A", "kind": "categorical", "choices": ["Sr", "Ba", "Na"]},
            {"name": "B", "kind": "categorical", "choices": ["Ti", "Al"]},
        ]
    )
    f = featurizer(PerovskiteFeatures(), space)
    table = f.table([{"A": "Sr", "B": "Ti"}, {"A": "Ba", "B": "Ti"}])
    assert f.names == list(PEROVSKITE_FEATURES)
    row = dict(zip(f.names, table[0]))
    assert row["r_A"] == 1.44 and row["r_B"] == 0.605 and row["n_B"] == 4.0
    assert math.isclose(row["t"], 1.0016, abs_tol=1e-4)
    assert np.all(np.isfinite(table))
    units = dict(zip(f.names, (parse_unit(u) for u in f.units)))
    assert units["r_A"] == units["r_B"] != units["m_A"]
    assert units["t"].is_dimensionless and units["X_A"].is_dimensionless
    with pytest.raises(ValueError, match=r"candidate 0 \{'A': 'Na', 'B': 'Al'\}: NaAlO3"):
        f.table([{"A": "Na", "B": "Al"}])


def test_featurizer_needs_categorical_site_parameters():
    space = SearchSpace.from_parameters([{"name": "A", "lower": 0, "upper": 1}])
    with pytest.raises(ValueError, match="features.a_site: 'A' is not a categorical parameter"):
        featurizer(PerovskiteFeatures(), space)
