"""How a campaign run compares with its random baseline: progress curves, scores, the winner.

The numbers come from :mod:`labweave.optimizer.analytics`; this module puts
a run and its baseline on common terms and scores each:

- one objective: the best value so far (only results that satisfy the
  outcome constraints count);
- several objectives: the hypervolume dominated by the results, both runs
  sharing one reference point (the objectives' thresholds, else the worst
  value either run observed), so that their hypervolumes compare;
- several fidelities (a fidelity ladder and a cost budget): the best value at
  the target fidelity against the cost spent, the baseline charged on its
  campaign's ladder.

Where the demo measured replicates of each run's recommended point (a noisy
instrument), the runs are compared on the replicates' mean instead.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labweave.optimizer import analytics
from labweave.optimizer.analytics import CampaignTerms, Curve

from .runs import CampaignRun


def common_terms(optimised: CampaignRun, baseline: CampaignRun) -> tuple[CampaignTerms, CampaignTerms]:
    """Each run's terms, the baseline charged and judged on the campaign's fidelity ladder (if it has one)."""
    own = optimised.terms
    return own, baseline.terms.with_ladder_of(own) if own.ladder is not None else baseline.terms


@dataclass(frozen=True)
class Trace:
    """A run's progress curve, labelled with its strategy."""

    label: str
    curve: Curve


def trace(run: CampaignRun, terms: CampaignTerms | None = None,
          reference: Mapping[str, float] | None = None) -> Trace:
    """The run's best so far (or hypervolume) after each result, against experiments or cost.

    Args:
        run: a finished run.
        terms: the terms to read it on (default: its own).
        reference: the hypervolume reference point (several objectives).
    """
    terms = terms or run.terms
    return Trace(run.campaign.spec.strategy.name, analytics.progress_curve(terms, run.observations(terms), reference))


@dataclass
class Score:
    """A run's outcome in one line.

    Args:
        name: the campaign run's name.
        strategy: its strategy.
        experiments: results received.
        failed: requests that failed.
        cost: cost spent (several fidelities), else ``None``.
        best: the best value of the first objective (target fidelity only, feasible only).
        best_parameters: where it was found.
        hypervolume: several objectives: the hypervolume at the end.
        front: several objectives: the Pareto front's size.
        headline: the number to compare, as text.
        value: the number to compare (best value, replicates' mean, or hypervolume), ``None`` if
            nothing counted.
        better_is_larger: direction of ``value``.
        replicate_mean: the mean of the first objective over the replicates of the point the
            run's strategy recommended (``replicated_parameters``).
        replicate_std: their sample standard deviation (``None`` for fewer than two).
        replicates: how many replicates gave a value.
        replicated_parameters: the point that was replicated.
    """

    name: str
    strategy: str
    experiments: int
    failed: int
    cost: float | None
    best: float | None
    best_parameters: dict[str, Any]
    hypervolume: float | None
    front: int | None
    headline: str
    value: float | None
    better_is_larger: bool
    replicate_mean: float | None = None
    replicate_std: float | None = None
    replicates: int = 0
    replicated_parameters: dict[str, Any] | None = None


def fmt_point(parameters: Mapping[str, Any]) -> str:
    """A point as ``name = value, ...`` with :func:`fmt` values."""
    return ", ".join(f"{k} = {fmt(v)}" for k, v in parameters.items())


def score(run: CampaignRun, terms: CampaignTerms | None = None,
          reference: Mapping[str, float] | None = None) -> Score:
    """Score one run (see :func:`trace` for the arguments)."""
    terms = terms or run.terms
    obs = run.observations(terms)
    objectives = terms.objectives
    objective = objectives[0]
    top = analytics.best(obs, objective)
    best = top.values[objective.name] if top else None
    cost = sum(o.cost for o in obs) if terms.ladder is not None else None
    failed = sum(1 for r in run.requests if r.status == "failed")
    hv = front = None
    value: float | None
    if len(objectives) > 1:
        hv = analytics.hypervolume(obs, objectives, reference or analytics.reference_point(objectives, obs))
        front = len(analytics.pareto_front(obs, objectives))
        headline = f"hypervolume {hv:.4g} ({front} on the front)"
        value, larger = hv, True
    else:
        at = f" at {terms.target}" if terms.target else ""
        headline = f"{objective.name}{at} {fmt(best)}" if best is not None else f"no feasible {objective.name}{at}"
        value, larger = best, objective.direction == "maximize"
    repeated = [r[objective.name] for r in run.replicates if objective.name in r]
    mean = statistics.fmean(repeated) if repeated else None
    spread = statistics.stdev(repeated) if len(repeated) > 1 else None
    if mean is not None and len(objectives) == 1:
        # A noisy instrument: the best single result is partly luck; the recommended point's replicates are not.
        headline = (f"{objective.name} {fmt(mean)}" + (f" ± {spread:.2g}" if spread is not None else "")
                    + f" ({len(repeated)} replicates of the recommended point; best single {fmt(best)})")
        value = mean
    return Score(run.name, run.campaign.spec.strategy.name, len(obs), failed, cost, best,
                 dict(top.parameters) if top else {}, hv, front, headline, value, larger,
                 mean, spread, len(repeated), run.replicated)


@dataclass(frozen=True)
class Comparison:
    """A campaign run and its baseline on common terms.

    Args:
        optimised: the campaign's score.
        baseline: the baseline's score.
        terms: the terms each was read on (the campaign's, the baseline's on the campaign's ladder).
        reference: the shared hypervolume reference point (several objectives), else ``None``.
    """

    optimised: Score
    baseline: Score
    terms: tuple[CampaignTerms, CampaignTerms]
    reference: dict[str, float] | None


def compare(optimised: CampaignRun, baseline: CampaignRun) -> Comparison:
    """Score a campaign and its baseline on common terms (one reference point, one cost ladder)."""
    own, theirs = common_terms(optimised, baseline)
    reference = None
    if len(own.objectives) > 1:
        reference = analytics.reference_point(own.objectives, optimised.observations(own)
                                               + baseline.observations(theirs))
    return Comparison(score(optimised, own, reference), score(baseline, theirs, reference), (own, theirs), reference)


#: Replicate means closer than this many standard errors of their difference are a tie.
TIE_STANDARD_ERRORS = 2.0


def within_noise(a: Score, b: Score) -> bool:
    """Whether two runs compared on replicates differ by no more than the replicates' scatter allows.

    The standard error of the difference of two means, ``sqrt(s_a^2/n_a + s_b^2/n_b)``; a difference
    within :data:`TIE_STANDARD_ERRORS` of it is not evidence that either point is better.
    """
    if a.replicate_mean is None or b.replicate_mean is None or a.replicate_std is None or b.replicate_std is None:
        return False
    error = math.sqrt(a.replicate_std**2 / a.replicates + b.replicate_std**2 / b.replicates)
    return abs(a.replicate_mean - b.replicate_mean) <= TIE_STANDARD_ERRORS * error


def winner(a: Score, b: Score) -> str | None:
    """The name of the better run; ``None`` for a tie (equal, or replicates within noise) or when
    either has nothing to compare."""
    if a.value is None or b.value is None or a.value == b.value or within_noise(a, b):
        return None
    return a.name if (a.value > b.value) == a.better_is_larger else b.name


def fmt(value: Any) -> str:
    """A number in four significant digits, anything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
