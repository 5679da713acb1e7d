"""From campaign runs to the numbers the report shows: progress curves, Pareto fronts, scores.

Three kinds of campaign are compared with their random baselines:

- one objective: the best value so far against the number of experiments
  (only results that satisfy the outcome constraints count);
- several objectives: the hypervolume dominated by the results so far,
  against the number of experiments, with the objectives' thresholds as the
  reference point (Zitzler & Thiele, IEEE Trans. Evol. Comput. 3, 257 (1999));
  both runs of a campaign share one reference point, so their hypervolumes
  compare;
- several fidelities (a ``fidelities`` ladder in the strategy's settings):
  the best value at the target fidelity (the last, dearest rung) against
  the cost spent, each evaluation charged its fidelity's cost.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labweave.optimizer.campaign import Campaign
from labweave.optimizer.fidelity import Fidelity, FidelityLadder

if TYPE_CHECKING:
    from .lab import CampaignRun

SINGLE, PARETO, FIDELITY = "single", "pareto", "fidelity"


def kind_of(campaign: Campaign) -> str:
    """``"fidelity"`` if the strategy has a fidelity ladder, ``"pareto"`` for several objectives, else ``"single"``."""
    if campaign.spec.strategy.settings.get("fidelities"):
        return FIDELITY
    return PARETO if len(campaign.spec.objectives) > 1 else SINGLE


def costs_of(campaign: Campaign) -> dict[str, float]:
    """Cost per evaluation by method, from the strategy's fidelity ladder (cheapest first); empty if none."""
    return {f["method"]: float(f["cost"]) for f in campaign.spec.strategy.settings.get("fidelities") or []}


def fidelity_cost(campaign: Campaign, fidelity: Any) -> float:
    """The cost of one evaluation at ``fidelity``, given as a method name or as a numeric level.

    Args:
        campaign: gives the fidelity ladder.
        fidelity: a proposal's fidelity (``"emt"``, or a level in [0, 1]).

    Returns:
        The cost; 0 for an unknown fidelity or a campaign without a ladder.
    """
    entries = campaign.spec.strategy.settings.get("fidelities") or []
    if not entries:
        return 0.0
    ladder = FidelityLadder([Fidelity.model_validate(f) for f in entries])
    for method in ladder.methods:
        if fidelity == method or (isinstance(fidelity, (int, float)) and math.isclose(fidelity, ladder.level(method))):
            return ladder.cost(method)
    return 0.0


@dataclass
class Observation:
    """One result of a run, in the order the daemon learnt it.

    Args:
        n: 1-based index.
        values: objective and outcome-constraint values.
        parameters: the point measured.
        method: the method that produced it.
        feasible: whether it satisfies the outcome constraints.
        provenance: the request's provenance (the proposal: predictions, reason, model version).
    """

    n: int
    values: dict[str, float]
    parameters: dict[str, Any]
    method: str
    feasible: bool
    provenance: dict[str, Any] = field(default_factory=dict)


def observations(run: CampaignRun) -> list[Observation]:
    """The run's results in the daemon's order (that of its history), with the method of each.

    Args:
        run: a finished campaign run.

    Returns:
        The observations; results whose values cannot be read are left out, as the daemon does.
    """
    requests = {r["uuid"]: r for r in run.requests}
    results = {r["result"]["request_uuid"]: r["result"] for r in run.results}
    out = []
    for entry in run.state.get("history", []):
        result = results.get(entry["request_uuid"])
        request = requests.get(entry["request_uuid"])
        if result is None or request is None:
            continue
        try:
            values = run.campaign.read_values(result["data"])
        except ValueError:
            continue
        methods = result.get("method") or [""]
        provenance = dict(request.get("provenance") or {})
        out.append(Observation(len(out) + 1, values, dict(provenance.get("parameters") or {}),
                               methods[0] if isinstance(methods, list) else str(methods),
                               run.campaign.feasible(values), provenance))
    return out


# ------------------------------------------------------------------ Pareto fronts
def _signed(values: Mapping[str, float], campaign: Campaign) -> list[float]:
    """Objective values turned so that larger is better."""
    return [values[o.name] * (1.0 if o.direction == "maximize" else -1.0) for o in campaign.spec.objectives]


def pareto_front(obs: Sequence[Observation], campaign: Campaign) -> list[Observation]:
    """The feasible observations no other feasible observation dominates.

    Args:
        obs: observations.
        campaign: gives the objectives and their directions.

    Returns:
        The non-dominated observations, sorted by the first objective.
    """
    feasible = [o for o in obs if o.feasible]
    signed = [_signed(o.values, campaign) for o in feasible]
    front = []
    for i, a in enumerate(signed):
        dominated = any(all(b[k] >= a[k] for k in range(len(a))) and b != a for j, b in enumerate(signed) if j != i)
        if not dominated and a not in [_signed(f.values, campaign) for f in front]:
            front.append(feasible[i])
    first = campaign.spec.objectives[0].name
    return sorted(front, key=lambda o: o.values[first])


