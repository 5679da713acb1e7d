"""A small unit algebra for SISSO features.

A unit is a product of base dimensions raised to rational exponents, e.g.
``AA^-2 * eV``. Base dimensions are free-form names ("eV", "AA", "K", ...):
SISSO only needs to know whether two units are equal (addition and subtraction
are allowed only between like units) and how units combine under products,
quotients and powers. Exponents are kept as :class:`fractions.Fraction` so that
``sqrt`` and ``cbrt`` stay exact.

The text form follows SISSO++ (Purcell et al., J. Chem. Phys. 159, 114110
(2023)): factors sorted by name, joined by ``" * "``, exponents other than one
written as ``^k`` (``^(1/2)`` for fractions); the dimensionless unit is the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fractions import Fraction

__all__ = ["Unit", "DIMENSIONLESS", "parse_unit"]

_TOKEN = re.compile(
    r"\s*(?P<sep>[*/])?\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*|1)"
    r"(?:\s*\^\s*(?P<exp>\(\s*[+-]?\d+(?:\s*/\s*\d+)?\s*\)|[+-]?\d+(?:/\d+)?))?\s*"
)


class Unit:
    """An immutable product of base dimensions with rational exponents.

    Args:
        exponents: map from base-dimension name to its exponent; zero exponents
            are dropped.
    """

    __slots__ = ("_factors", "_hash")

    def __init__(self, exponents: Mapping[str, int | Fraction] | None = None) -> None:
        factors = {}
        for name, power in (exponents or {}).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"unit: base dimension name must be a non-empty string, got {name!r}")
            power = Fraction(power)
            if power != 0:
                factors[name] = power
        self._factors: tuple[tuple[str, Fraction], ...] = tuple(sorted(factors.items()))
        self._hash = hash(self._factors)

    @property
    def exponents(self) -> dict[str, Fraction]:
        """The base dimensions and their exponents."""
        return dict(self._factors)

    @property
    def is_dimensionless(self) -> bool:
        """True when the unit has no base dimension."""
        return not self._factors

    def __mul__(self, other: Unit) -> Unit:
        merged = dict(self._factors)
        for name, power in other._factors:
            merged[name] = merged.get(name, Fraction(0)) + power
        return Unit(merged)

    def __truediv__(self, other: Unit) -> Unit:
        return self * other**-1

    def __pow__(self, power: int | Fraction) -> Unit:
        power = Fraction(power)
        return Unit({name: exp * power for name, exp in self._factors})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unit) and self._factors == other._factors

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        parts = []
        for name, power in self._factors:
            if power == 1:
                parts.append(name)
            elif power.denominator == 1:
                parts.append(f"{name}^{power}")
            else:
                parts.append(f"{name}^({power})")
        return " * ".join(parts)

    def __repr__(self) -> str:
        return f"Unit({str(self)!r})"


DIMENSIONLESS = Unit()


def parse_unit(text: str | Unit | None) -> Unit:
    """Parse a unit string such as ``"eV"``, ``"AA^-2 * eV"`` or ``"m / s^2"``.

    Args:
        text: the unit; ``None``, ``""`` and ``"1"`` mean dimensionless. A
            :class:`Unit` is returned unchanged.

    Returns:
        The parsed unit.

    Raises:
        ValueError: if the text is not a product/quotient of ``name^exponent``
            factors.
    """
    if isinstance(text, Unit):
        return text
    if text is None:
        return DIMENSIONLESS
    if not isinstance(text, str):
        raise ValueError(f"unit: expected a string, got {type(text).__name__}")
    stripped = text.strip()
    if stripped in ("", "1", "-", "dimensionless"):
        return DIMENSIONLESS
    exponents: dict[str, Fraction] = {}
    position = 0
    first = True
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position or (match.group("sep") is None) != first:
            raise ValueError(f"unit: cannot parse {text!r} at {stripped[position:]!r}")
        first = False
        position = match.end()
        name = match.group("name")
        power = Fraction(match.group("exp").strip("() ").replace(" ", "")) if match.group("exp") else Fraction(1)
        if name == "1":
            continue
        sign = -1 if match.group("sep") == "/" else 1
        exponents[name] = exponents.get(name, Fraction(0)) + sign * power
    return Unit(exponents)


def parse_units(
    units: Iterable[str | Unit | None] | Mapping[str, str | Unit | None] | None, names: list[str]
) -> list[Unit]:
    """Units for a list of primary features.

    Args:
        units: one unit per feature (a sequence aligned with ``names``), or a
            mapping from feature name to unit (missing names are dimensionless),
            or ``None`` (all dimensionless).
        names: the primary feature names.

    Returns:
        One :class:`Unit` per name.

    Raises:
        ValueError: if a sequence has the wrong length or a mapping names an
            unknown feature.
    """
    if units is None:
        return [DIMENSIONLESS] * len(names)
    if isinstance(units, Mapping):
        unknown = sorted(set(units) - set(names))
        if unknown:
            raise ValueError(f"units: names not among the feature names: {unknown}")
        return [parse_unit(units.get(name)) for name in names]
    units = list(units)
    if len(units) != len(names):
        raise ValueError(f"units: got {len(units)} units for {len(names)} feature names")
    return [parse_unit(unit) for unit in units]
