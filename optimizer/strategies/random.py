"""Model-free baselines: a continued Sobol sequence, independent random draws, or draws from a pool."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from labweave.optimizer.pools import CandidatePool, pool_points
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies.base import Observation, Proposal, Strategy, StrategySettings
from labweave.schemas.campaign import Objective, OutcomeConstraint


class RandomSettings(StrategySettings):
    """Settings of the random strategy.

    Args:
        method: ``"sobol"`` continues one scrambled Sobol sequence (space-filling);
            ``"random"`` draws each batch afresh (independent points, the classic
            random-search baseline).
        pool: draw from these candidates instead of the whole space (see
            :mod:`labweave.optimizer.pools`), in a seeded random order, none twice:
            the baseline of a strategy that searches the same pool. ``method`` is
            then ignored.
    """

    method: Literal["sobol", "random"] = "random"
    pool: CandidatePool | None = None


class RandomStrategy(Strategy):
    """Proposes feasible points without a model.

    The k-th proposal of a campaign (counting observations and pending requests)
    depends only on the seed and k, so a restarted campaign continues where it was.
    With a pool, once every candidate has been proposed nothing more is.
    """

    name = "random"
    settings_model = RandomSettings
    settings: RandomSettings

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        settings: RandomSettings | Mapping[str, Any] | None = None,
        outcome_constraints: Sequence[OutcomeConstraint] = (),
    ) -> None:
        super().__init__(space, objectives, settings, outcome_constraints)
        self._pool: list[dict[str, Any]] | None = None
        if self.settings.pool is not None:
            candidates = pool_points(self.settings.pool, self.space, self.settings.seed)
            order = np.random.default_rng(self.settings.seed).permutation(len(candidates))
            self._pool = [candidates[i] for i in order]

    def propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]] = (), n: int = 1
    ) -> list[Proposal]:
        """Propose ``n`` feasible points (see :meth:`Strategy.propose`); fewer once a pool is used up."""
        start = len(observations) + len(pending)
        if self._pool is not None:
            points = self._pool[start:start + n]
            how = "pool draw"
        elif self.settings.method == "sobol":
            points, how = self.initial_design_points(start, n), "sobol point"
        else:
            digest = hashlib.sha256(f"{self.settings.seed}:{start}".encode()).digest()
            points, how = self.space.sample_points(n, seed=int.from_bytes(digest[:4], "little")), "random point"
        version = self.model_version(observations, pending)
        return [
            Proposal(
                parameters=dict(p),
                model_version=version,
                strategy=self.name,
                reason=f"{how} {start + i + 1}",
            )
            for i, p in enumerate(points)
        ]