def reference_point(campaign: Campaign, obs: Sequence[Observation]) -> dict[str, float]:
    """Each objective's threshold, or where it has none, the worst value observed (in any run given).

    Args:
        campaign: gives the objectives.
        obs: observations of every run to be compared.

    Returns:
        ``{objective: reference value}``.
    """
    ref = {}
    for o in campaign.spec.objectives:
        if o.threshold is not None:
            ref[o.name] = o.threshold
            continue
        seen = [x.values[o.name] for x in obs] or [0.0]
        ref[o.name] = min(seen) if o.direction == "maximize" else max(seen)
    return ref


def hypervolume(obs: Sequence[Observation], campaign: Campaign, reference: Mapping[str, float]) -> float:
    """The area dominated by the feasible observations and bounded by the reference point (two objectives).

    Args:
        obs: observations.
        campaign: gives the two objectives and their directions.
        reference: the reference point, ``{objective: value}``.

    Returns:
        The hypervolume, in the product of the objectives' units.

    Raises:
        ValueError: naming ``objectives`` if the campaign does not have exactly two.
    """
    objectives = campaign.spec.objectives
    if len(objectives) != 2:
        raise ValueError(f"objectives: the hypervolume here is for two objectives, not {len(objectives)}")
    ref = _signed(reference, campaign)
    points = [p for p in (_signed(o.values, campaign) for o in obs if o.feasible) if p[0] > ref[0] and p[1] > ref[1]]
    area, top = 0.0, ref[1]
    for x, y in sorted(points, key=lambda p: -p[0]):  # sweep from the best first objective down
        if y > top:
            area += (x - ref[0]) * (y - top)
            top = y
    return area


# ------------------------------------------------------------------ progress curves
@dataclass
class Trace:
    """A run's progress: the curve and the individual results behind it.

    Args:
        label: the run's strategy.
        x: experiments done (or cost spent) after each result.
        y: best value (or hypervolume) after each result; ``None`` before the first that counts.
        points: ``(x, value, method)`` of each result, for a scatter.
        x_label: what ``x`` counts.
        y_label: what ``y`` is.
    """

    label: str
    x: list[float]
    y: list[float | None]
    points: list[tuple[float, float, str]] = field(default_factory=list)
    x_label: str = "experiments"
    y_label: str = ""


def trace(run: CampaignRun, reference: Mapping[str, float] | None = None,
          costs: Mapping[str, float] | None = None) -> Trace:
    """The run's progress curve (see the module docstring for the three kinds).

    Args:
        run: a finished run.
        reference: the hypervolume reference point (several objectives).
        costs: cost per method (several fidelities; the baseline takes its campaign's ladder).

    Returns:
        The trace.
    """
    campaign = run.campaign
    obs = observations(run)
    objective = campaign.spec.objectives[0]
    sign = 1.0 if objective.direction == "maximize" else -1.0
    label = campaign.spec.strategy.name
    if len(campaign.spec.objectives) > 1:
        ref = dict(reference or reference_point(campaign, obs))
        ys = [hypervolume(obs[:i], campaign, ref) for i in range(1, len(obs) + 1)]
        names = " x ".join(o.name for o in campaign.spec.objectives)
        return Trace(label, [o.n for o in obs], list(ys), [(o.n, o.values[objective.name], o.method) for o in obs],
                     y_label=f"hypervolume ({names})")
    if costs:
        target = list(costs)[-1]
        x, y, points, spent, best = [], [], [], 0.0, None
        for o in obs:
            spent += costs.get(o.method, 0.0)
            value = o.values[objective.name]
            if o.method == target and o.feasible and (best is None or sign * value > sign * best):
                best = value
            x.append(spent)
            y.append(best)
            points.append((spent, value, o.method))
        return Trace(label, x, y, points, x_label="cost spent", y_label=f"best {objective.name} ({target})")
    x, y, points, best = [], [], [], None
    for o in obs:
        value = o.values[objective.name]
        if o.feasible and (best is None or sign * value > sign * best):
            best = value
        x.append(o.n)
        y.append(best)
        points.append((o.n, value, o.method))
    return Trace(label, x, y, points, y_label=f"best {objective.name}")


# ------------------------------------------------------------------ scores
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


