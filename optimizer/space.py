"""Search spaces: parameters, linear constraints, and their encoding as tensors.

A :class:`SearchSpace` wraps a :class:`~labweave.schemas.campaign.SearchSpaceSpec`
and encodes points (``{name: value}`` dicts) as rows of a ``float64`` tensor:

- a continuous parameter maps linearly (or logarithmically, with ``log_scale``)
  onto ``[0, 1]``;
- an integer parameter maps linearly onto ``[0, 1]``; its allowed encoded values
  are ``k / (upper - lower)``, rounded on decoding;
- a categorical parameter becomes one column holding its integer code
  ``0 .. len(choices) - 1``.

Categoricals are single integer-code columns rather than one-hot columns so
that the acquisition optimiser searches the categories exactly (each code fixed
in turn with ``optimize_acqf_mixed``, or by discrete neighbour steps with
``optimize_acqf_mixed_alternating``), never over a continuous relaxation that
must be rounded afterwards; the surrogate expands the codes for its kernel
(integer codes suit ``MixedSingleTaskGP``'s Hamming kernel, or a one-hot input
transform, which is what :mod:`labweave.optimizer.strategies.gp` uses).

Linear constraints on parameter values become linear constraints on the encoded
columns, in the ``(indices, coefficients, rhs)`` form that BoTorch's
``optimize_acqf`` takes (``sum(coefficients * X[..., indices]) >= rhs`` or ``== rhs``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch.quasirandom import SobolEngine

from labweave.schemas.campaign import (
    CategoricalParameter,
    ContinuousParameter,
    IntegerParameter,
    LinearConstraint,
    ParameterSpec,
    SearchSpaceSpec,
)

logger = logging.getLogger(__name__)

#: Absolute tolerance on constraint residuals, in parameter units.
CONSTRAINT_TOLERANCE = 1e-6
#: Relative tolerance on bounds (of the parameter's range); values decoded this close to a bound are the bound.
BOUND_TOLERANCE = 1e-9

DTYPE = torch.float64


class ParameterError(ValueError):
    """A point does not fit the search space.

    Args:
        parameter: name of the offending parameter (or constraint description).
        message: what is wrong.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class EncodedConstraint:
    """A linear constraint on encoded columns, BoTorch style.

    Args:
        indices: ``(k,)`` long tensor of column indices.
        coefficients: ``(k,)`` coefficients.
        rhs: right-hand side; the constraint is ``coefficients @ X[indices] >= rhs``
            (inequality) or ``== rhs`` (equality).
        equality: whether it is an equality.
        source: the constraint as written, for messages.
    """

    indices: torch.Tensor
    coefficients: torch.Tensor
    rhs: float
    equality: bool
    source: str

    def as_botorch(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Return ``(indices, coefficients, rhs)`` for ``optimize_acqf``."""
        return self.indices, self.coefficients, self.rhs


class SearchSpace:
    """Parameters and linear constraints, with tensor encoding and sampling.

    Args:
        spec: the validated space definition.

    Raises:
        ParameterError: if an equality constraint involves an integer parameter
            (rounding would break it).
    """

    def __init__(self, spec: SearchSpaceSpec) -> None:
        self.spec = spec
        self.parameters: list[ParameterSpec] = list(spec.parameters)
        self.names: list[str] = [p.name for p in self.parameters]
        self._index = {name: i for i, name in enumerate(self.names)}
        self.constraints: list[EncodedConstraint] = [self._encode_constraint(c) for c in spec.constraints]

    @classmethod
    def from_parameters(
        cls, parameters: Iterable[ParameterSpec | Mapping[str, Any]], constraints: Iterable[LinearConstraint | Mapping[str, Any]] = ()
    ) -> SearchSpace:
        """Build a space from parameter and constraint definitions (models or dicts).

        Args:
            parameters: parameter specs.
            constraints: linear constraints.

        Returns:
            The search space.
        """
        return cls(SearchSpaceSpec.model_validate({"parameters": list(parameters), "constraints": list(constraints)}))

    # ----------------------------------------------------------------- structure
    @property
    def dim(self) -> int:
        """Number of encoded columns."""
        return len(self.parameters)

    @property
    def categorical_dims(self) -> dict[int, list[float]]:
        """Column index to allowed codes, for the categorical parameters."""
        return {
            i: [float(k) for k in range(len(p.choices))]
            for i, p in enumerate(self.parameters)
            if isinstance(p, CategoricalParameter)
        }

    @property
    def integer_dims(self) -> dict[int, list[float]]:
        """Column index to allowed encoded values, for the integer parameters."""
        dims: dict[int, list[float]] = {}
        for i, p in enumerate(self.parameters):
            if isinstance(p, IntegerParameter):
                span = p.upper - p.lower
                dims[i] = [k / span for k in range(span + 1)]
        return dims

    @property
    def is_continuous(self) -> bool:
        """True when every parameter is continuous."""
        return all(isinstance(p, ContinuousParameter) for p in self.parameters)

    @property
    def bounds(self) -> torch.Tensor:
        """``(2, d)`` bounds of the encoded columns (codes for categoricals)."""
        lower = torch.zeros(self.dim, dtype=DTYPE)
        upper = torch.ones(self.dim, dtype=DTYPE)
        for i, codes in self.categorical_dims.items():
            upper[i] = codes[-1]
        return torch.stack([lower, upper])

    def inequality_constraints(self) -> list[tuple[torch.Tensor, torch.Tensor, float]] | None:
        """Inequality constraints in BoTorch form, or ``None`` if there are none."""
        found = [c.as_botorch() for c in self.constraints if not c.equality]
        return found or None

    def equality_constraints(self) -> list[tuple[torch.Tensor, torch.Tensor, float]] | None:
        """Equality constraints in BoTorch form, or ``None`` if there are none."""
        found = [c.as_botorch() for c in self.constraints if c.equality]
        return found or None

    def _encode_constraint(self, constraint: LinearConstraint) -> EncodedConstraint:
        indices, coefficients = [], []
        rhs = constraint.rhs
        for name, coefficient in constraint.coefficients.items():
            parameter = self.parameters[self._index[name]]
            assert isinstance(parameter, (ContinuousParameter, IntegerParameter))
            if constraint.relation == "==" and isinstance(parameter, IntegerParameter):
                raise ParameterError(name, "an integer parameter cannot enter an equality constraint")
            width = parameter.upper - parameter.lower
            indices.append(self._index[name])
            coefficients.append(coefficient * width)
            rhs -= coefficient * parameter.lower
        sign = -1.0 if constraint.relation == "<=" else 1.0
        return EncodedConstraint(
            indices=torch.tensor(indices, dtype=torch.long),
            coefficients=sign * torch.tensor(coefficients, dtype=DTYPE),
            rhs=sign * rhs,
            equality=constraint.relation == "==",
            source=constraint.describe(),
        )

    # --------------------------------------------------------------- validation
    def validate(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """Check a point and return it with values in canonical types.

        Args:
            point: ``{parameter name: value}``.

        Returns:
            The point with floats for continuous, ints for integer parameters.

        Raises:
            ParameterError: naming the missing, unknown or out-of-range parameter,
                or the violated constraint.
        """
        unknown = sorted(set(point) - set(self.names))
        if unknown:
            raise ParameterError(unknown[0], f"not a parameter of this space (parameters: {self.names})")
        clean: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.name not in point:
                raise ParameterError(parameter.name, "missing")
            clean[parameter.name] = _check_value(parameter, point[parameter.name])
        for constraint in self.spec.constraints:
            lhs = sum(c * clean[n] for n, c in constraint.coefficients.items())
            residual = lhs - constraint.rhs
            violated = (
                abs(residual) > CONSTRAINT_TOLERANCE
                if constraint.relation == "=="
                else (residual > CONSTRAINT_TOLERANCE if constraint.relation == "<=" else residual < -CONSTRAINT_TOLERANCE)
            )
            if violated:
                raise ParameterError(
                    ",".join(constraint.coefficients), f"violates {constraint.describe()} (left side is {lhs:.6g})"
                )
        return clean

    # ------------------------------------------------------------------ encoding
    def encode(self, points: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Encode validated points as a tensor.

        Args:
            points: ``n`` points.

        Returns:
            ``(n, d)`` float64 tensor.

        Raises:
            ParameterError: if a point does not fit the space.
        """
        rows = []
        for point in points:
            clean = self.validate(point)
            rows.append([_encode_value(p, clean[p.name]) for p in self.parameters])
        return torch.tensor(rows, dtype=DTYPE).reshape(len(rows), self.dim)

    def decode(self, X: torch.Tensor) -> list[dict[str, Any]]:
        """Decode encoded rows into points, rounding integers and codes.

        Args:
            X: ``(n, d)`` tensor.

        Returns:
            ``n`` points ``{name: value}``.
        """
        X = X.detach().to(DTYPE).reshape(-1, self.dim)
        points = []
        for row in X.tolist():
            points.append({p.name: _decode_value(p, u) for p, u in zip(self.parameters, row)})
        return points

    def round(self, X: torch.Tensor) -> torch.Tensor:
        """Snap integer columns and categorical codes to allowed values, clip to bounds.

        Args:
            X: ``(..., d)`` tensor.

        Returns:
            A rounded copy.
        """
        X = X.clone()
        bounds = self.bounds
        X = torch.maximum(torch.minimum(X, bounds[1]), bounds[0])
        for i, values in self.integer_dims.items():
            span = len(values) - 1
            X[..., i] = torch.round(X[..., i] * span) / span
        for i in self.categorical_dims:
            X[..., i] = torch.round(X[..., i])
        return X

    def is_feasible(self, X: torch.Tensor, tolerance: float = CONSTRAINT_TOLERANCE) -> torch.Tensor:
        """Whether encoded rows satisfy bounds and linear constraints.

        Args:
            X: ``(n, d)`` tensor.
            tolerance: allowed residual on encoded constraints.

        Returns:
            ``(n,)`` bool tensor.
        """
        bounds = self.bounds
        ok = ((X >= bounds[0] - tolerance) & (X <= bounds[1] + tolerance)).all(dim=-1)
        for c in self.constraints:
            lhs = X[..., c.indices] @ c.coefficients
            ok &= (lhs - c.rhs).abs() <= tolerance if c.equality else lhs >= c.rhs - tolerance
        return ok

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Draw ``n`` space-filling feasible points, encoded.

        Unconstrained spaces get a scrambled Sobol sequence. With equality
        constraints, a set of pivot columns is solved for from the others (the
        free columns), Sobol points are drawn over the free columns only, and
        points whose pivots leave ``[0, 1]`` or that break an inequality are
        rejected: the accepted points are uniform on the feasible polytope and
        keep the Sobol order. If acceptance is too rare (a thin polytope),
        BoTorch's hit-and-run polytope sampler takes over.

        Args:
            n: number of points.
            seed: seed of the Sobol scrambling (and of the fallback sampler).

        Returns:
            ``(n, d)`` float64 tensor of feasible encoded points.

        Raises:
            ValueError: if no feasible point can be found.
        """
        if n <= 0:
            return torch.empty(0, self.dim, dtype=DTYPE)
        reduction = _EqualityReduction.build(self)
        engine = SobolEngine(len(reduction.free), scramble=True, seed=seed)
        accepted: list[torch.Tensor] = []
        count, drawn = 0, 0
        chunk = max(256, 4 * n)
        while count < n and drawn < 2**16:
            U = engine.draw(chunk, dtype=DTYPE)
            drawn += chunk
            X = self.round(reduction.complete(U, self))
            feasible = self.is_feasible(X) & reduction.pivots_in_range(U, self)
            accepted.append(X[feasible])
            count += int(feasible.sum())
        if count >= n:
            return torch.cat(accepted)[:n]
        logger.info("Sobol rejection accepted %d of %d draws; falling back to hit-and-run", count, drawn)
        return self._sample_polytope(n, seed)

    def _sample_polytope(self, n: int, seed: int | None) -> torch.Tensor:
        from botorch.utils.sampling import get_polytope_samples

        bounds = self.bounds
        samples = get_polytope_samples(
            n=4 * n,
            bounds=bounds,
            inequality_constraints=self.inequality_constraints(),
            equality_constraints=self.equality_constraints(),
            seed=seed,
            n_burnin=200,
            n_thinning=4,
        )
        X = self.round(samples)
        X = X[self.is_feasible(X)]
        if X.shape[0] < n:
            raise ValueError("could not sample feasible points: are the constraints compatible with the bounds?")
        return X[:n]

    def sample_points(self, n: int, seed: int | None = None) -> list[dict[str, Any]]:
        """Draw ``n`` space-filling feasible points as parameter dicts.

        Args:
            n: number of points.
            seed: seed.

        Returns:
            The points.
        """
        return self.decode(self.sample(n, seed))


@dataclass(frozen=True)
class _EqualityReduction:
    """Solve equality constraints for pivot columns: ``X[pivots] = offset + M @ X[free]``."""

    free: list[int]
    pivots: list[int]
    offset: torch.Tensor
    matrix: torch.Tensor

    @classmethod
    def build(cls, space: SearchSpace) -> _EqualityReduction:
        equalities = [c for c in space.constraints if c.equality]
        d = space.dim
        if not equalities:
            return cls(list(range(d)), [], torch.zeros(0, dtype=DTYPE), torch.zeros(0, d, dtype=DTYPE))
        A = np.zeros((len(equalities), d))
        b = np.zeros(len(equalities))
        for r, c in enumerate(equalities):
            A[r, c.indices.numpy()] = c.coefficients.numpy()
            b[r] = c.rhs
        # Gauss-Jordan elimination with full pivoting to a reduced row echelon form.
        pivots: list[int] = []
        row = 0
        for _ in range(len(equalities)):
            candidates = np.abs(A[row:, :])
            candidates[:, pivots] = 0.0
            if candidates.max() < 1e-12:
                break
            r_off, col = np.unravel_index(np.argmax(candidates), candidates.shape)
            r = row + int(r_off)
            A[[row, r]], b[[row, r]] = A[[r, row]], b[[r, row]]
            b[row] /= A[row, col]
            A[row] /= A[row, col]
            for other in range(len(equalities)):
                if other != row:
                    b[other] -= A[other, col] * b[row]
                    A[other] -= A[other, col] * A[row]
            pivots.append(int(col))
            row += 1
        if row < len(equalities) and np.abs(b[row:]).max() > 1e-9:
            raise ValueError("the equality constraints are inconsistent")
        free = [i for i in range(d) if i not in pivots]
        # pivot_k = b_k - sum_free A[k, free] * x_free
        matrix = -torch.tensor(A[: len(pivots)][:, free], dtype=DTYPE)
        offset = torch.tensor(b[: len(pivots)], dtype=DTYPE)
        return cls(free, pivots, offset, matrix)

    def complete(self, U: torch.Tensor, space: SearchSpace) -> torch.Tensor:
        """Map ``(n, len(free))`` unit-cube draws to full encoded rows."""
        X = torch.zeros(U.shape[0], space.dim, dtype=DTYPE)
        bounds = space.bounds
        cat = space.categorical_dims
        for j, i in enumerate(self.free):
            if i in cat:
                k = len(cat[i])
                X[:, i] = torch.clamp(torch.floor(U[:, j] * k), max=k - 1)
            else:
                X[:, i] = bounds[0, i] + U[:, j] * (bounds[1, i] - bounds[0, i])
        if self.pivots:
            X[:, self.pivots] = self.offset + X[:, self.free] @ self.matrix.T
        return X

    def pivots_in_range(self, U: torch.Tensor, space: SearchSpace) -> torch.Tensor:
        """Whether the solved pivot columns lie within their bounds (before clipping)."""
        if not self.pivots:
            return torch.ones(U.shape[0], dtype=torch.bool)
        X = self.complete(U, space)[:, self.pivots]
        bounds = space.bounds[:, self.pivots]
        tol = CONSTRAINT_TOLERANCE
        return ((X >= bounds[0] - tol) & (X <= bounds[1] + tol)).all(dim=-1)


def _check_value(parameter: ParameterSpec, value: Any) -> Any:
    """Return ``value`` in canonical type if it is allowed for ``parameter``.

    Raises:
        ParameterError: naming the parameter.
    """
    name = parameter.name
    if isinstance(parameter, CategoricalParameter):
        for choice in parameter.choices:
            if value == choice and type(value) is not bool:
                return choice
        raise ParameterError(name, f"{value!r} is not one of {parameter.choices}")
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ParameterError(name, f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(name, f"must be finite, got {value!r}")
    tol = BOUND_TOLERANCE * (parameter.upper - parameter.lower)
    if number < parameter.lower - tol or number > parameter.upper + tol:
        raise ParameterError(name, f"{number:g} outside [{parameter.lower:g}, {parameter.upper:g}]")
    if isinstance(parameter, IntegerParameter):
        if not isinstance(value, Integral) and not number.is_integer():
            raise ParameterError(name, f"expected an integer, got {value!r}")
        return int(round(number))
    return min(max(number, parameter.lower), parameter.upper)


def _encode_value(parameter: ParameterSpec, value: Any) -> float:
    if isinstance(parameter, CategoricalParameter):
        return float(parameter.choices.index(value))
    if isinstance(parameter, ContinuousParameter) and parameter.log_scale:
        return (math.log(value) - math.log(parameter.lower)) / (math.log(parameter.upper) - math.log(parameter.lower))
    return (value - parameter.lower) / (parameter.upper - parameter.lower)


def _decode_value(parameter: ParameterSpec, u: float) -> Any:
    if isinstance(parameter, CategoricalParameter):
        code = min(max(int(round(u)), 0), len(parameter.choices) - 1)
        return parameter.choices[code]
    u = min(max(u, 0.0), 1.0)
    if u < BOUND_TOLERANCE:  # the acquisition optimiser's rounding at a bound: the bound itself (no 2e-11 of PC)
        u = 0.0
    elif u > 1.0 - BOUND_TOLERANCE:
        u = 1.0
    if isinstance(parameter, IntegerParameter):
        return int(round(parameter.lower + u * (parameter.upper - parameter.lower)))
    if u in (0.0, 1.0):
        return float(parameter.upper if u else parameter.lower)
    if parameter.log_scale:
        return float(math.exp(math.log(parameter.lower) + u * (math.log(parameter.upper) - math.log(parameter.lower))))
    return float(parameter.lower + u * (parameter.upper - parameter.lower))
