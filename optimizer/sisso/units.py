"""The unit algebra of SISSO features, on the lab's pint registry.

A unit is a product of pint units raised to rational exponents, e.g.
``electron_volt / angstrom ** 2``; it is read with pint's syntax and the lab's
one registry (:mod:`labweave.schemas.units`). Exponents are kept as
:class:`fractions.Fraction` so that ``sqrt`` and ``cbrt`` stay exact.

Two units are equal when they measure the same thing on the same scale: equal
pint dimensionality and equal factor to SI (``"K"`` equals ``"kelvin"``,
``"mol/mol"`` is dimensionless). SISSO adds and subtracts feature columns as
they are, so ``eV`` and ``J`` (same dimensionality, scales 1.6e-19 apart) are
unlike units, as are a fraction and a percentage. A unit is dimensionless when
its dimensionality is empty (a ``percent`` column may enter ``exp``).

The text form is pint's default format (``"electron_volt / angstrom ** 2"``),
with fractional powers written ``angstrom ** (1/2)``, which pint reads back;
the dimensionless unit with no factor is ``"dimensionless"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import cast

from labweave.schemas.units import UnitError, registry
from labweave.schemas.units import parse_unit as parse_pint_unit

__all__ = ["Unit", "DIMENSIONLESS", "FeatureUnits", "parse_unit", "parse_units"]

#: Largest denominator of an exponent read from pint (which keeps them as floats).
_MAX_DENOMINATOR = 1_000_000
#: Relative tolerance on the factor to SI when comparing units.
_SCALE_RTOL = 1e-9

_Exponents = tuple[tuple[str, Fraction], ...]


def _fraction(power: object) -> Fraction:
    """An exponent as an exact fraction (pint keeps fractional ones as floats)."""
    if isinstance(power, float):
        return Fraction(power).limit_denominator(_MAX_DENOMINATOR)
    if isinstance(power, (int, Fraction)):
        return Fraction(power)
    raise UnitError(f"unit: exponent {power!r} is not a real number")


@functools.cache
def _named(name: str) -> tuple[str, _Exponents, float]:
    """A pint unit's canonical name, its dimensionality and its factor to SI."""
    ureg = registry()
    try:
        canonical = ureg.get_name(name)
    except Exception as exc:  # pint's UndefinedUnitError
        raise UnitError(f"unit {name!r} is not in the lab's unit registry: {exc}") from None
    factor, _ = ureg.get_root_units(canonical)
    dimensions = tuple(sorted((d, _fraction(p)) for d, p in ureg.get_dimensionality(canonical).items()))
    return canonical, dimensions, float(cast(float, factor))


def _combine(pairs: Iterable[tuple[str, Fraction]]) -> _Exponents:
    merged: dict[str, Fraction] = {}
    for key, power in pairs:
        merged[key] = merged.get(key, Fraction(0)) + power
    return tuple(sorted((k, p) for k, p in merged.items() if p != 0))


