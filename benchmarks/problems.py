"""Benchmark problems with known optima, written like BoTorch's test problems.

Each problem has bounds, a known optimal value and optimisers, a noiseless
``evaluate_true`` and a seeded noisy ``evaluate``; it also presents itself as a
:class:`~labweave.optimizer.space.SearchSpace` with named objectives so that a
strategy can be run on it exactly as on a campaign, and regret measured
against the truth.

- :class:`Hartmann6`: six dimensions, four local maxima, global maximum
  3.32237 (Dixon & Szegö, "The global optimisation problem: an introduction",
  1978; constants as in Surjanovic & Bingham's Virtual Library of Simulation
  Experiments).
- :class:`Branin`: two dimensions, three global minima of 0.397887 (Branin,
  IBM J. Res. Dev. 16, 504 (1972)).
- :class:`FormulationToy`: an electrolyte-like formulation of three mass
  fractions summing to one and a categorical additive, with a cycle-life-like
  objective (maximise) and an optional cost-like second objective (minimise).
  It is a smooth test surface with a known optimum, not a physical model.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from labweave.optimizer.space import DTYPE, SearchSpace
from labweave.schemas.campaign import Objective


class BenchmarkProblem(ABC):
    """A test problem over a search space with known optimum.

    Args:
        noise_std: standard deviation of Gaussian observation noise (per objective).
        seed: seed of the noise generator.

    Attributes:
        name: registry name.
        objectives: the objectives, in column order of ``evaluate_true``.
        optimal_value: best value of the first objective.
        optimizers: points (parameter dicts) attaining it.
    """

    name: ClassVar[str]
    objectives: ClassVar[tuple[Objective, ...]]
    optimal_value: ClassVar[float]

    def __init__(self, noise_std: float = 0.0, seed: int | None = None) -> None:
        if noise_std < 0:
            raise ValueError(f"noise_std must be non-negative, got {noise_std}")
        self.noise_std = noise_std
        self._rng = np.random.default_rng(seed)
        self.space = self.build_space()

    @abstractmethod
    def build_space(self) -> SearchSpace:
        """Return the problem's search space."""

    @property
    @abstractmethod
    def optimizers(self) -> list[dict[str, Any]]:
        """Points attaining :attr:`optimal_value`."""

    @abstractmethod
    def evaluate_true(self, points: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Noiseless objective values.

        Args:
            points: ``n`` parameter dicts in the space.

        Returns:
            ``(n, m)`` tensor, one column per objective.
        """

    @property
    def maximize(self) -> bool:
        """Whether the first objective is maximised."""
        return self.objectives[0].direction == "maximize"

    def evaluate(self, points: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
        """Observe the objectives at ``points``, with seeded noise.

        Args:
            points: ``n`` parameter dicts.

        Returns:
            ``n`` dicts ``{objective name: value}``.
        """
        Y = self.evaluate_true(points)
        if self.noise_std > 0:
            Y = Y + torch.as_tensor(self._rng.normal(0.0, self.noise_std, size=tuple(Y.shape)), dtype=DTYPE)
        return [{o.name: float(v) for o, v in zip(self.objectives, row)} for row in Y.tolist()]

    def regret(self, best: float) -> float:
        """Distance of ``best`` from the optimum of the first objective (non-negative)."""
        return (self.optimal_value - best) if self.maximize else (best - self.optimal_value)


class _BoxProblem(BenchmarkProblem):
    """A problem over a box of continuous parameters ``x0 .. x{d-1}``."""

    box: ClassVar[tuple[tuple[float, float], ...]]

    def build_space(self) -> SearchSpace:
        return SearchSpace.from_parameters(
            {"name": f"x{i}", "lower": lo, "upper": hi} for i, (lo, hi) in enumerate(self.box)
        )

    @property
    def bounds(self) -> torch.Tensor:
        """``(2, d)`` bounds, as in BoTorch."""
        return torch.tensor(self.box, dtype=DTYPE).T

    def _matrix(self, points: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        names = self.space.names
        return torch.tensor([[float(p[n]) for n in names] for p in points], dtype=DTYPE).reshape(-1, len(names))

    def evaluate_true(self, points: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        return self.evaluate_true_tensor(self._matrix(points)).unsqueeze(-1)

    @abstractmethod
    def evaluate_true_tensor(self, X: torch.Tensor) -> torch.Tensor:
        """Noiseless values for raw inputs.

        Args:
            X: ``(n, d)`` points in the problem's bounds.

        Returns:
            ``(n,)`` values.
        """

    def _optimizer_points(self, rows: list[tuple[float, ...]]) -> list[dict[str, Any]]:
        return [{f"x{i}": v for i, v in enumerate(row)} for row in rows]


class Hartmann6(_BoxProblem):
    """Hartmann's six-dimensional function, as a maximisation problem.

    ``f(x) = sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2)`` on ``[0, 1]^6``, the
    negative of the usual minimisation form; maximum 3.32237.
    """

    name = "hartmann6"
    objectives = (Objective(name="y", path="y", direction="maximize"),)
    optimal_value = 3.32237
    box = ((0.0, 1.0),) * 6
    ALPHA = torch.tensor([1.0, 1.2, 3.0, 3.2], dtype=DTYPE)
    A = torch.tensor(
        [
            [10, 3, 17, 3.5, 1.7, 8],
            [0.05, 10, 17, 0.1, 8, 14],
            [3, 3.5, 1.7, 10, 17, 8],
            [17, 8, 0.05, 10, 0.1, 14],
        ],
        dtype=DTYPE,
    )
    P = 1e-4 * torch.tensor(
        [
            [1312, 1696, 5569, 124, 8283, 5886],
            [2329, 4135, 8307, 3736, 1004, 9991],
            [2348, 1451, 3522, 2883, 3047, 6650],
            [4047, 8828, 8732, 5743, 1091, 381],
        ],
        dtype=DTYPE,
    )

    @property
    def optimizers(self) -> list[dict[str, Any]]:
        return self._optimizer_points([(0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)])

    def evaluate_true_tensor(self, X: torch.Tensor) -> torch.Tensor:
        inner = (self.A * (X.unsqueeze(-2) - self.P).pow(2)).sum(-1)
        return (self.ALPHA * torch.exp(-inner)).sum(-1)


class Branin(_BoxProblem):
    """Branin-Hoo function on ``[-5, 10] x [0, 15]``, minimised; minimum 0.397887.

    ``f = (x1 - b x0^2 + c x0 - r)^2 + s (1 - t) cos(x0) + s`` with
    ``b = 5.1 / (4 pi^2)``, ``c = 5 / pi``, ``r = 6``, ``s = 10``, ``t = 1 / (8 pi)``.
    """

    name = "branin"
    objectives = (Objective(name="y", path="y", direction="minimize"),)
    optimal_value = 0.397887
    box = ((-5.0, 10.0), (0.0, 15.0))

    @property
    def optimizers(self) -> list[dict[str, Any]]:
        return self._optimizer_points([(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)])

    def evaluate_true_tensor(self, X: torch.Tensor) -> torch.Tensor:
        x0, x1 = X[..., 0], X[..., 1]
        b, c, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
        return (x1 - b * x0**2 + c * x0 - r).pow(2) + s * (1 - t) * torch.cos(x0) + s


class FormulationToy(BenchmarkProblem):
    """A three-component formulation with an additive: a constrained, mixed test problem.

    Parameters: mass fractions ``ec`` in [0.1, 0.6], ``emc`` in [0.2, 0.85],
    ``lipf6`` in [0.05, 0.2] with ``ec + emc + lipf6 == 1``, and ``additive`` in
    ``{"none", "VC", "FEC"}``.

    ``cycle_life = 300 + 900 g(ec, lipf6) m(additive)`` with a Gaussian bump
    ``g = exp(-((ec - 0.30) / 0.12)^2 / 2 - ((lipf6 - 0.12) / 0.035)^2 / 2)`` and
    ``m = {none: 0.8, VC: 1.0, FEC: 0.9}``: maximum 1200 at ec 0.30, emc 0.58,
    lipf6 0.12 with VC. With ``two_objectives``, ``cost = 10 lipf6 / 0.12 + 2 [additive != none]
    + 3 ec`` (minimise) competes with it.

    Args:
        two_objectives: add the cost objective.
        noise_std: observation noise (both objectives).
        seed: seed of the noise.
    """

    name = "formulation"
    optimal_value = 1200.0
    ADDITIVE_FACTOR: ClassVar[dict[str, float]] = {"none": 0.8, "VC": 1.0, "FEC": 0.9}

    def __init__(self, two_objectives: bool = False, noise_std: float = 0.0, seed: int | None = None) -> None:
        objectives = [Objective(name="cycle_life", path="cycle_life", direction="maximize")]
        if two_objectives:
            objectives.append(Objective(name="cost", path="cost", direction="minimize"))
        self.objectives = tuple(objectives)  # type: ignore[misc]
        super().__init__(noise_std=noise_std, seed=seed)

    def build_space(self) -> SearchSpace:
        return SearchSpace.from_parameters(
            [
                {"name": "ec", "lower": 0.1, "upper": 0.6, "unit": "g/g"},
                {"name": "emc", "lower": 0.2, "upper": 0.85, "unit": "g/g"},
                {"name": "lipf6", "lower": 0.05, "upper": 0.2, "unit": "g/g"},
                {"kind": "categorical", "name": "additive", "choices": list(self.ADDITIVE_FACTOR)},
            ],
            [{"coefficients": {"ec": 1.0, "emc": 1.0, "lipf6": 1.0}, "relation": "==", "rhs": 1.0}],
        )

    @property
    def optimizers(self) -> list[dict[str, Any]]:
        return [{"ec": 0.30, "emc": 0.58, "lipf6": 0.12, "additive": "VC"}]

    def evaluate_true(self, points: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        rows = []
        for p in points:
            bump = math.exp(-(((p["ec"] - 0.30) / 0.12) ** 2) / 2 - (((p["lipf6"] - 0.12) / 0.035) ** 2) / 2)
            row = [300.0 + 900.0 * bump * self.ADDITIVE_FACTOR[p["additive"]]]
            if len(self.objectives) > 1:
                row.append(10.0 * p["lipf6"] / 0.12 + (2.0 if p["additive"] != "none" else 0.0) + 3.0 * p["ec"])
            rows.append(row)
        return torch.tensor(rows, dtype=DTYPE).reshape(len(rows), len(self.objectives))


PROBLEMS: dict[str, type[BenchmarkProblem]] = {
    Hartmann6.name: Hartmann6,
    Branin.name: Branin,
    FormulationToy.name: FormulationToy,
}


def get_problem(name: str, **kwargs: Any) -> BenchmarkProblem:
    """Build a benchmark problem by name.

    Args:
        name: ``hartmann6``, ``branin`` or ``formulation``.
        **kwargs: passed to the problem's constructor.

    Returns:
        The problem.

    Raises:
        KeyError: for an unknown name, listing the known ones.
    """
    try:
        cls = PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known: {sorted(PROBLEMS)}") from None
    return cls(**kwargs)