def score(run: CampaignRun, reference: Mapping[str, float] | None = None,
          costs: Mapping[str, float] | None = None) -> Score:
    """Score one run (see :func:`trace` for the arguments)."""
    campaign = run.campaign
    obs = observations(run)
    objective = campaign.spec.objectives[0]
    sign = 1.0 if objective.direction == "maximize" else -1.0
    target = list(costs)[-1] if costs else None
    counted = [o for o in obs if o.feasible and (target is None or o.method == target)]
    best_obs = max(counted, key=lambda o: sign * o.values[objective.name], default=None)
    best = best_obs.values[objective.name] if best_obs else None
    cost = sum(costs.get(o.method, 0.0) for o in obs) if costs else None
    failed = sum(1 for r in run.requests if r["status"] == "failed")
    hv = front = None
    if len(campaign.spec.objectives) > 1:
        ref = dict(reference or reference_point(campaign, obs))
        hv = hypervolume(obs, campaign, ref)
        front = len(pareto_front(obs, campaign))
        headline = f"hypervolume {hv:.4g} ({front} on the front)"
        value, larger = hv, True
    else:
        at = f" at {target}" if target else ""
        headline = f"{objective.name}{at} {fmt(best)}" if best is not None else f"no feasible {objective.name}{at}"
        value, larger = best, objective.direction == "maximize"
    repeated = [r[objective.name] for r in getattr(run, "replicates", []) if objective.name in r]
    mean = statistics.fmean(repeated) if repeated else None
    spread = statistics.stdev(repeated) if len(repeated) > 1 else None
    if mean is not None and len(campaign.spec.objectives) == 1:
        # A noisy instrument: the best single result is partly luck; the recommended point's replicates are not.
        headline = (f"{objective.name} {fmt(mean)}" + (f" ± {spread:.2g}" if spread is not None else "")
                    + f" ({len(repeated)} replicates of the recommended point; best single {fmt(best)})")
        value = mean
    return Score(run.name, campaign.spec.strategy.name, len(obs), failed, cost, best,
                 dict(best_obs.parameters) if best_obs else {}, hv, front, headline, value, larger,
                 mean, spread, len(repeated), getattr(run, "replicated", None))


def compare(optimised: CampaignRun, baseline: CampaignRun) -> tuple[Score, Score, dict[str, float] | None]:
    """Score a campaign and its baseline on common terms (one reference point, one cost ladder).

    Returns:
        ``(optimised score, baseline score, reference point or None)``.
    """
    campaign = optimised.campaign
    costs = costs_of(campaign) or None
    reference = None
    if len(campaign.spec.objectives) > 1:
        reference = reference_point(campaign, observations(optimised) + observations(baseline))
    return (score(optimised, reference, costs), score(baseline, reference, costs), reference)


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


# ------------------------------------------------------------------ predictions
@dataclass
class Prediction:
    """The model's prediction for a proposal, and what was then measured.

    Args:
        mean: predicted mean.
        std: predicted standard deviation.
        measured: the measured value.
        method: the method that measured it.
    """

    mean: float
    std: float
    measured: float
    method: str

    @property
    def z(self) -> float:
        """Standardised error ``(measured - mean) / std``."""
        return (self.measured - self.mean) / self.std if self.std > 0 else math.inf


def predictions(run: CampaignRun) -> dict[str, list[Prediction]]:
    """Each objective's predictions against its measurements, for the model-made proposals of a run.

    Args:
        run: a finished run.

    Returns:
        ``{objective: predictions}`` in the order of the results; objectives the model did not
        predict are left out.
    """
    out: dict[str, list[Prediction]] = {}
    for o in observations(run):
        means = o.provenance.get("predicted_mean") or {}
        stds = o.provenance.get("predicted_std") or {}
        for objective in run.campaign.spec.objectives:
            mean, std = means.get(objective.name), stds.get(objective.name)
            if _finite(mean) and _finite(std):
                out.setdefault(objective.name, []).append(
                    Prediction(float(mean), float(std), o.values[objective.name], o.method))
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def calibration(preds: Sequence[Prediction]) -> dict[str, float] | None:
    """How well the uncertainties cover the errors.

    Args:
        preds: predictions with their measurements.

    Returns:
        ``{"n", "rmse", "within_2_sigma"}`` (the fraction of measurements within two standard
        deviations; about 0.95 for a calibrated Gaussian model), or ``None`` without predictions.
    """
    if not preds:
        return None
    rmse = math.sqrt(sum((p.measured - p.mean) ** 2 for p in preds) / len(preds))
    within = sum(1 for p in preds if abs(p.z) <= 2.0) / len(preds)
    return {"n": float(len(preds)), "rmse": rmse, "within_2_sigma": within}


def strategy_formulas(run: CampaignRun) -> list[str]:
    """The symbolic formulas (SISSO) the run's strategy reported, as text lines."""
    found = run.state.get("formulas")
    if not found:
        return []
    if isinstance(found, str):
        return [found]
    if isinstance(found, Mapping):
        return [f"{k}: {v}" for k, v in found.items()]
    return [item if isinstance(item, str) else _formula_text(item) for item in found]


def _formula_text(item: Any) -> str:
    if isinstance(item, Mapping):
        text = item.get("formula") or item.get("expression") or item
        extra = ", ".join(f"{k} {fmt(v)}" for k, v in item.items()
                          if k not in ("formula", "expression") and isinstance(v, (int, float, str)))
        return f"{text}" + (f" ({extra})" if extra else "")
    return str(item)


def fmt(value: Any) -> str:
    """A number in four significant digits, anything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