class Unit:
    """An immutable product of pint units with rational exponents.

    Args:
        exponents: map from a pint unit name or symbol (``"electron_volt"``,
            ``"eV"``) to its exponent; zero exponents are dropped.

    Raises:
        UnitError: a name the lab's registry does not define.
    """

    __slots__ = ("_factors", "_dimensions", "_scale", "_hash")

    def __init__(self, exponents: Mapping[str, int | Fraction] | None = None) -> None:
        factors: list[tuple[str, Fraction]] = []
        for name, power in (exponents or {}).items():
            if not isinstance(name, str) or not name:
                raise UnitError(f"unit: a unit name must be a non-empty string, got {name!r}")
            factors.append((_named(name)[0], Fraction(power)))
        self._set(_combine(factors))

    def _set(self, factors: _Exponents) -> None:
        self._factors = factors
        dimensions: list[tuple[str, Fraction]] = []
        scale = 1.0
        for name, power in factors:
            _, dims, factor = _named(name)
            dimensions.extend((d, p * power) for d, p in dims)
            scale *= factor ** float(power)
        self._dimensions = _combine(dimensions)
        self._scale = scale
        self._hash = hash(self._dimensions)

    @classmethod
    def _of(cls, factors: _Exponents) -> Unit:
        unit = cls.__new__(cls)
        unit._set(factors)
        return unit

    @property
    def exponents(self) -> dict[str, Fraction]:
        """The pint units (canonical names) and their exponents."""
        return dict(self._factors)

    @property
    def dimensionality(self) -> dict[str, Fraction]:
        """pint's dimensionality (``{"[length]": 1, "[time]": -1}``) with exact exponents."""
        return dict(self._dimensions)

    @property
    def is_dimensionless(self) -> bool:
        """True when the unit has no dimension (``mol/mol``, ``percent``)."""
        return not self._dimensions

    def __mul__(self, other: Unit) -> Unit:
        return Unit._of(_combine((*self._factors, *other._factors)))

    def __truediv__(self, other: Unit) -> Unit:
        return self * other**-1

    def __pow__(self, power: int | Fraction) -> Unit:
        power = Fraction(power)
        return Unit._of(_combine((name, exp * power) for name, exp in self._factors))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Unit)
            and self._dimensions == other._dimensions
            and math.isclose(self._scale, other._scale, rel_tol=_SCALE_RTOL)
        )

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        above = [_power_text(name, power) for name, power in self._factors if power > 0]
        below = [_power_text(name, -power) for name, power in self._factors if power < 0]
        if not above and not below:
            return "dimensionless"
        return " / ".join([" * ".join(above) or "1", *below])

    def __repr__(self) -> str:
        return f"Unit({str(self)!r})"


def _power_text(name: str, power: Fraction) -> str:
    if power == 1:
        return name
    if power.denominator == 1:
        return f"{name} ** {power.numerator}"
    return f"{name} ** ({power.numerator}/{power.denominator})"


DIMENSIONLESS = Unit()

#: The units of the primary features as a caller gives them: one per feature (aligned with the
#: names), a mapping from feature name to unit, or ``None`` (all dimensionless).
FeatureUnits = Sequence[str | Unit | None] | Mapping[str, str | Unit | None] | None


def parse_unit(text: str | Unit | None) -> Unit:
    """Read a unit in pint's syntax, such as ``"eV"``, ``"eV / angstrom ** 2"`` or ``"m / s^2"``.

    Args:
        text: the unit; ``None`` and ``""`` mean dimensionless. A :class:`Unit`
            is returned unchanged.

    Returns:
        The parsed unit.

    Raises:
        UnitError: (a ValueError) if pint cannot read the text.
    """
    if isinstance(text, Unit):
        return text
    if text is None or (isinstance(text, str) and not text.strip()):
        return DIMENSIONLESS
    parsed = parse_pint_unit(text)
    # a pint Unit's factors are its UnitsContainer, pint's own (unexported) attribute
    return Unit({name: _fraction(power) for name, power in parsed._units.items()})


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
        ValueError: if a sequence has the wrong length, a mapping names an
            unknown feature, or a unit cannot be read (naming the feature).
    """
    if units is None:
        return [DIMENSIONLESS] * len(names)
    if isinstance(units, Mapping):
        unknown = sorted(set(units) - set(names))
        if unknown:
            raise ValueError(f"units: names not among the feature names: {unknown}")
        pairs = [(name, units.get(name)) for name in names]
    else:
        listed = list(units)
        if len(listed) != len(names):
            raise ValueError(f"units: got {len(listed)} units for {len(names)} feature names")
        pairs = list(zip(names, listed))
    out = []
    for name, unit in pairs:
        try:
            out.append(parse_unit(unit))
        except UnitError as exc:
            raise UnitError(f"units: feature {name!r}: {exc}") from None
    return out
