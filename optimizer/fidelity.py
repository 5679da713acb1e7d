"""Fidelities and their costs: the ladder of methods a campaign can evaluate with.

A *fidelity* is a method that measures or computes the campaign's quantity
(``chgnet``, ``emt``) with a cost per evaluation in the campaign's cost units.
Fidelities form a ladder from the cheapest, least trusted one to the *target*
fidelity, the one whose values the campaign optimises (the last rung).
:class:`CostBudget` accounts for what evaluations done and in flight cost. The
surrogates that link the rungs are in :mod:`labweave.optimizer.cokriging`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat


class Fidelity(BaseModel):
    """One rung of the fidelity ladder: a method and its cost.

    Args:
        method: the request method that evaluates at this fidelity (``chgnet``).
        cost: cost of one evaluation, in the campaign's cost units.
        label: what an evaluation at this fidelity does, for reasons
            (``MLIP screen``, ``EMT confirm``); the method name if empty.
        level: numeric fidelity in [0, 1] (1 for the target), BoTorch's
            convention, used where a number must stand for the fidelity; by
            default the cost relative to the target's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field(min_length=1)
    cost: FiniteFloat = Field(gt=0)
    label: str = ""
    level: float | None = Field(default=None, ge=0.0, le=1.0)


class FidelityLadder:
    """Fidelities from the cheapest (rung 0) to the target (the last rung).

    Args:
        fidelities: at least one fidelity; methods distinct.

    Raises:
        ValueError: naming ``fidelities`` if the list is empty or repeats a method.
    """

    def __init__(self, fidelities: Sequence[Fidelity]) -> None:
        if not fidelities:
            raise ValueError("fidelities: give at least one fidelity")
        methods = [f.method for f in fidelities]
        repeated = sorted({m for m in methods if methods.count(m) > 1})
        if repeated:
            raise ValueError(f"fidelities: method(s) {repeated} appear more than once")
        self.fidelities: list[Fidelity] = list(fidelities)
        self.methods: list[str] = methods
        self._rung = {m: i for i, m in enumerate(methods)}

    def __len__(self) -> int:
        return len(self.fidelities)

    @property
    def target(self) -> Fidelity:
        """The fidelity whose values the campaign optimises."""
        return self.fidelities[-1]

    @property
    def target_rung(self) -> int:
        """Index of the target fidelity."""
        return len(self.fidelities) - 1

    def rung(self, method: str) -> int:
        """Index of a method on the ladder.

        Raises:
            KeyError: naming the method and the known ones.
        """
        try:
            return self._rung[method]
        except KeyError:
            raise KeyError(f"method {method!r} is not a fidelity of this campaign ({self.methods})") from None

    def cost(self, method: str) -> float:
        """Cost of one evaluation by ``method``."""
        return self.fidelities[self.rung(method)].cost

    def label(self, method: str) -> str:
        """The fidelity's label, or its method name."""
        return self.fidelities[self.rung(method)].label or method

    def level(self, method: str) -> float:
        """Numeric fidelity in [0, 1]: the configured level, else cost relative to the target."""
        fidelity = self.fidelities[self.rung(method)]
        if fidelity.level is not None:
            return fidelity.level
        if fidelity is self.target:
            return 1.0
        return min(1.0, fidelity.cost / self.target.cost)

    def spent(self, methods: Iterable[str]) -> float:
        """Total cost of evaluations by the given methods (one entry per evaluation)."""
        return float(sum(self.cost(m) for m in methods))


@dataclass(frozen=True)
class CostBudget:
    """A budget in cost units and what is already committed to it.

    Args:
        total: the budget, or ``None`` for no limit.
        committed: cost of the evaluations done or in flight.
    """

    total: float | None
    committed: float

    @property
    def remaining(self) -> float:
        """Cost units left (infinite without a limit)."""
        return math.inf if self.total is None else self.total - self.committed

    def allows(self, cost: float, keep: float = 0.0) -> bool:
        """Whether an evaluation of ``cost`` fits and still leaves ``keep`` units."""
        return cost + keep <= self.remaining + 1e-9

    def after(self, cost: float) -> CostBudget:
        """The budget once an evaluation of ``cost`` is committed."""
        return CostBudget(self.total, self.committed + cost)
