"""Model-free baselines: a continued Sobol sequence, or independent random draws."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from labweave.optimizer.strategies.base import Observation, Proposal, Strategy, StrategySettings


class RandomSettings(StrategySettings):
    """Settings of the random strategy.

    Args:
        method: ``"sobol"`` continues one scrambled Sobol sequence (space-filling);
            ``"random"`` draws each batch afresh (independent points, the classic
            random-search baseline).
    """

    method: Literal["sobol", "random"] = "random"


class RandomStrategy(Strategy):
    """Proposes feasible points without a model.

    The k-th proposal of a campaign (counting observations and pending requests)
    depends only on the seed and k, so a restarted campaign continues where it was.
    """

    name = "random"
    settings_model = RandomSettings
    settings: RandomSettings

    def propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]] = (), n: int = 1
    ) -> list[Proposal]:
        """Propose ``n`` feasible points (see :meth:`Strategy.propose`)."""
        start = len(observations) + len(pending)
        if self.settings.method == "sobol":
            points = self.initial_design_points(start, n)
        else:
            digest = hashlib.sha256(f"{self.settings.seed}:{start}".encode()).digest()
            points = self.space.sample_points(n, seed=int.from_bytes(digest[:4], "little"))
        version = self.model_version(observations, pending)
        return [
            Proposal(
                parameters=p,
                model_version=version,
                strategy=self.name,
                reason=f"{self.settings.method} point {start + i + 1}",
            )
            for i, p in enumerate(points)
        ]
