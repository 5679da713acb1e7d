"""The strategy interface: observations and requests in flight in, proposals out.

A strategy is built for one search space and one set of objectives (and
outcome constraints), with settings given as a pydantic model. Each call to
:meth:`Strategy.propose` receives everything known so far, so the strategy may
be rebuilt at any time (e.g. after a daemon restart) without losing work; a
strategy may keep caches (such as the last GP hyperparameters) to go faster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from labweave.optimizer.space import SearchSpace
from labweave.schemas.campaign import Objective, OutcomeConstraint, satisfies

logger = logging.getLogger(__name__)

#: One observation: the parameters measured and the values read from the result
#: (every objective and outcome-constraint name must be present).
Observation = tuple[Mapping[str, Any], Mapping[str, float]]


class Proposal(BaseModel):
    """A proposed experiment with its provenance.

    Args:
        parameters: the point, ``{parameter name: value}``.
        acquisition_value: the acquisition function's value at the point (``None``
            for space-filling designs).
        predicted_mean: the surrogate's posterior mean per objective.
        predicted_std: the surrogate's posterior standard deviation per objective.
        model_version: hash of the training data, the pending points and the
            strategy settings: the same inputs give the same version.
        strategy: registry name of the strategy that made it.
        reason: why this point (``initial design 2/5``, ``qLogNEI maximum``).
        fidelity: the method (fidelity) to request, for multi-fidelity strategies; None: any.
    """

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any]
    acquisition_value: float | None = None
    predicted_mean: dict[str, float] = Field(default_factory=dict)
    predicted_std: dict[str, float] = Field(default_factory=dict)
    model_version: str
    strategy: str
    reason: str
    fidelity: str | None = None


class StrategySettings(BaseModel):
    """Settings shared by all strategies.

    Args:
        seed: seed of every random choice the strategy makes.
        initial_design: number of space-filling (Sobol) points before a model is used.
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    initial_design: int = Field(default=5, ge=0)


class Strategy(ABC):
    """Proposes experiments for one search space and set of objectives.

    Args:
        space: the search space.
        objectives: objectives, one or several.
        settings: the strategy's settings (its ``settings_model``); defaults if ``None``.
        outcome_constraints: quantities that must respect bounds.
    """

    name: ClassVar[str]
    settings_model: ClassVar[type[StrategySettings]] = StrategySettings

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        settings: StrategySettings | Mapping[str, Any] | None = None,
        outcome_constraints: Sequence[OutcomeConstraint] = (),
    ) -> None:
        if not objectives:
            raise ValueError("objectives: at least one objective is needed")
        self.space = space
        self.objectives = list(objectives)
        self.outcome_constraints = list(outcome_constraints)
        if settings is None:
            settings = self.settings_model()
        elif not isinstance(settings, self.settings_model):
            data = settings.model_dump() if isinstance(settings, BaseModel) else dict(settings)
            settings = self.settings_model.model_validate(data)
        self.settings = settings

    @abstractmethod
    def propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]] = (), n: int = 1
    ) -> list[Proposal]:
        """Propose ``n`` new points.

        Args:
            observations: ``(parameters, values)`` pairs measured so far.
            pending: parameter dicts of requests still in flight.
            n: number of proposals.

        Returns:
            ``n`` proposals, none equal to a pending or observed point where the
            space allows it.
        """

    def recommend(self, observations: Sequence[Observation]) -> dict[str, Any] | None:
        """The measured point this strategy puts forward as the campaign's answer.

        The best feasible observation of the (single) objective; a strategy with
        a model of the noise may override this with a better-founded choice.

        Args:
            observations: ``(parameters, values)`` pairs.

        Returns:
            The point's parameters; ``None`` with several objectives (a front, not a
            point) or without a feasible observation.
        """
        if len(self.objectives) != 1:
            return None
        objective = self.objectives[0]
        sign = 1.0 if objective.direction == "maximize" else -1.0
        feasible = [(p, v) for p, v in observations if objective.name in v and self.feasible(v)]
        if not feasible:
            return None
        return dict(max(feasible, key=lambda pv: sign * float(pv[1][objective.name]))[0])

    def feasible(self, values: Mapping[str, float]) -> bool:
        """Whether measured values satisfy every outcome constraint (a missing value does not)."""
        return satisfies(self.outcome_constraints, values)

    # ------------------------------------------------------------------ helpers
    def value_names(self) -> list[str]:
        """Names of the values each observation must carry: objectives, then constraints."""
        return [o.name for o in self.objectives] + [c.name for c in self.outcome_constraints]

    def observation_tensors(self, observations: Sequence[Observation]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode observations.

        Args:
            observations: ``(parameters, values)`` pairs.

        Returns:
            ``X`` of shape ``(n, d)`` and ``Y`` of shape ``(n, m)``, one column per
            objective then per outcome constraint, in the units of the data
            (no sign flips).

        Raises:
            ParameterError: if a parameter dict does not fit the space.
            ValueError: naming a missing or non-finite value.
        """
        names = self.value_names()
        X = self.space.encode([parameters for parameters, _ in observations])
        rows = []
        for i, (_, values) in enumerate(observations):
            row = []
            for name in names:
                if name not in values:
                    raise ValueError(f"observations[{i}]: missing value {name!r}")
                value = float(values[name])
                if not math.isfinite(value):
                    raise ValueError(f"observations[{i}]: value {name!r} is not finite ({value})")
                row.append(value)
            rows.append(row)
        Y = torch.tensor(rows, dtype=X.dtype).reshape(len(rows), len(names))
        return X, Y

    def model_version(self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]]) -> str:
        """Hash of the data, the pending points and the settings.

        Args:
            observations: the observations.
            pending: the pending points.

        Returns:
            16 hex digits.
        """
        payload = {
            "strategy": self.name,
            "settings": self.settings.model_dump(mode="json"),
            "objectives": [o.model_dump(mode="json") for o in self.objectives],
            "constraints": [c.model_dump(mode="json") for c in self.outcome_constraints],
            "observations": [[dict(p), dict(v)] for p, v in observations],
            "pending": [dict(p) for p in pending],
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def initial_design_points(self, start: int, n: int) -> list[dict[str, Any]]:
        """Points ``start .. start + n - 1`` of the strategy's seeded Sobol design.

        Args:
            start: index of the first point.
            n: number of points.

        Returns:
            The points, feasible for the space.
        """
        X = self.space.sample(start + n, seed=self.settings.seed)
        return self.space.decode(X[start : start + n])
