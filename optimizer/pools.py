"""Finite sets of candidates a strategy may choose from.

A materials campaign often searches a list rather than a continuum: the
compositions a furnace can weigh out, the cells a code can build. A pool is
declared in a strategy's settings as one of three kinds:

- ``composition_grid``: every composition whose fractions are multiples of
  ``1 / divisions``, with between ``min_components`` and ``max_components``
  non-zero fractions (binaries and ternaries on quarters: 168 points of seven
  elements);
- ``explicit``: points listed one by one;
- ``sample``: a seeded, space-filling (Sobol) sample of the search space.

:func:`pool_points` turns a declaration into validated parameter dicts. The
multi-fidelity strategy searches its pool with a model; the random strategy,
given the same pool, is the matching baseline (random draws from the same
candidates, none twice).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from labweave.optimizer.space import SearchSpace

logger = logging.getLogger(__name__)


def composition_grid(
    components: Sequence[str], divisions: int, min_components: int = 1, max_components: int | None = None
) -> list[dict[str, float]]:
    """Every composition of ``components`` with fractions on a grid of ``1 / divisions``.

    Args:
        components: names of the fractions (elements or parameter names).
        divisions: fractions are ``k / divisions``, ``k = 0 .. divisions``.
        min_components: fewest non-zero fractions.
        max_components: most non-zero fractions (all if ``None``).

    Returns:
        Compositions ``{name: fraction}`` over all ``components`` (zeros included),
        fractions summing to one; ordered by number of components, then
        lexicographically.

    Raises:
        ValueError: naming ``divisions`` or ``min_components``/``max_components``.
    """
    names = list(components)
    if divisions < 1:
        raise ValueError(f"divisions: must be at least 1, not {divisions}")
    top = len(names) if max_components is None else max_components
    if not 1 <= min_components <= top <= len(names):
        raise ValueError(
            f"min_components/max_components: need 1 <= {min_components} <= {top} <= {len(names)} components"
        )
    out: list[dict[str, float]] = []
    for size in range(min_components, min(top, divisions) + 1):
        for subset in itertools.combinations(range(len(names)), size):
            # compositions of `divisions` into `size` positive parts (stars and bars)
            for cuts in itertools.combinations(range(1, divisions), size - 1):
                parts = [b - a for a, b in zip((0, *cuts), (*cuts, divisions))]
                point = dict.fromkeys(names, 0.0)
                for index, part in zip(subset, parts):
                    point[names[index]] = part / divisions
                out.append(point)
    return out


class _Pool(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompositionGridPool(_Pool):
    """Candidates on a composition grid: fractions that are multiples of ``1 / divisions``.

    Args:
        components: the fraction parameters (every numeric parameter the strategy
            does not set itself if ``None``).
        divisions: grid resolution (4: fractions 0, 1/4, ..., 1).
        min_components: fewest non-zero fractions (2: no pure elements).
        max_components: most non-zero fractions (3: up to ternaries).
    """

    kind: Literal["composition_grid"] = "composition_grid"
    components: list[str] | None = None
    divisions: int = Field(default=4, ge=1, le=64)
    min_components: int = Field(default=1, ge=1)
    max_components: int | None = Field(default=None, ge=1)


class ExplicitPool(_Pool):
    """Candidates listed one by one (parameter dicts, without parameters the strategy sets itself).

    Args:
        points: the candidates.
    """

    kind: Literal["explicit"] = "explicit"
    points: list[dict[str, Any]] = Field(min_length=1)


class SampledPool(_Pool):
    """Candidates drawn space-filling from the search space (seeded Sobol).

    Args:
        size: number of candidates.
    """

    kind: Literal["sample"] = "sample"
    size: int = Field(default=256, ge=1, le=20000)


CandidatePool = Annotated[CompositionGridPool | ExplicitPool | SampledPool, Field(discriminator="kind")]


def pool_points(
    spec: CompositionGridPool | ExplicitPool | SampledPool,
    space: SearchSpace,
    seed: int = 0,
    fixed: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The candidates of a pool as validated parameter dicts.

    Args:
        spec: the pool's declaration.
        space: the search space every candidate must fit.
        seed: seed of a sampled pool.
        fixed: parameters the strategy sets itself (a multi-fidelity strategy's
            method): added to each candidate for validation, left out of the result.

    Returns:
        The candidates, in the pool's order, without the ``fixed`` parameters.

    Raises:
        ValueError: naming ``pool.components`` or ``pool.points[i]`` when the pool
            does not fit the space, or ``pool`` when no grid point does.
    """
    fixed = dict(fixed or {})

    def checked(point: Mapping[str, Any]) -> dict[str, Any]:
        valid = space.validate({**point, **fixed})
        return {k: v for k, v in valid.items() if k not in fixed}

    if isinstance(spec, CompositionGridPool):
        others = [p.name for p in space.parameters if p.name not in fixed]
        components = spec.components if spec.components is not None else others
        unknown = [c for c in components if c not in others]
        if unknown:
            raise ValueError(f"pool.components: {unknown} are not numeric parameters of the space")
        missing = [o for o in others if o not in components]
        if missing:
            raise ValueError(f"pool.components: the grid leaves parameters {missing} unset")
        grid = composition_grid(components, spec.divisions, spec.min_components, spec.max_components)
        points = []
        for point in grid:
            try:
                points.append(checked(point))
            except ValueError:
                continue
        if not points:
            raise ValueError("pool: no point of the composition grid fits the search space")
        if len(points) < len(grid):
            logger.info("pool: %d of %d grid points fit the space", len(points), len(grid))
        return points
    if isinstance(spec, ExplicitPool):
        points = []
        for i, point in enumerate(spec.points):
            try:
                points.append(checked(point))
            except ValueError as exc:
                raise ValueError(f"pool.points[{i}]: {exc}") from None
        return points
    sampled = space.sample_points(spec.size, seed=seed)
    return [{k: v for k, v in p.items() if k not in fixed} for p in sampled]
