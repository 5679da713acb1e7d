"""Best so far: a campaign's progress curve, against experiments or against cost.

- one objective: the best value after each result, counting only results
  that satisfy the outcome constraints and, with a fidelity ladder, only those
  of the target fidelity (a cheap screen is a hint, not a finding);
- several objectives: the hypervolume the results so far dominate (see
  :mod:`.front`).

The x axis counts experiments (the results' number) or the cost spent, each
result charged its fidelity's cost; by default the campaign budget's unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from labweave.schemas.campaign import Objective

from .front import hypervolume, reference_point, signs
from .observations import Observation
from .terms import COST, CampaignTerms, Unit


@dataclass(frozen=True)
class Curve:
    """A progress curve and the single results behind it.

    Args:
        x: experiments done (or cost spent) after each result.
        y: the best value (or hypervolume) after each result; ``None`` before the first that counts.
        points: ``(x, value of the first objective, method)`` of each result that has one, for a scatter.
        x_label: what ``x`` counts.
        y_label: what ``y`` is.
    """

    x: list[float]
    y: list[float | None]
    points: list[tuple[float, float, str]] = field(default_factory=list)
    x_label: str = "experiments"
    y_label: str = ""

    def steps(self) -> list[tuple[float, float]]:
        """``(x, y)`` where ``y`` is known."""
        return [(x, y) for x, y in zip(self.x, self.y) if y is not None]


def better(a: float, b: float, objective: Objective) -> bool:
    """Whether ``a`` is a better value than ``b`` of ``objective``."""
    (sign,) = signs([objective.direction])
    return sign * a > sign * b


def best(observations: Sequence[Observation], objective: Objective) -> Observation | None:
    """The observation with the best value of ``objective`` among those that count, ``None`` if none."""
    found = None
    for o in observations:
        if o.counts and objective.name in o.values and (
                found is None or better(o.values[objective.name], found.values[objective.name], objective)):
            found = o
    return found


def _xs(observations: Sequence[Observation], by: Unit) -> list[float]:
    if by != COST:
        return [float(o.n) for o in observations]
    xs, spent = [], 0.0
    for o in observations:
        spent += o.cost
        xs.append(spent)
    return xs


def best_so_far(terms: CampaignTerms, observations: Sequence[Observation], by: Unit | None = None,
                objective: Objective | None = None) -> Curve:
    """The best value of ``objective`` (the first by default) after each result.

    Args:
        terms: the campaign's objectives, fidelities and budget unit.
        observations: in order.
        by: ``experiments`` or ``cost`` on the x axis (default: the budget's unit).
        objective: the objective (default: the first).
    """
    by = by or terms.unit
    objective = objective or terms.objectives[0]
    xs, ys, points, top = _xs(observations, by), [], [], None
    for x, o in zip(xs, observations):
        value = o.values.get(objective.name)
        if value is not None:
            points.append((x, value, o.method))
            if o.counts and (top is None or better(value, top, objective)):
                top = value
        ys.append(top)
    at = f" ({terms.target})" if terms.target and by == COST else ""
    return Curve(xs, ys, points, "cost spent" if by == COST else "experiments", f"best {objective.name}{at}")


def hypervolume_so_far(terms: CampaignTerms, observations: Sequence[Observation],
                       reference: Mapping[str, float] | None = None, by: Unit | None = None) -> Curve:
    """The hypervolume after each result (several objectives).

    Args:
        terms: the campaign's objectives.
        observations: in order.
        reference: the reference point (default: :func:`.reference_point` of these observations).
        by: ``experiments`` or ``cost`` on the x axis (default: the budget's unit).
    """
    by = by or terms.unit
    objectives = terms.objectives
    ref = dict(reference or reference_point(objectives, observations))
    xs, points, counted = _xs(observations, by), [], []
    ys: list[float | None] = []
    volume = 0.0
    first = objectives[0].name
    for x, o in zip(xs, observations):
        if first in o.values:
            points.append((x, o.values[first], o.method))
        if o.counts and all(obj.name in o.values for obj in objectives):
            counted.append(o)
            volume = hypervolume(counted, objectives, ref)
        ys.append(volume)
    names = " x ".join(o.name for o in objectives)
    return Curve(xs, ys, points, "cost spent" if by == COST else "experiments", f"hypervolume ({names})")


def progress_curve(terms: CampaignTerms, observations: Sequence[Observation],
                   reference: Mapping[str, float] | None = None, by: Unit | None = None) -> Curve:
    """The best so far with one objective, the hypervolume with several."""
    if len(terms.objectives) > 1:
        return hypervolume_so_far(terms, observations, reference, by)
    return best_so_far(terms, observations, by)
