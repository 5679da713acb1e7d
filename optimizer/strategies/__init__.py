"""Strategies that propose experiments, chosen by name.

>>> strategy = get_strategy("bayesian", {"initial_design": 3}, space=space, objectives=objectives)
>>> proposals = strategy.propose(observations, pending=in_flight, n=2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies.base import Observation, Proposal, Strategy, StrategySettings
from labweave.optimizer.strategies.bayesian import BayesianSettings, BayesianStrategy
from labweave.optimizer.strategies.random import RandomSettings, RandomStrategy
from labweave.schemas.campaign import Objective, OutcomeConstraint

#: Registry of strategies by name.
STRATEGIES: dict[str, type[Strategy]] = {
    BayesianStrategy.name: BayesianStrategy,
    RandomStrategy.name: RandomStrategy,
}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Add a strategy class to the registry under ``cls.name`` (usable as a decorator).

    Args:
        cls: the strategy class.

    Returns:
        The class, unchanged.

    Raises:
        ValueError: if another class already holds the name.
    """
    existing = STRATEGIES.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"strategy name {cls.name!r} is already taken by {existing.__name__}")
    STRATEGIES[cls.name] = cls
    return cls


def settings_model(name: str) -> type[StrategySettings]:
    """Return the settings model of a registered strategy.

    Raises:
        KeyError: naming the unknown strategy and the known ones.
    """
    return _lookup(name).settings_model


def get_strategy(
    name: str,
    settings: StrategySettings | Mapping[str, Any] | None = None,
    *,
    space: SearchSpace,
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint] = (),
) -> Strategy:
    """Build a strategy by registry name.

    Args:
        name: ``"bayesian"``, ``"random"``, or any registered name.
        settings: the strategy's settings (model or dict); defaults if ``None``.
        space: the search space.
        objectives: the objectives.
        outcome_constraints: outcome constraints.

    Returns:
        The strategy.

    Raises:
        KeyError: for an unknown name.
        pydantic.ValidationError: for invalid settings, naming the field.
    """
    return _lookup(name)(space, objectives, settings, outcome_constraints)


def _lookup(name: str) -> type[Strategy]:
    if name not in STRATEGIES and name == "multifidelity":
        import labweave.optimizer.strategies.multifidelity  # noqa: F401  (registers itself on import)
    if name not in STRATEGIES and name == "sisso":
        import labweave.optimizer.strategies.sisso  # noqa: F401  (registers itself on import)
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None


__all__ = [
    "STRATEGIES",
    "BayesianSettings",
    "BayesianStrategy",
    "Observation",
    "Proposal",
    "RandomSettings",
    "RandomStrategy",
    "Strategy",
    "StrategySettings",
    "get_strategy",
    "register_strategy",
    "settings_model",
]
