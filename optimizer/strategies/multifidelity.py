"""Multi-fidelity search over a pool of candidates: screen cheaply, confirm where it pays.

A campaign over materials can evaluate its quantity by several methods of
different cost (a machine-learned potential, DFT; EMT as a quick stand-in). The
search space holds a categorical *fidelity parameter* (``method``) whose value
names the method of each evaluation; every observation and every request in
flight carries it, so the strategy needs nothing but the usual
``(parameters, values)`` pairs. Each turn:

1. **Design.** The first ``initial_design`` evaluations screen a space-filling
   (greedy maximin) subset of the pool at the cheapest fidelity; then
   ``nested_design`` evaluations at each dearer fidelity repeat some of those
   points, a nested design from which the model learns how the fidelities
   relate (Kennedy & O'Hagan, Biometrika 87, 1 (2000)): the best of them by
   the cheaper fidelity's values first, then, among the better half, the one
   farthest from those already repeated. The dear design evaluations so test
   what the screens rank best while still spreading out.
2. **Model.** The co-kriging GP of :class:`~labweave.optimizer.cokriging.AutoregressiveGP`
   is fitted to every observation (the target is a scaled copy of the cheaper
   fidelity plus a discrepancy, the scale possibly depending on the
   parameters); evaluations in flight enter as "kriging believer" fantasies.
   Nothing about the model is set from data the search has not seen: with
   ``scale_basis = "auto"`` (the default) the basis of the scale is chosen at
   every refit by a rule, the constant one until :data:`BASIS_CHOICE_MIN_TARGET`
   target observations exist, then, of ``constant``, ``linear`` and ``presence``,
   the one whose fit gives the target observations the largest leave-one-out
   log predictive density. An observation may carry its own noise variance
   (``noise_value``: a committee of fine-tuned potentials says how sure each
   of its values is), added to its fidelity's fitted noise; whatever method
   produced the cheap values, the model is refitted to them, so a later
   campaign can swap the cheap fidelity without touching the strategy.
   ``model = "multitask"`` puts BoTorch's ``MultiTaskGP`` in the co-kriging's
   place (:mod:`labweave.optimizer.multitask`); the alloy study
   (``python -m benchmarks.alloy_study``) compares the two.
3. **Cost-aware acquisition.** For every candidate ``x`` of the pool and every
   fidelity ``l``, the augmented expected improvement of Huang, Allen, Notz &
   Miller (Struct. Multidisc. Optim. 32, 369 (2006)), per unit cost:

       a(x, l) = EI_target(x) * corr(y_l(x), f_target(x) | data) / cost_l

   ``EI_target`` is the expected improvement of the target fidelity's value
   over the best target value found; the posterior correlation between an
   observation at fidelity ``l`` and the target value says how much of that
   improvement an evaluation at ``l`` can reveal (1 for the target itself, 0
   where ``l`` is already known). The largest ``a`` wins: a cheap screen where
   the target is uncertain and promising, an expensive confirmation where the
   improvement is likely enough to be worth its price. ``acquisition =
   "entropy"`` (with the ``multitask`` model) scores the same (x, l) pairs by
   BoTorch's multi-fidelity max-value entropy per cost instead.

Budget: evaluations done and in flight are charged their fidelity's cost
(and what the caller says was spent elsewhere, ``spent_elsewhere``),
or, for a done evaluation whose values carry it (``cost_value``, the CPU
seconds it recorded), what it measurably cost; once a fidelity has such
measured costs, the median of them and the fidelity's cost (one prior
measurement) is what the next evaluation at that fidelity is expected to
cost (in the budget and in the acquisition);
nothing is proposed beyond ``budget``, and (with ``reserve_target``) a cheap
screen is only proposed while a target evaluation would still be affordable
after it: a screen that can never be confirmed is wasted. When the budget or
the pool is exhausted, :meth:`MultiFidelityStrategy.propose` returns fewer
proposals than asked for (possibly none).

Each proposal (a :class:`FidelityProposal`) names its fidelity, the method, in
``fidelity`` and in the fidelity parameter of ``parameters``; the acquisition
value per cost unit; the predicted value and uncertainty of the evaluation it
asks for (at that fidelity, so that it can be checked against the result);
and a sentence saying why this point and this fidelity.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.special import erfcx, ndtr

from labweave.optimizer.cokriging import SCALE_BASES, AutoregressiveGP, CoKrigingHyperparameters
from labweave.optimizer.fidelity import CostBudget, Fidelity, FidelityLadder
from labweave.optimizer.multitask import MultiTaskSurrogate, entropy_per_cost
from labweave.optimizer.pools import CandidatePool, CompositionGridPool, pool_points
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies.base import Observation, Proposal, Strategy, StrategySettings
from labweave.schemas.campaign import CategoricalParameter, Objective, OutcomeConstraint

logger = logging.getLogger(__name__)

#: A surrogate linking the fidelities: either answers ``joint``, ``predict`` and ``condition_on_expected``.
Surrogate = AutoregressiveGP | MultiTaskSurrogate

#: Encoded points closer than this (max-norm) are the same candidate.
MATCH_TOLERANCE = 1e-6
#: With ``scale_basis = "auto"``, the constant basis until this many target
#: observations; a leave-one-out score of fewer says nothing.
BASIS_CHOICE_MIN_TARGET = 4


def _default_fidelities() -> list[Fidelity]:
    return [
        Fidelity(method="chgnet", cost=1.0, label="MLIP screen"),
        Fidelity(method="emt", cost=20.0, label="EMT confirm"),
    ]


# ------------------------------------------------------------------------- settings
class MultiFidelitySettings(StrategySettings):
    """Settings of the multi-fidelity strategy.

    Args:
        initial_design: cheapest-fidelity screens of a space-filling subset of the pool
            before the model chooses.
        fidelity_parameter: the categorical parameter of the space naming the method.
        fidelities: the fidelity ladder, from the cheapest, least trusted method to
            the target (the last), each with its cost per evaluation.
        budget: cost units the campaign may spend (done and in flight), ``None`` for
            no limit.
        pool: the candidates (composition grid, explicit list or space sample).
        nested_design: evaluations at each dearer fidelity on already screened design
            points before the model chooses.
        reserve_target: propose a cheaper fidelity only while a target evaluation
            stays affordable after it.
        model: the surrogate linking the fidelities: ``"cokriging"``, the
            autoregressive co-kriging of :mod:`labweave.optimizer.cokriging`, or
            ``"multitask"``, BoTorch's ``MultiTaskGP`` (:mod:`labweave.optimizer.multitask`).
        acquisition: ``"ei"``, the augmented expected improvement per cost (the
            module docstring), or ``"entropy"``, BoTorch's multi-fidelity max-value
            entropy per cost (``multitask`` model only).
        scale_basis: how the co-kriging scale between consecutive fidelities
            varies (see :mod:`labweave.optimizer.cokriging`): ``"constant"``,
            ``"linear"`` in the parameters, ``"presence"`` (set by which parameters
            are non-zero, for compositions, where a cheap method's trust depends on
            the elements present), or ``"auto"``: chosen at every refit by a rule on
            the observations only (the constant basis until
            :data:`BASIS_CHOICE_MIN_TARGET` target observations, then the basis
            whose fit gives the target observations the largest leave-one-out log
            predictive density).
        refit_every: refit the hyperparameters after this many new observations
            (in between, the last ones are reused with the new data).
        objective_unit: unit of the objective, for the reasons (``eV/atom``).
        cost_value: name of an observation value holding what that evaluation
            measurably cost (``cost_cpu_seconds``), charged to the budget instead of
            its fidelity's ``cost``; evaluations without it (and those in flight)
            are charged the fidelity's cost, which is also what the acquisition
            weighs.
        noise_value: name of an observation value holding that observation's own
            noise variance, in the objective's units squared (a machine-learned
            potential's committee variance, say); it is added to the fidelity's
            fitted noise (``cokriging`` model only).

    The strategy computes with the process's threads, limited once at the start
    of a daemon or CLI command (``labweave --threads N``, one by default).
    """

    initial_design: int = Field(default=6, ge=0)
    fidelity_parameter: str = "method"
    fidelities: list[Fidelity] = Field(default_factory=_default_fidelities, min_length=1)
    budget: float | None = Field(default=None, gt=0)
    pool: CandidatePool = Field(default_factory=CompositionGridPool)
    nested_design: int = Field(default=2, ge=1)
    reserve_target: bool = True
    model: Literal["cokriging", "multitask"] = "cokriging"
    acquisition: Literal["ei", "entropy"] = "ei"
    scale_basis: Literal["auto", "constant", "linear", "presence"] = "auto"
    refit_every: int = Field(default=1, ge=1)
    objective_unit: str = ""
    cost_value: str | None = None
    noise_value: str | None = None

    @model_validator(mode="after")
    def _distinct_methods(self) -> MultiFidelitySettings:
        methods = [f.method for f in self.fidelities]
        repeated = sorted({m for m in methods if methods.count(m) > 1})
        if repeated:
            raise ValueError(f"fidelities: method(s) {repeated} appear more than once")
        if self.acquisition == "entropy" and self.model != "multitask":
            raise ValueError("acquisition: 'entropy' needs model = 'multitask' (a BoTorch model)")
        if self.noise_value is not None and self.model != "cokriging":
            raise ValueError("noise_value: per-observation noise needs model = 'cokriging'")
        return self


# ------------------------------------------------------------------------ acquisition
def log_h(u: np.ndarray) -> np.ndarray:
    """``log(phi(u) + u Phi(u))``, the log of expected improvement in units of the std.

    Stable far into the tail (Ament et al., NeurIPS 2023): for ``u < 0``,
    ``h(u) = phi(u) (1 - |u| sqrt(pi/2) erfcx(|u|/sqrt(2)))``, and
    ``h(u) ~ phi(u) / u^2`` beyond ``u < -1e3``.

    Args:
        u: standardised improvement ``(best - mean) / std`` (minimisation).

    Returns:
        ``log h(u)``, same shape.
    """
    u = np.asarray(u, dtype=float)
    log_phi = -0.5 * u**2 - 0.5 * math.log(2 * math.pi)
    out = np.empty_like(u)
    upper = u >= 0
    out[upper] = np.log(np.exp(log_phi[upper]) + u[upper] * ndtr(u[upper]))
    tail = u < -1e3
    middle = ~upper & ~tail
    a = np.abs(u[middle])
    bracket = 1.0 - a * math.sqrt(math.pi / 2) * erfcx(a / math.sqrt(2))
    out[middle] = log_phi[middle] + np.log(np.maximum(bracket, 1e-300))
    out[tail] = log_phi[tail] - 2.0 * np.log(np.abs(u[tail]))
    return out


def log_expected_improvement(mean: np.ndarray, variance: np.ndarray, best: float) -> np.ndarray:
    """Log expected improvement below ``best`` (minimisation) of a Gaussian posterior.

    Args:
        mean: ``(m,)`` posterior means.
        variance: ``(m,)`` posterior variances.
        best: the incumbent.

    Returns:
        ``(m,)`` ``log E[max(best - f, 0)]``; ``-inf`` where the variance is zero
        and the mean is not below ``best``.
    """
    sigma = np.sqrt(np.maximum(variance, 0.0))
    out = np.full(mean.shape, -np.inf)
    positive = sigma > 1e-12
    out[positive] = np.log(sigma[positive]) + log_h((best - mean[positive]) / sigma[positive])
    certain = ~positive & (mean < best)
    out[certain] = np.log(best - mean[certain])
    return out


class FidelityProposal(Proposal):
    """A proposal whose ``fidelity`` is the method to evaluate with (``"chgnet"``, ``"emt"``).

    The optimizer daemon pins a request to one method, and the dashboard shows
    the fidelity, only when it is the method's name, so this strategy's
    proposals carry the name. ``fidelity_level`` keeps BoTorch's
    numeric convention (1 for the target, by default the cost relative to the
    target's for the others).

    Args:
        fidelity: the method.
        fidelity_level: the numeric fidelity in [0, 1].
    """

    fidelity: str | None = None
    fidelity_level: float | None = Field(default=None, ge=0.0, le=1.0)


# --------------------------------------------------------------------------- strategy
class MultiFidelityStrategy(Strategy):
    """Cost-aware multi-fidelity search over a candidate pool (see the module docstring).

    Args:
        space: the search space; must hold the categorical fidelity parameter.
        objectives: exactly one objective.
        settings: :class:`MultiFidelitySettings` (model or dict).
        outcome_constraints: not supported (must be empty).

    Raises:
        ValueError: naming ``objectives``, ``outcome_constraints``,
            ``fidelity_parameter``, ``fidelities`` or ``pool`` when they do not fit
            the space.
    """

    name = "multifidelity"
    settings_model = MultiFidelitySettings
    settings: MultiFidelitySettings

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        settings: MultiFidelitySettings | Mapping[str, Any] | None = None,
        outcome_constraints: Sequence[OutcomeConstraint] = (),
    ) -> None:
        super().__init__(space, objectives, settings, outcome_constraints)
        if len(self.objectives) != 1:
            raise ValueError(
                f"objectives: the multi-fidelity strategy optimises one objective, not {len(self.objectives)}"
            )
        if self.outcome_constraints:
            raise ValueError("outcome_constraints: not supported by the multi-fidelity strategy")
        s = self.settings
        self.objective = self.objectives[0]
        self._sign = 1.0 if self.objective.direction == "minimize" else -1.0
        self.ladder = FidelityLadder(s.fidelities)
        self._fidelity_column = self._check_fidelity_parameter()
        self.pool: list[dict[str, Any]] = self._build_pool()
        self._pool_X = self._features(self.pool)
        self._pool_index = {self._key(row): i for i, row in enumerate(self._pool_X)}
        self._design_order = self._maximin_order()
        self._design_rank = {index: i for i, index in enumerate(self._design_order)}
        self._costs = np.array([f.cost for f in self.ladder.fidelities], dtype=float)
        self._hyper: dict[str, CoKrigingHyperparameters] = {}
        self._multitask_state: dict[str, Any] | None = None
        self._fitted_on = -1
        #: What the campaign has spent outside the evaluations it passes to :meth:`propose`, in the
        #: budget's units (its MLIP's fine-tunings, screens by a superseded model); set by its caller
        #: before each call, from the campaign's records.
        self.spent_elsewhere = 0.0
        #: The co-kriging basis of the last fit and every option's leave-one-out score.
        self.basis: str | None = None
        self.basis_scores: dict[str, float] = {}
        logger.info(
            "multifidelity: %d candidates, fidelities %s, budget %s",
            len(self.pool),
            ", ".join(f"{f.method} (cost {f.cost:g})" for f in s.fidelities),
            s.budget,
        )

    # ------------------------------------------------------------------ set-up
    def recommend(self, observations: Sequence[Observation]) -> dict[str, Any] | None:
        """The best observation at the target fidelity: a cheaper method's value is not the answer."""
        target = self.ladder.target.method
        at_target = [(p, v) for p, v in observations if p.get(self.settings.fidelity_parameter) == target]
        return super().recommend(at_target)

    def _check_fidelity_parameter(self) -> int:
        name = self.settings.fidelity_parameter
        if name not in self.space.names:
            raise ValueError(f"fidelity_parameter: {name!r} is not a parameter of the space ({self.space.names})")
        column = self.space.names.index(name)
        parameter = self.space.parameters[column]
        if not isinstance(parameter, CategoricalParameter):
            raise ValueError(f"fidelity_parameter: {name!r} must be a categorical parameter naming methods")
        unknown = [m for m in self.ladder.methods if m not in parameter.choices]
        if unknown:
            raise ValueError(f"fidelities: method(s) {unknown} are not choices of {name!r} ({parameter.choices})")
        for other in self.space.parameters:
            if other.name != name and isinstance(other, CategoricalParameter):
                raise ValueError(
                    f"fidelity_parameter: the surrogate needs numeric parameters besides {name!r}; "
                    f"{other.name!r} is categorical"
                )
        return column

    def _with_fidelity(self, point: Mapping[str, Any], method: str | None = None) -> dict[str, Any]:
        return {**point, self.settings.fidelity_parameter: method or self.ladder.target.method}

    def _build_pool(self) -> list[dict[str, Any]]:
        return pool_points(self.settings.pool, self.space, self.settings.seed,
                           fixed={self.settings.fidelity_parameter: self.ladder.target.method})

    def _point_without_fidelity(self, point: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in point.items() if k != self.settings.fidelity_parameter}

    def _features(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encoded columns of the points, without the fidelity column: ``(n, d - 1)``."""
        if not points:
            return np.empty((0, self.space.dim - 1))
        X = self.space.encode([self._with_fidelity(self._point_without_fidelity(p)) for p in points]).numpy()
        return np.delete(X, self._fidelity_column, axis=1)

    @staticmethod
    def _key(row: np.ndarray) -> tuple[float, ...]:
        return tuple(np.round(row / MATCH_TOLERANCE).astype(np.int64).tolist())

    def _maximin_order(self) -> list[int]:
        """Pool indices in greedy maximin order from a seeded random start."""
        X = self._pool_X
        rng = np.random.default_rng(self.settings.seed)
        order = [int(rng.integers(len(X)))]
        distance = np.linalg.norm(X - X[order[0]], axis=1)
        for _ in range(len(X) - 1):
            nxt = int(np.argmax(distance))
            order.append(nxt)
            distance = np.minimum(distance, np.linalg.norm(X - X[nxt], axis=1))
        return order

    # --------------------------------------------------------------- proposing
    def propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]] = (), n: int = 1
    ) -> list[Proposal]:
        """Propose up to ``n`` evaluations, each at a chosen fidelity.

        Args:
            observations: ``(parameters, values)`` pairs; the parameters carry the
                fidelity parameter (the method that produced the value).
            pending: parameter dicts of evaluations in flight (with their method).
            n: number of proposals wanted.

        Returns:
            At most ``n`` proposals, none repeating an evaluation done or in flight;
            fewer when the budget or the pool runs out.

        Raises:
            ValueError: naming the observation or pending entry with a missing or
                unknown method, a missing or non-finite value, or parameters outside
                the space.
        """
        return self._propose(observations, pending, n)

    def _propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]], n: int
    ) -> list[Proposal]:
        X_obs, r_obs, y_obs, cost_obs, noise_obs = self._parse_observations(observations)
        X_pen, r_pen = self._parse_pending(pending)
        L = len(self.ladder)
        taken = np.zeros((len(self.pool), L), dtype=bool)
        for X, r in ((X_obs, r_obs), (X_pen, r_pen)):
            for row, rung in zip(X, r):
                index = self._pool_index.get(self._key(row))
                if index is not None:
                    taken[index, rung] = True
        seen = self._seen_values(X_obs, r_obs, y_obs)
        self._costs = self._expected_costs(r_obs, cost_obs)
        nominal = self._costs
        committed = float(np.where(np.isnan(cost_obs), nominal[r_obs], cost_obs).sum() + nominal[r_pen].sum()
                          + self.spent_elsewhere)
        budget = CostBudget(self.settings.budget, committed)
        version = self.model_version(observations, pending)

        model: Surrogate | None = None
        batch_X: list[np.ndarray] = []
        batch_r: list[int] = []
        proposals: list[Proposal] = []
        for _ in range(n):
            choice = self._design_choice(taken, budget, len(observations) + len(pending) + len(proposals), seen)
            if choice is not None:
                index, rung, reason = choice
                proposal: Proposal = self._proposal(index, rung, version, reason)
            else:
                if len(y_obs) == 0:
                    logger.info("multifidelity: no results yet; waiting for the design before modelling")
                    break
                if model is None:
                    model = self._fit(X_obs, r_obs, y_obs, noise_obs)
                fantasy_X = np.vstack([X_pen, *[x[None] for x in batch_X]])
                fantasy_r = np.concatenate([r_pen, np.asarray(batch_r, dtype=int)])
                current = model.condition_on_expected(fantasy_X, fantasy_r)
                known_target = np.vstack([X_obs[r_obs == L - 1], fantasy_X[fantasy_r == L - 1]])
                picked = self._acquire(current, taken, budget, known_target, version)
                if picked is None:
                    break
                index, rung, proposal = picked
            proposals.append(proposal)
            taken[index, rung] = True
            batch_X.append(self._pool_X[index])
            batch_r.append(rung)
            budget = budget.after(float(self._costs[rung]))
        if len(proposals) < n:
            logger.info(
                "multifidelity: %d of %d proposals (budget left %.3g of %s, %d candidate evaluations left)",
                len(proposals),
                n,
                budget.remaining,
                self.settings.budget,
                int((~taken).sum()),
            )
        return proposals

    def _parse_observations(
        self, observations: Sequence[Observation]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features, rungs, signed objective values (smaller is better), measured costs
        (``nan`` where not given) and own noise variances (0 where not given) of the observations."""
        name = self.objective.name
        s = self.settings
        points, rungs, values, costs, noises = [], [], [], [], []
        for i, (parameters, measured) in enumerate(observations):
            rungs.append(self._rung_of(parameters, f"observations[{i}]"))
            if name not in measured:
                raise ValueError(f"observations[{i}]: missing value {name!r}")
            value = float(measured[name])
            if not math.isfinite(value):
                raise ValueError(f"observations[{i}]: value {name!r} is not finite ({value})")
            points.append(parameters)
            values.append(self._sign * value)
            costs.append(self._optional_value(measured, s.cost_value, f"observations[{i}]", math.nan))
            noises.append(self._optional_value(measured, s.noise_value, f"observations[{i}]", 0.0))
        return (
            self._features(points),
            np.asarray(rungs, dtype=int),
            np.asarray(values, dtype=float),
            np.asarray(costs, dtype=float),
            np.asarray(noises, dtype=float),
        )

    @staticmethod
    def _optional_value(measured: Mapping[str, float], key: str | None, where: str, default: float) -> float:
        """A non-negative finite value of an observation named by a setting, or ``default``."""
        if key is None or key not in measured:
            return default
        value = float(measured[key])
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{where}: value {key!r} must be finite and non-negative ({value})")
        return value

    def _expected_costs(self, rungs: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """What an evaluation at each rung is expected to cost: the median of the measured costs of that
        rung's observations (``cost_value``) with the fidelity's ``cost`` counted as one more of them.

        The nominal cost stays in as a prior measurement, so that one unusually dear first run (a
        magnetic cell, a slow SCF) does not alone set the price of the next and end the search.
        """
        costs = np.array([f.cost for f in self.ladder.fidelities], dtype=float)
        for rung in range(len(costs)):
            known = measured[(rungs == rung) & ~np.isnan(measured)]
            if len(known):
                costs[rung] = max(float(np.median(np.append(known, costs[rung]))), 1e-12)
        return costs

    def _parse_pending(self, pending: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        rungs = [self._rung_of(parameters, f"pending[{i}]") for i, parameters in enumerate(pending)]
        return self._features(list(pending)), np.asarray(rungs, dtype=int)

    def _rung_of(self, parameters: Mapping[str, Any], where: str) -> int:
        name = self.settings.fidelity_parameter
        if name not in parameters:
            raise ValueError(f"{where}: the fidelity parameter {name!r} is missing")
        try:
            return self.ladder.rung(str(parameters[name]))
        except KeyError as exc:
            raise ValueError(f"{where}.{name}: {exc.args[0]}") from None

    # ------------------------------------------------------------------ design
    def _affordable(self, rung: int, budget: CostBudget) -> bool:
        cost = float(self._costs[rung])
        target = self.ladder.target_rung
        keep = float(self._costs[target]) if (self.settings.reserve_target and rung != target) else 0.0
        return budget.allows(cost, keep)

    def _seen_values(self, X: np.ndarray, r: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(pool, rungs)`` signed values observed (smaller is better; the best of repeats), ``inf`` where none."""
        seen = np.full((len(self.pool), len(self.ladder)), np.inf)
        for row, rung, value in zip(X, r, y):
            index = self._pool_index.get(self._key(row))
            if index is not None:
                seen[index, rung] = min(seen[index, rung], value)
        return seen

    def _nested_point(self, rung: int, taken: np.ndarray, above: np.ndarray, seen: np.ndarray) -> int | None:
        """The next nested design point at ``rung``: a point known one rung below, among the better half of
        them by that rung's values, the best first, then the one farthest from the nested points so far.

        The dear evaluations of the design then both teach the model how the fidelities relate (the
        points are spread out) and already test what the cheaper method ranks best: a space-filling
        choice alone spends them on candidates the screens show to be poor.
        """
        known = [int(i) for i in np.flatnonzero(taken[:, rung - 1])]
        open_ = [i for i in known if not above[i, rung]]
        if not open_:
            return None
        by_value = sorted(open_, key=lambda i: (seen[i, rung - 1], self._design_rank[i]))
        ranked = sorted(known, key=lambda i: (seen[i, rung - 1], self._design_rank[i]))
        better = set(ranked[: max(1, -(-len(known) // 2))])
        promising = [i for i in by_value if i in better]
        nested = np.flatnonzero(taken[:, rung])
        if not promising:
            return by_value[0]
        if not len(nested):
            return promising[0]
        X = self._pool_X
        distance = [float(np.min(np.linalg.norm(X[nested] - X[i], axis=1))) for i in promising]
        return promising[int(np.argmax(distance))]

    def _design_choice(
        self, taken: np.ndarray, budget: CostBudget, made: int, seen: np.ndarray
    ) -> tuple[int, int, str] | None:
        """The next design evaluation, or ``None`` once the design is complete."""
        s = self.settings
        above = np.flip(np.cumsum(np.flip(taken, axis=1), axis=1), axis=1)  # taken at this rung or a dearer one
        screens = int(taken[:, 0].sum())
        if screens < s.initial_design or made == 0:
            if not self._affordable(0, budget):
                return None
            for index in self._design_order:
                if not above[index, 0]:
                    method = self.ladder.methods[0]
                    total = max(s.initial_design, 1)
                    reason = (
                        f"initial design {screens + 1}/{total}: {self.ladder.label(method)} with {method}, "
                        f"a space-filling point of the pool"
                    )
                    return index, 0, reason
            return None
        for rung in range(1, len(self.ladder)):
            done = int(taken[:, rung].sum())
            if done >= s.nested_design:
                continue
            if not self._affordable(rung, budget):
                return None
            point = self._nested_point(rung, taken, above > 0, seen)
            if point is None:
                continue
            lower = self.ladder.methods[rung - 1]
            method = self.ladder.methods[rung]
            reason = (
                f"nested design {done + 1}/{s.nested_design}: {self.ladder.label(method)} with {method} "
                f"where {lower} is known and among its better half, to learn how the two relate"
            )
            return point, rung, reason
        return None

    # ------------------------------------------------------------------- model
    def _fit(self, X: np.ndarray, r: np.ndarray, y: np.ndarray, noise: np.ndarray) -> Surrogate:
        """Fit the surrogate, or reuse the last hyperparameters within ``refit_every``."""
        L = len(self.ladder)
        reuse = 0 <= len(y) - self._fitted_on < self.settings.refit_every
        if self.settings.model == "multitask":
            if reuse and self._multitask_state is not None:
                return MultiTaskSurrogate.with_state(X, r, y, L, self._multitask_state)
            surrogate = MultiTaskSurrogate.fit(X, r, y, L, warm_start=self._multitask_state)
            self._multitask_state = surrogate.state()
            self._fitted_on = len(y)
            return surrogate
        if reuse and self.basis is not None:
            return AutoregressiveGP.with_hyperparameters(X, r, y, L, self._hyper[self.basis], noise)
        model = self._fit_cokriging(X, r, y, noise)
        self._fitted_on = len(y)
        return model

    def _basis_options(self, r: np.ndarray) -> tuple[str, ...]:
        """The co-kriging bases to fit: the setting's, or with ``"auto"`` the rule's options."""
        chosen = self.settings.scale_basis
        if chosen != "auto":
            return (chosen,)
        if len(self.ladder) == 1 or int((r == self.ladder.target_rung).sum()) < BASIS_CHOICE_MIN_TARGET:
            return ("constant",)
        return SCALE_BASES

    def _fit_cokriging(self, X: np.ndarray, r: np.ndarray, y: np.ndarray, noise: np.ndarray) -> AutoregressiveGP:
        """Fit every basis option; keep the one of largest leave-one-out density of the target observations."""
        L = len(self.ladder)
        best: AutoregressiveGP | None = None
        scores: dict[str, float] = {}
        for basis in self._basis_options(r):
            model = AutoregressiveGP.fit(X, r, y, L, basis=basis, warm_start=self._hyper.get(basis), noise=noise)
            self._hyper[basis] = model.hyper
            scores[basis] = model.loo_log_density(L - 1)
            if best is None or scores[basis] > scores[best.hyper.basis]:
                best = model
        assert best is not None
        self.basis, self.basis_scores = best.hyper.basis, scores
        logger.debug("multifidelity: co-kriging on %d observations, basis %s (LOO %s)", len(y), self.basis, scores)
        return best

    def _acquire(
        self,
        model: Surrogate,
        taken: np.ndarray,
        budget: CostBudget,
        known_target: np.ndarray,
        version: str,
    ) -> tuple[int, int, Proposal] | None:
        """The (candidate, fidelity) of largest expected improvement per cost unit, as a proposal."""
        L = len(self.ladder)
        top = L - 1
        joints = [model.joint(self._pool_X, rung) for rung in range(L)]
        target = joints[top]
        if len(known_target):
            best = float(model.predict(known_target, top)[0].min())
        else:
            best = float(target.target_mean.min())
        log_ei = log_expected_improvement(target.target_mean, target.target_variance, best)
        above = np.flip(np.cumsum(np.flip(taken, axis=1), axis=1), axis=1) > 0
        scores = np.full((len(self.pool), L), -np.inf)
        correlations = np.zeros((len(self.pool), L))
        for rung in range(L):
            correlations[:, rung] = joints[rung].observation_correlation()
            if not self._affordable(rung, budget):
                continue
            cost = float(self._costs[rung])
            with np.errstate(divide="ignore"):
                scores[:, rung] = log_ei + np.log(correlations[:, rung]) - math.log(cost)
            scores[above[:, rung], rung] = -np.inf
        if self.settings.acquisition == "entropy":
            assert isinstance(model, MultiTaskSurrogate)
            open_cells = np.argwhere(~above & np.array([[self._affordable(r, budget) for r in range(L)]]))
            scores = np.full((len(self.pool), L), -np.inf)
            if len(open_cells):
                gain = entropy_per_cost(
                    model, self._pool_X, [float(c) for c in self._costs],
                    self.settings.seed + int(taken.sum()), open_cells,
                )
                with np.errstate(divide="ignore", invalid="ignore"):
                    scores[open_cells[:, 0], open_cells[:, 1]] = np.where(gain > 0, np.log(gain), -np.inf)
        allowed = np.isfinite(scores)
        fallback = False
        if not allowed.any():
            # No improvement left that any evaluation could reveal: reduce the largest target uncertainty.
            open_ = ~above & np.array([[self._affordable(r, budget) for r in range(L)]])
            if not open_.any():
                return None
            scores = np.where(open_, np.log(np.maximum(target.target_variance, 1e-300))[:, None], -np.inf)
            fallback = True
        best_cell = np.unravel_index(int(np.argmax(scores)), scores.shape)
        index, rung = int(best_cell[0]), int(best_cell[1])
        ei = math.exp(log_ei[index]) if np.isfinite(log_ei[index]) else 0.0
        cost = float(self._costs[rung])
        if self.settings.acquisition == "entropy":
            value = math.exp(scores[index, rung]) if not fallback else 0.0
        else:
            value = ei * correlations[index, rung] / cost
        reason = self._reason(index, rung, scores, correlations, ei, target, fallback)
        joint = joints[rung]
        proposal = self._proposal(
            index,
            rung,
            version,
            reason,
            acquisition_value=value,
            mean=float(joint.mean[index]),
            std=math.sqrt(max(float(joint.variance[index]), 0.0)),
        )
        return index, rung, proposal

    # --------------------------------------------------------------- reporting
    def _reason(
        self,
        index: int,
        rung: int,
        scores: np.ndarray,
        correlations: np.ndarray,
        ei: float,
        target: Any,
        fallback: bool,
    ) -> str:
        unit = f" {self.settings.objective_unit}" if self.settings.objective_unit else ""
        method = self.ladder.methods[rung]
        label = self.ladder.label(method)
        top = self.ladder.target_rung
        mean_t = self._sign * float(target.target_mean[index])
        std_t = math.sqrt(max(float(target.target_variance[index]), 0.0))
        prediction = f"{self.ladder.target.method} prediction {mean_t:.3g} ± {std_t:.2g}{unit}"
        if fallback:
            return f"{label} with {method}: no expected improvement left, largest {self.ladder.target.method} uncertainty; {prediction}"
        cost = float(self._costs[rung])
        value = ei * correlations[index, rung] / cost
        if self.settings.acquisition == "entropy":
            value = math.exp(scores[index, rung])
            gain = (
                f"information on the {self.ladder.target.method} minimum {value * cost:.3g} nats / cost {cost:g} "
                f"= {value:.3g} per cost unit"
            )
        elif rung == top:
            gain = f"EI {ei:.3g}{unit} / cost {cost:g} = {value:.3g} per cost unit"
        else:
            gain = (
                f"{self.ladder.target.method} EI {ei:.3g}{unit} x corr {correlations[index, rung]:.2f} / cost {cost:g} "
                f"= {value:.3g} per cost unit"
            )
        rivals = []
        for other in range(len(self.ladder)):
            if other == rung:
                continue
            best_other = float(np.max(scores[:, other]))
            other_method = self.ladder.methods[other]
            if np.isfinite(best_other):
                rivals.append(f"{self.ladder.label(other_method)} at best {math.exp(best_other):.3g}")
            else:
                rivals.append(f"no {other_method} evaluation affordable or left")
        versus = f", beats {'; '.join(rivals)}" if rivals else ""
        return f"{label} with {method}: {gain}{versus}; {prediction}"

    def _proposal(
        self,
        index: int,
        rung: int,
        version: str,
        reason: str,
        acquisition_value: float | None = None,
        mean: float | None = None,
        std: float | None = None,
    ) -> FidelityProposal:
        method = self.ladder.methods[rung]
        name = self.objective.name
        return FidelityProposal(
            parameters=self._with_fidelity(self.pool[index], method),
            acquisition_value=acquisition_value,
            predicted_mean={name: self._sign * mean} if mean is not None else {},
            predicted_std={name: std} if std is not None else {},
            model_version=version,
            strategy=self.name,
            reason=reason,
            fidelity=method,
            fidelity_level=self.ladder.level(method),
        )


def _register() -> None:
    """Add the strategy to the registry of :mod:`labweave.optimizer.strategies`.

    The package may itself import this module while it initialises; then the
    registry is not built yet and the package lists the strategy itself.
    """
    from labweave.optimizer import strategies

    register = getattr(strategies, "register_strategy", None)
    if register is not None:
        register(MultiFidelityStrategy)


_register()
