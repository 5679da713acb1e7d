"""SISSO-guided sequential learning over a pool of candidates.

After Nair, Foppa & Scheffler (npj Comput. Mater. (2025)) and the SISSO
sequential-learning workflows of the FHI: an interpretable model steers the
search. Each turn:

1. **Design.** Until ``initial_design`` candidates are measured or in flight
   (and at least enough for an ensemble), propose a space-filling subset of
   the pool: greedy maximin in the standardised primary-feature space, starting
   from a seeded random candidate and counting every point already in hand.
   (``design = "random"``: the pool in a seeded random order instead.)
2. **Model.** Fit a :class:`~labweave.optimizer.sisso.SissoEnsemble` (bootstrap
   resamples, primary-feature dropout, out-of-bag calibration of the spread) to
   the observations' primary features (:mod:`labweave.optimizer.descriptors`).
3. **Acquisition.** Predict every candidate of the pool by every member. The
   ensemble's mean and calibrated spread give expected improvement (``ei``,
   ranked by its logarithm) or an upper confidence bound (``ucb``,
   ``mean + beta * std``) over the best observation.
4. **Diverse batches, requests in flight.** The members' predictions are
   samples of a joint distribution over the pool: their calibrated covariance
   says which candidates the ensemble would learn about together. Every
   request in flight, then every candidate chosen for the batch, is
   "believed" (kriging believer): the covariance is conditioned on observing
   it at the ensemble mean, with the ensemble's noise floor as the noise. The
   spread of every candidate the members see as redundant with it collapses,
   so the next pick goes elsewhere, and a batch never repeats what is running.

Guard rails: a feature space whose stored rungs would not fit in
``max_feature_memory_mb`` for the pool, or whose screening would score more
than ``max_screened_features``, is refused when the strategy is built, with
the estimated size. A candidate that fewer than two members can evaluate (its
descriptors undefined there: a logarithm of a negative number, a division by
zero) is left out of the choice and reported in the log and in every
proposal's provenance (``unevaluable``), never silently given a NaN score.

Each :class:`SissoProposal` carries the ensemble's leading formulas (the
descriptors most members chose, each with its coefficients and how many
members agree), the prediction and its uncertainty, and the acquisition value.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from labweave.optimizer.descriptors import FeatureSource, Featurizer, ParameterFeatures, featurizer
from labweave.optimizer.pools import CandidatePool, SampledPool, pool_points
from labweave.optimizer.sisso import EnsembleSettings, SissoEnsemble, SissoSettings
from labweave.optimizer.sisso.features import estimate_feature_space
from labweave.optimizer.sisso.operators import resolve_operators
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies.base import Observation, Proposal, Strategy, StrategySettings
from labweave.optimizer.strategies.multifidelity import log_expected_improvement
from labweave.optimizer.strategies import register_strategy
from labweave.schemas.campaign import Objective, OutcomeConstraint

logger = logging.getLogger(__name__)

#: Encoded points closer than this (max-norm) are the same candidate.
MATCH_TOLERANCE = 1e-6
#: Fewest members that must evaluate a candidate for it to have a spread.
MIN_MEMBERS = 2
#: Leading formulas carried in each proposal's provenance.
LEADING_FORMULAS = 3
#: Unevaluable candidates named in the provenance (the count is always given).
REPORTED_UNEVALUABLE = 5

#: Operators of the default SISSO run: arithmetic and the common powers (the
#: transcendental ones rarely help a small data set and cost the most candidates).
SISSO_OPERATORS: tuple[str, ...] = ("add", "sub", "abs_diff", "mult", "div", "inv", "sq", "sqrt", "cb", "cbrt")


class SissoStrategySettings(StrategySettings):
    """Settings of the ``sisso`` strategy (see the module docstring).

    Args:
        initial_design: space-filling candidates before the model chooses (at least
            ``dimension + 4`` observations are needed for an ensemble in any case).
        pool: the candidates (composition grid, explicit list or space sample).
        features: where the primary features come from (the numeric parameters, or
            elemental descriptors of a perovskite).
        operators: SISSO operator keys (``add sub abs_diff mult div inv sq sqrt cb cbrt
            exp neg_exp log sin cos abs six_pow``).
        max_rung: depth of the feature space.
        dimension: descriptor dimension of every member.
        n_sis_select: features kept by sure-independence screening per dimension.
        n_models: ensemble members.
        feature_dropout: probability that a member does without a primary feature.
        acquisition: ``"ei"`` (expected improvement) or ``"ucb"`` (upper confidence bound).
        ucb_beta: weight of the standard deviation in the upper confidence bound.
        max_feature_memory_mb: refuse a feature space whose stored rungs need more memory
            than this for the whole pool.
        max_screened_features: refuse a feature space larger than this (screening time).
        objective_unit: unit of the objective, for the formulas (pint syntax).
        design: ``"maximin"`` (space-filling in the standardised features) or ``"random"``
            (a seeded random order of the pool, the one the ``bayesian`` strategy draws its
            pool design from: the two then start from the same candidates).
    """

    initial_design: int = Field(default=8, ge=0)
    pool: CandidatePool = Field(default_factory=SampledPool)
    features: FeatureSource = Field(default_factory=ParameterFeatures)
    operators: tuple[str, ...] = SISSO_OPERATORS
    max_rung: int = Field(default=1, ge=0, le=3)
    dimension: int = Field(default=2, ge=1, le=4)
    n_sis_select: int = Field(default=10, ge=1, le=500)
    n_models: int = Field(default=16, ge=2, le=200)
    feature_dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    acquisition: Literal["ei", "ucb"] = "ei"
    ucb_beta: float = Field(default=2.0, ge=0.0)
    max_feature_memory_mb: float = Field(default=1024.0, gt=0.0)
    max_screened_features: int = Field(default=50_000_000, ge=1)
    objective_unit: str = ""
    design: Literal["maximin", "random"] = "maximin"

    @field_validator("operators")
    @classmethod
    def _known_operators(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(op.key for op in resolve_operators(value))
        except ValueError as exc:  # the field is named by pydantic's location already
            raise ValueError(str(exc).removeprefix("operators: ")) from None


class LeadingFormula(BaseModel):
    """A descriptor the ensemble's members agree on.

    Args:
        formula: the model as an equation (coefficients of the best-fitting member using it).
        descriptor: the descriptor features, ``"; "``-separated.
        members: how many members use exactly this descriptor.
        of: ensemble size.
        rmse: that member's training RMSE.
    """

    model_config = ConfigDict(extra="forbid")

    formula: str
    descriptor: str
    members: int
    of: int
    rmse: float


class SissoProposal(Proposal):
    """A proposal of the ``sisso`` strategy, with the model behind it.

    Args:
        formulas: the ensemble's leading formulas, most agreed first.
        variance_scale: the calibration's ``a`` (predictive variance ``a * spread^2 + b``).
        variance_floor: the calibration's ``b``.
        unevaluable: how many pool candidates fewer than two members can evaluate (left out).
        unevaluable_examples: a few of them.
        partly_evaluable: how many pool candidates some members cannot evaluate (scored by the others).
    """

    formulas: list[LeadingFormula] = Field(default_factory=list)
    variance_scale: float | None = None
    variance_floor: float | None = None
    unevaluable: int = 0
    unevaluable_examples: list[dict[str, Any]] = Field(default_factory=list)
    partly_evaluable: int = 0


def leading_formulas(ensemble: SissoEnsemble, top: int = LEADING_FORMULAS) -> list[LeadingFormula]:
    """The descriptors most members of a fitted ensemble chose.

    Members are grouped by their set of descriptor features (up to an affine map,
    :attr:`Feature.canonical`); each group is shown by its best-fitting member.

    Args:
        ensemble: a fitted ensemble.
        top: how many groups to return.

    Returns:
        Most members first, then lowest RMSE.
    """
    groups: dict[frozenset[str], list[int]] = defaultdict(list)
    for m, member in enumerate(ensemble.members_):
        groups[frozenset(f.canonical for f in member.features)].append(m)
    ranked = sorted(groups.values(), key=lambda ms: (-len(ms), min(ensemble.members_[m].rmse for m in ms)))
    out = []
    for members in ranked[:top]:
        best = min(members, key=lambda m: ensemble.members_[m].rmse)
        model = ensemble.members_[best]
        out.append(
            LeadingFormula(
                formula=model.formula(4),
                descriptor=model.descriptor,
                members=len(members),
                of=len(ensemble.members_),
                rmse=float(model.rmse),
            )
        )
    return out


@register_strategy
class SissoStrategy(Strategy):
    """Sequential learning over a pool with a SISSO ensemble (see the module docstring).

    Raises:
        ValueError: for several objectives or outcome constraints (not supported),
            a pool or feature declaration that does not fit the space, a candidate
            without a primary feature value, or a feature space too large (naming
            its estimated size).
    """

    name = "sisso"
    settings_model = SissoStrategySettings
    settings: SissoStrategySettings

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        settings: SissoStrategySettings | Mapping[str, Any] | None = None,
        outcome_constraints: Sequence[OutcomeConstraint] = (),
    ) -> None:
        super().__init__(space, objectives, settings, outcome_constraints)
        if len(self.objectives) != 1:
            raise ValueError("objectives: the sisso strategy optimises one objective")
        if self.outcome_constraints:
            raise ValueError("outcome_constraints: the sisso strategy does not handle outcome constraints")
        s = self.settings
        self.featurizer: Featurizer = featurizer(s.features, space)
        self.candidates = pool_points(s.pool, space, s.seed)
        try:
            self.features = self.featurizer.table(self.candidates)
        except ValueError as exc:
            raise ValueError(f"pool: {exc}") from None
        self._encoded = space.encode(self.candidates).numpy()
        check_feature_space(len(self.featurizer.names), s, len(self.candidates))
        self._sign = 1.0 if self.objectives[0].direction == "maximize" else -1.0
        self.ensemble_: SissoEnsemble | None = None
        self.unevaluable_: list[int] = []
        self.partly_evaluable_: list[int] = []

    # ------------------------------------------------------------------ public
    def propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]] = (), n: int = 1
    ) -> list[Proposal]:
        """Propose up to ``n`` candidates of the pool (fewer once the pool is used up)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        version = self.model_version(observations, pending)
        taken = self._taken([p for p, _ in observations] + [dict(p) for p in pending])
        free = int((~taken).sum())
        n = min(n, free)
        if n == 0:
            logger.info("sisso: every candidate of the pool is measured or in flight")
            return []
        in_hand = len(observations) + len(pending)
        needed = max(self.settings.initial_design, self.settings.dimension + 4)
        n_design = n if len(observations) < self.settings.dimension + 4 else max(0, min(n, needed - in_hand))
        proposals: list[Proposal] = []
        for k, index in enumerate(self._design(taken, n_design)):
            taken[index] = True
            proposals.append(
                SissoProposal(
                    parameters=dict(self.candidates[index]),
                    model_version=version,
                    strategy=self.name,
                    reason=f"initial design {in_hand + k + 1} of {max(needed, in_hand + n_design)} (maximin over the pool)",
                )
            )
        if n_design < n:
            proposals += self._acquire(observations, pending, taken, n - n_design, version)
        return proposals

    def formulas(self) -> list[dict[str, Any]]:
        """The last fitted ensemble's leading formulas (for the campaign's state).

        Raises:
            RuntimeError: before the first fit.
        """
        if self.ensemble_ is None:
            raise RuntimeError("sisso: no ensemble fitted yet")
        return [f.model_dump() for f in leading_formulas(self.ensemble_)]

    # ----------------------------------------------------------------- design
    def _taken(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Pool candidates equal to one of ``points``."""
        taken = np.zeros(len(self.candidates), dtype=bool)
        if points:
            encoded = self.space.encode(points).numpy()
            for row in encoded:
                taken |= np.abs(self._encoded - row).max(axis=1) < MATCH_TOLERANCE
        return taken

    def _design(self, taken: np.ndarray, n: int) -> list[int]:
        """Greedy maximin over the standardised features, counting the points in hand (or random draws)."""
        if n == 0:
            return []
        if self.settings.design == "random":
            order = torch.randperm(len(self.candidates), generator=torch.Generator().manual_seed(self.settings.seed))
            return [int(i) for i in order if not taken[int(i)]][:n]
        z = self.features - self.features.mean(axis=0)
        scale = z.std(axis=0)
        z = z / np.where(scale > 0, scale, 1.0)
        taken = taken.copy()
        chosen: list[int] = []
        if not taken.any():
            first = int(np.random.default_rng(self.settings.seed).integers(len(self.candidates)))
            chosen.append(first)
            taken[first] = True
        distance = np.full(len(z), np.inf)
        for row in z[taken]:
            distance = np.minimum(distance, np.sqrt(((z - row) ** 2).sum(axis=1)))
        while len(chosen) < n and not taken.all():
            masked = np.where(taken, -np.inf, distance)
            index = int(np.argmax(masked))
            chosen.append(index)
            taken[index] = True
            distance = np.minimum(distance, np.sqrt(((z - z[index]) ** 2).sum(axis=1)))
        return chosen

    # ------------------------------------------------------------------- model
    def fit(self, observations: Sequence[Observation]) -> SissoEnsemble:
        """Fit the ensemble to the observations (kept as ``ensemble_``)."""
        s = self.settings
        objective = self.objectives[0].name
        X = self.featurizer.table([p for p, _ in observations])
        y = np.array([float(v[objective]) for _, v in observations])
        if not np.all(np.isfinite(y)):
            raise ValueError(f"observations: objective {objective!r} has non-finite values")
        check_feature_space(len(self.featurizer.names), s, len(y))
        settings = EnsembleSettings(
            n_models=s.n_models,
            dimension=s.dimension,
            feature_dropout=s.feature_dropout,
            seed=s.seed,
            sisso=SissoSettings(
                max_rung=s.max_rung, n_sis_select=s.n_sis_select, max_dimension=s.dimension, operators=s.operators
            ),
        )
        start = time.perf_counter()
        units = dict(zip(self.featurizer.names, self.featurizer.units))
        ensemble = SissoEnsemble(settings).fit(
            X, y, self.featurizer.names, units, target_name=objective, target_unit=s.objective_unit
        )
        logger.info(
            "sisso: ensemble of %d on %d observations in %.2f s; leading %s",
            s.n_models, len(y), time.perf_counter() - start, ensemble.formulas(4)[0],
        )
        self.ensemble_ = ensemble
        return ensemble

    def _acquire(
        self,
        observations: Sequence[Observation],
        pending: Sequence[Mapping[str, Any]],
        taken: np.ndarray,
        q: int,
        version: str,
    ) -> list[Proposal]:
        s = self.settings
        ensemble = self.fit(observations)
        names = self.featurizer.names
        members = ensemble.predict_members(self.features, names)  # (M, N)
        mean, std = ensemble.predict(self.features, names)
        finite = np.isfinite(members)
        evaluable = finite.sum(axis=0) >= MIN_MEMBERS
        self.unevaluable_ = [int(i) for i in np.flatnonzero(~evaluable)]
        self.partly_evaluable_ = [int(i) for i in np.flatnonzero(evaluable & ~finite.all(axis=0))]
        if self.partly_evaluable_:
            logger.info(
                "sisso: %d pool candidates are outside some members' descriptors (scored by the others), e.g. %s",
                len(self.partly_evaluable_), [self.candidates[i] for i in self.partly_evaluable_[:3]],
            )
        if self.unevaluable_:
            logger.warning(
                "sisso: %d pool candidates cannot be evaluated by %d+ members of the ensemble, e.g. %s",
                len(self.unevaluable_), MIN_MEMBERS, [self.candidates[i] for i in self.unevaluable_[:3]],
            )
        # Calibrated ensemble deviations: their Gram matrix is the predictive covariance less the floor.
        counts = np.maximum(finite.sum(axis=0), 2)
        deviation = np.where(finite, members - np.where(evaluable, mean, 0.0), 0.0)
        L = (deviation * np.sqrt(ensemble.variance_scale_ / (counts - 1))).T  # (N, M)
        floor = ensemble.variance_floor_
        # Requests in flight: believe them first (pool candidates by index, others by their own predictions).
        for point in pending:
            row = self._row_of(point, ensemble)
            if row is not None:
                L = _condition(L, row if isinstance(row, np.ndarray) else L[row], floor)
        objective = self.objectives[0].name
        g = self._sign * mean
        best = max(self._sign * float(v[objective]) for _, v in observations)
        available = ~taken & evaluable
        formulas = leading_formulas(ensemble)
        proposals: list[Proposal] = []
        for _ in range(q):
            if not available.any():
                break
            variance = (L**2).sum(axis=1) + floor
            score = self._score(g, variance, best)
            score = np.where(available, score, -np.inf)
            index = int(np.argmax(score))
            if not np.isfinite(score[index]):
                index = int(np.argmax(np.where(available, g, -np.inf)))
            available[index] = False
            label = "log EI" if s.acquisition == "ei" else f"UCB (beta {s.ucb_beta:g})"
            proposals.append(
                SissoProposal(
                    parameters=dict(self.candidates[index]),
                    acquisition_value=float(score[index]),
                    predicted_mean={objective: float(mean[index])},
                    predicted_std={objective: float(std[index])},
                    model_version=version,
                    strategy=self.name,
                    reason=f"{label} maximum over {int(evaluable.sum())} pool candidates, "
                    f"{len(observations)} observations, {len(pending) + len(proposals)} in flight; "
                    f"leading formula ({formulas[0].members}/{formulas[0].of} members): {formulas[0].formula}",
                    formulas=formulas,
                    variance_scale=ensemble.variance_scale_,
                    variance_floor=ensemble.variance_floor_,
                    unevaluable=len(self.unevaluable_),
                    unevaluable_examples=[dict(self.candidates[i]) for i in self.unevaluable_[:REPORTED_UNEVALUABLE]],
                    partly_evaluable=len(self.partly_evaluable_),
                )
            )
            L = _condition(L, L[index], floor)
        return proposals

    def _score(self, g: np.ndarray, variance: np.ndarray, best: float) -> np.ndarray:
        if self.settings.acquisition == "ucb":
            return g + self.settings.ucb_beta * np.sqrt(np.maximum(variance, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            # log EI of maximising g = log EI of minimising -g below -best
            return log_expected_improvement(-g, variance, -best)

    def _row_of(self, point: Mapping[str, Any], ensemble: SissoEnsemble) -> int | np.ndarray | None:
        """A pending point's row of deviations: its pool index, or computed from its features."""
        try:
            encoded = self.space.encode([point]).numpy()[0]
        except ValueError:
            logger.warning("sisso: a request in flight does not fit the space; ignored: %s", dict(point))
            return None
        match = np.flatnonzero(np.abs(self._encoded - encoded).max(axis=1) < MATCH_TOLERANCE)
        if len(match):
            return int(match[0])
        try:
            x = self.featurizer.table([point])
        except ValueError as exc:
            logger.warning("sisso: a request in flight has no primary features (%s); ignored", exc)
            return None
        predictions = ensemble.predict_members(x, self.featurizer.names)[:, 0]
        finite = np.isfinite(predictions)
        if finite.sum() < MIN_MEMBERS:
            return None
        deviation = np.where(finite, predictions - predictions[finite].mean(), 0.0)
        return deviation * math.sqrt(ensemble.variance_scale_ / (finite.sum() - 1))


def _condition(L: np.ndarray, row: np.ndarray, noise: float) -> np.ndarray:
    """Condition the covariance ``L L^T`` on a noisy observation whose deviations are ``row``.

    ``L (I - u u^T / (|u|^2 + b)) L^T`` is the conditioned covariance; ``I - c u u^T``
    with ``(1 - c |u|^2)^2 = b / (|u|^2 + b)`` is a square root of the middle factor.
    """
    u = np.asarray(row, dtype=float).copy()
    s = float(u @ u)
    if s <= 0.0:
        return L
    c = (1.0 - math.sqrt(noise / (s + noise))) / s
    return L - c * np.outer(L @ u, u)


def check_feature_space(n_primary: int, settings: SissoStrategySettings, n_samples: int) -> None:
    """Refuse a feature space that would not fit in memory or take too long to screen.

    Raises:
        ValueError: naming ``max_rung``/``operators`` with the estimated size.
    """
    estimate = estimate_feature_space(n_primary, settings.operators, settings.max_rung, n_samples)
    megabytes = estimate.stored_bytes / 2**20
    if megabytes > settings.max_feature_memory_mb:
        raise ValueError(
            f"max_rung: {n_primary} primary features with {len(settings.operators)} operators to rung "
            f"{settings.max_rung} store up to {sum(estimate.per_rung[:-1]):,} features, about {megabytes:,.0f} MB "
            f"for {n_samples} samples (max_feature_memory_mb = {settings.max_feature_memory_mb:g}); "
            "lower the rung or the operators"
        )
    if estimate.screened > settings.max_screened_features:
        raise ValueError(
            f"max_rung: {n_primary} primary features with {len(settings.operators)} operators to rung "
            f"{settings.max_rung} make up to {estimate.screened:,} features to screen "
            f"(max_screened_features = {settings.max_screened_features:,}); lower the rung or the operators"
        )


__all__ = ["LeadingFormula", "SissoProposal", "SissoStrategy", "SissoStrategySettings", "leading_formulas"]
