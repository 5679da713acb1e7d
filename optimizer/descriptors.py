"""Primary features of candidates: the numbers (with units) a SISSO model is built from.

A candidate of a campaign is a parameter dict (``{"A": "Sr", "B": "Ti"}``, or a
composition); SISSO needs a table of numbers with units. A *feature source*,
declared in the ``sisso`` strategy's settings, says how to get them:

- ``parameters``: the numeric parameters of the search space are the primary
  features, with the units the space gives them (or ``units`` here);
- ``perovskite``: an ABO3 perovskite named by two categorical parameters (the
  A and B cations) is described by tabulated properties of its elements
  (:mod:`labweave.optimizer.elements`): Shannon radii, electronegativities,
  valences, masses and the Goldschmidt tolerance factor.

:func:`featurizer` turns a declaration into a :class:`Featurizer`, whose
:meth:`~Featurizer.table` raises naming the candidate and the feature when a
value cannot be had, rather than handing SISSO a NaN.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from labweave.optimizer.sisso.units import parse_unit
from labweave.optimizer.space import SearchSpace
from labweave.schemas.campaign import CategoricalParameter

__all__ = ["FeatureSource", "Featurizer", "ParameterFeatures", "PerovskiteFeatures", "featurizer"]


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterFeatures(_Source):
    """The numeric parameters of the space as primary features.

    Args:
        parameters: which parameters (every continuous or integer one if ``None``).
        units: unit per parameter, overriding the space's (pint syntax; ``"1"`` or
            ``""`` for dimensionless).
    """

    kind: Literal["parameters"] = "parameters"
    parameters: list[str] | None = None
    units: dict[str, str] = Field(default_factory=dict)


class PerovskiteFeatures(_Source):
    """Elemental descriptors of an ABO3 perovskite named by its cations.

    Args:
        a_site: the categorical parameter holding the A cation's symbol.
        b_site: the categorical parameter holding the B cation's symbol.
        valences: oxidation state of an A cation where the tables would choose another
            (B's is six less), e.g. ``{Pb = 2}``; by default the split of the charge of
            O3 that both elements' radius tables support, preferring common states.
    """

    kind: Literal["perovskite"] = "perovskite"
    a_site: str = "A"
    b_site: str = "B"
    valences: dict[str, Annotated[int, Field(ge=1, le=3)]] = Field(default_factory=dict)


FeatureSource = Annotated[ParameterFeatures | PerovskiteFeatures, Field(discriminator="kind")]


class Featurizer(abc.ABC):
    """Computes the primary feature table of candidates.

    Attributes:
        names: the primary feature names.
        units: their units (pint text), aligned with ``names``.
    """

    def __init__(self, names: Sequence[str], units: Sequence[str]) -> None:
        self.names = list(names)
        self.units = list(units)
        for name, unit in zip(self.names, self.units):
            try:
                parse_unit(unit)
            except ValueError as exc:
                raise ValueError(f"features.units.{name}: {exc}") from None

    @abc.abstractmethod
    def row(self, point: Mapping[str, Any]) -> dict[str, float]:
        """The primary features of one candidate."""

    def table(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The primary features of candidates, shape ``(len(points), len(names))``.

        Raises:
            ValueError: naming the candidate and the feature whose value is missing or not finite.
        """
        out = np.empty((len(points), len(self.names)))
        for i, point in enumerate(points):
            try:
                values = self.row(point)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"candidate {i} {dict(point)}: {exc}") from None
            for j, name in enumerate(self.names):
                value = float(values[name])
                if not math.isfinite(value):
                    raise ValueError(f"candidate {i} {dict(point)}: feature {name!r} is {value}")
                out[i, j] = value
        return out


class _ParameterFeaturizer(Featurizer):
    def __init__(self, source: ParameterFeatures, space: SearchSpace) -> None:
        numeric = {p.name: p for p in space.parameters if not isinstance(p, CategoricalParameter)}
        names = source.parameters if source.parameters is not None else list(numeric)
        unknown = [n for n in names if n not in numeric]
        if unknown:
            raise ValueError(f"features.parameters: {unknown} are not numeric parameters of the space")
        if not names:
            raise ValueError("features.parameters: the space has no numeric parameter to use")
        extra = sorted(set(source.units) - set(names))
        if extra:
            raise ValueError(f"features.units: {extra} are not among the feature parameters")
        units = [source.units.get(n, getattr(numeric[n], "unit", None) or "") for n in names]
        super().__init__(names, ["" if u == "1" else u for u in units])

    def row(self, point: Mapping[str, Any]) -> dict[str, float]:
        return {name: float(point[name]) for name in self.names}


def featurizer(source: ParameterFeatures | PerovskiteFeatures, space: SearchSpace) -> Featurizer:
    """The featurizer a declaration asks for, checked against the space.

    Raises:
        ValueError: naming the ``features`` field that does not fit the space.
    """
    if isinstance(source, ParameterFeatures):
        return _ParameterFeaturizer(source, space)
    from labweave.optimizer.elements import PerovskiteFeaturizer

    return PerovskiteFeaturizer(source, space)
