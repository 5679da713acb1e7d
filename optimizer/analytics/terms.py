"""What a campaign's analytics need to know of it: objectives, outcome constraints, budget, fidelities.

:class:`CampaignTerms` is built from a checked
:class:`~labweave.schemas.campaign.CampaignSpec` (:meth:`CampaignTerms.of`),
or from a spec as the server stores it, which may be any JSON object
(:meth:`CampaignTerms.read`: the parts that are well formed are kept, the
others left out).

A campaign's budget is counted in experiments (requests), unless its
strategy has a fidelity ladder and a cost budget in its settings (the
multi-fidelity strategy): then it is counted in cost units, each evaluation
charged its fidelity's cost.

A campaign's fine-tunings of its MLIP (``[mlip_learning]``) are no observations and do not count against a
budget of requests; in a cost budget a fine-tuning is charged what
:func:`labweave.optimizer.mlip_learning.fine_tuning_charges` says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from labweave.optimizer.fidelity import Fidelity, FidelityLadder
from labweave.optimizer.mlip_learning import FINE_TUNING
from labweave.schemas.campaign import CampaignSpec, MlipLearning, Objective, OutcomeConstraint

Unit = Literal["experiments", "cost"]
EXPERIMENTS: Unit = "experiments"
COST: Unit = "cost"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CampaignTerms:
    """The parts of a campaign that its analytics read.

    Args:
        objectives: the objectives, in the spec's order (the first is the headline one).
        outcome_constraints: the bounds a result must respect to count.
        request_budget: the most requests the campaign makes (``None``: not known).
        ladder: the strategy's fidelity ladder, cheapest first (``None``: one fidelity).
        cost_budget: the cost units the strategy may spend (with a ladder), else ``None``.
        mlip_learning: how the campaign fine-tunes its MLIP (``None``: it does not).
    """

    objectives: tuple[Objective, ...]
    outcome_constraints: tuple[OutcomeConstraint, ...] = ()
    request_budget: int | None = None
    ladder: FidelityLadder | None = None
    cost_budget: float | None = None
    mlip_learning: MlipLearning | None = None

    @classmethod
    def of(cls, spec: CampaignSpec) -> CampaignTerms:
        """The terms of a checked campaign."""
        return cls._build(spec.objectives, spec.outcome_constraints, spec.budget, spec.strategy.settings,
                          spec.mlip_learning)

    @classmethod
    def read(cls, spec: Mapping[str, Any]) -> CampaignTerms:
        """The terms of a stored spec: a whole campaign if it is one, else its well-formed parts.

        Args:
            spec: the spec as JSON (the server accepts any object).

        Returns:
            The terms; objectives and constraints that do not validate are left out, as are a
            budget that is not a positive integer and a malformed fidelity ladder.
        """
        try:
            return cls.of(CampaignSpec.model_validate(spec))
        except ValidationError:
            pass
        budget = spec.get("budget")
        strategy = spec.get("strategy")
        settings = strategy.get("settings") if isinstance(strategy, Mapping) else None
        learning = _valid(MlipLearning, [spec["mlip_learning"]] if spec.get("mlip_learning") is not None else [])
        return cls._build(_valid(Objective, spec.get("objectives")),
                          _valid(OutcomeConstraint, spec.get("outcome_constraints")),
                          budget if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0 else None,
                          settings if isinstance(settings, Mapping) else {},
                          learning[0] if learning else None)

    @classmethod
    def _build(cls, objectives: Sequence[Objective], constraints: Sequence[OutcomeConstraint],
               request_budget: int | None, settings: Mapping[str, Any],
               mlip_learning: MlipLearning | None = None) -> CampaignTerms:
        ladder = _ladder(settings.get("fidelities"))
        cost = settings.get("budget")
        cost_budget = (float(cost) if ladder is not None and isinstance(cost, (int, float))
                       and not isinstance(cost, bool) and math.isfinite(cost) and cost > 0 else None)
        return cls(tuple(objectives), tuple(constraints), request_budget, ladder, cost_budget, mlip_learning)

    @staticmethod
    def measures(quantity: str) -> bool:
        """Whether a campaign's request of ``quantity`` evaluates a point (an observation once answered),
        rather than fine-tuning the campaign's MLIP."""
        return quantity != FINE_TUNING

    @property
    def unit(self) -> Unit:
        """What the budget counts: ``cost`` with a fidelity ladder and a cost budget, else ``experiments``."""
        return COST if self.cost_budget is not None else EXPERIMENTS

    @property
    def budget(self) -> float | None:
        """The budget in its own :attr:`unit` (``None``: not known)."""
        return self.cost_budget if self.unit == COST else self.request_budget

    @property
    def target(self) -> str | None:
        """The target fidelity's method (the ladder's last, dearest rung), ``None`` without a ladder."""
        return self.ladder.target.method if self.ladder is not None else None

    def at_target(self, method: str) -> bool:
        """Whether a result by ``method`` counts for the best value: every result, or with a fidelity
        ladder only those of the target fidelity (a cheap screen is a hint, not a finding)."""
        return self.ladder is None or method == self.ladder.target.method

    def cost(self, fidelity: Any) -> float:
        """The cost of one evaluation at ``fidelity``: a method name or a numeric level in [0, 1].

        Returns:
            The ladder's cost; 0 without a ladder or for a fidelity not on it.
        """
        if self.ladder is None or fidelity is None or isinstance(fidelity, bool):
            return 0.0
        for method in self.ladder.methods:
            if fidelity == method or (isinstance(fidelity, (int, float))
                                      and math.isclose(fidelity, self.ladder.level(method))):
                return self.ladder.cost(method)
        return 0.0

    def with_ladder_of(self, other: CampaignTerms) -> CampaignTerms:
        """These terms charged and judged with ``other``'s fidelity ladder and cost budget (a baseline
        that evaluates at the target fidelity only, compared with its multi-fidelity campaign)."""
        return CampaignTerms(self.objectives, self.outcome_constraints, self.request_budget, other.ladder,
                             other.cost_budget, self.mlip_learning)


def _valid(model: type[M], items: Any) -> list[M]:
    """The entries of a JSON list that validate as ``model``."""
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(model.model_validate(item))
        except ValidationError:
            continue
    return out


def _ladder(entries: Any) -> FidelityLadder | None:
    """A strategy's ``fidelities`` setting as a ladder; ``None`` if absent or malformed."""
    fidelities = _valid(Fidelity, entries)
    if not fidelities or len(fidelities) != len(entries):
        return None
    try:
        return FidelityLadder(fidelities)
    except ValueError:
        return None
