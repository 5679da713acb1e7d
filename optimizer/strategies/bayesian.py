"""Bayesian optimisation with BoTorch: GP surrogates, log-improvement acquisitions.

One turn follows BoTorch's flow, model -> posterior -> acquisition ->
``optimize_acqf``:

1. Until ``initial_design`` points are measured or in flight, propose points of
   a seeded Sobol design that respects the space's constraints.
2. Fit one GP per objective and per outcome constraint (``SingleTaskGP`` with
   BoTorch 0.18's dimension-scaled lengthscale prior, fitted by a fast MAP
   routine, see :mod:`labweave.optimizer.strategies.gp`; categorical columns
   enter the kernel one-hot through an input transform). Minimised objectives
   are negated so that every model output is maximised; observations may be
   Yeo-Johnson warped first.
3. Build the acquisition: for one objective, log expected improvement
   (Ament et al., "Unexpected Improvements to Expected Improvement for Bayesian
   Optimization", NeurIPS 2023) — analytic ``LogExpectedImprovement`` for a single
   noiseless proposal with nothing in flight, ``qLogNoisyExpectedImprovement``
   otherwise, with requests in flight as ``X_pending`` and outcome constraints as
   smoothed feasibility weights; for several objectives ``qLogNParEGO`` (random
   Chebyshev scalarisations, fast) or ``qLogNoisyExpectedHypervolumeImprovement``.
4. Optimise it over the encoded space with multi-start L-BFGS-B (SLSQP under
   linear constraints); with few category combinations, for each combination
   (``optimize_acqf_mixed``); with integers or many combinations, by alternating
   continuous and discrete steps (``optimize_acqf_mixed_alternating``).

``MixedSingleTaskGP`` was measured here at 7-25 s per fit with 12 points (GPyTorch
module overhead over its sum-and-product kernel), which rules it out for a
proposal budget under a second; the one-hot ARD kernel is fitted in ~0.05 s.
"""

from __future__ import annotations

import itertools
import math
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import torch
from botorch.acquisition import LogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.acquisition.objective import GenericMCObjective
from botorch.models import ModelListGP, SingleTaskGP
from botorch.optim import optimize_acqf, optimize_acqf_discrete, optimize_acqf_mixed
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from botorch.utils.multi_objective.hypervolume import infer_reference_point
from botorch.utils.sampling import manual_seed
from pydantic import Field

from labweave.optimizer.pools import CandidatePool, pool_points
from labweave.optimizer.strategies.base import Observation, Proposal, Strategy, StrategySettings
from labweave.optimizer.strategies.gp import GPHyperparameters, OutputWarp, build_single_task_gp

logger = logging.getLogger(__name__)

#: The fitted surrogate: one GP, or one per output column. Both posteriors (a ``GPyTorchPosterior``,
#: or a ``TransformedPosterior`` / ``PosteriorList``) carry ``mean`` and ``variance``.
Surrogate: TypeAlias = SingleTaskGP | ModelListGP

#: Category combinations up to which the acquisition is optimised per combination.
MAX_ENUMERATED_CATEGORIES = 12
#: Encoded points closer than this (max-norm) count as the same experiment.
DUPLICATE_TOLERANCE = 1e-6


def _first_output(Z: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
    """The objective's samples (output 0) of the model's joint samples ``Z``."""
    return Z[..., 0]


def _at_most(column: int, bound: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Feasibility callable of ``output <= bound``: ``Z[..., column] - bound``, feasible at or below 0."""
    return lambda Z: Z[..., column] - bound


def _at_least(column: int, bound: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Feasibility callable of ``output >= bound``: ``bound - Z[..., column]``, feasible at or below 0."""
    return lambda Z: bound - Z[..., column]


def _acquisition_values(values: torch.Tensor | None) -> torch.Tensor:
    """The optimiser's acquisition values (BoTorch returns None only when told not to compute them)."""
    if values is None:
        raise RuntimeError("the acquisition optimiser returned no acquisition values")
    return values


class BayesianSettings(StrategySettings):
    """Settings of the Bayesian strategy.

    The defaults, with ``noiseless = True`` for exact evaluations, are the
    configuration of the optimizer study (``python -m benchmarks.optimizer`` in a clone).

    Args:
        initial_design: Sobol points before the GP takes over (BayBE starts after one).
        noiseless: observations are exact (simulations, deterministic codes): the GP
            noise is fixed tiny so the model interpolates and the incumbent can be
            refined to high precision. ``False`` infers the noise (real measurements).
        robust: with the noise inferred, set aside observations far outside it (a
            leaky cell, a botched run) by relevance pursuit
            (:func:`~labweave.optimizer.strategies.gp.fit_robust_map_hyperparameters`);
            each proposal's reason names them.
        acquisition: ``"auto"`` (analytic LogEI when it is exact: one objective, one
            noiseless proposal, nothing in flight, no outcome constraints; else
            qLogNEI), ``"qlognei"`` or ``"logei"`` (one objective only).
        multi_objective: ``"parego"`` (qLogNParEGO) or ``"nehvi"`` (qLogNEHVI).
        num_restarts: L-BFGS-B starts for optimising the acquisition.
        raw_samples: random points scored to pick those starts.
        maxiter: iteration cap of each acquisition optimisation.
        mc_samples: quasi-MC samples for the Monte-Carlo acquisitions.
        warm_start: start each hyperparameter fit from the previous one as well.
        output_warping: fit the GPs to Yeo-Johnson-warped observations (see
            :class:`~labweave.optimizer.strategies.gp.OutputWarp`).
        kernel: ``"matern52"`` or ``"rbf"``, both with the dimension-scaled lengthscale prior.
        pool: choose among these candidates only (see :mod:`labweave.optimizer.pools`):
            the initial design draws from the pool in a seeded random order, and the
            acquisition is maximised over the candidates not yet measured or in flight
            (BoTorch's ``optimize_acqf_discrete``, sequential greedy for a batch). The
            matching baseline of a strategy that searches the same pool.

    The strategy computes with the process's threads, limited once at the start
    of a daemon or CLI command (``labweave --threads N``, one by default: a
    proposal is small dense algebra).
    """

    initial_design: int = Field(default=5, ge=0)
    noiseless: bool = False
    robust: bool = True
    acquisition: Literal["auto", "qlognei", "logei"] = "auto"
    multi_objective: Literal["parego", "nehvi"] = "parego"
    num_restarts: int = Field(default=10, ge=1)
    raw_samples: int = Field(default=512, ge=1)
    maxiter: int = Field(default=200, ge=1)
    mc_samples: int = Field(default=128, ge=8)
    warm_start: bool = True
    output_warping: bool = True
    kernel: Literal["matern52", "rbf"] = "matern52"
    pool: CandidatePool | None = None


class BayesianStrategy(Strategy):
    """GP-based Bayesian optimisation (see the module docstring)."""

    name = "bayesian"
    settings_model = BayesianSettings
    settings: BayesianSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hyperparameters: dict[int, GPHyperparameters] = {}
        self._warps: dict[int, OutputWarp] = {}
        self._outliers: set[int] = set()
        self._pool: torch.Tensor | None = None
        self._pool_order: list[int] = []
        if self.settings.pool is not None:
            candidates = pool_points(self.settings.pool, self.space, self.settings.seed)
            self._pool = self.space.encode(candidates)
            self._pool_order = [int(i) for i in torch.randperm(
                len(candidates), generator=torch.Generator().manual_seed(self.settings.seed))]

    # ------------------------------------------------------------------ public
    def propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]] = (), n: int = 1
    ) -> list[Proposal]:
        """Propose ``n`` points (see :meth:`Strategy.propose`)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self._propose(observations, pending, n)

    def recommend(self, observations: Sequence[Observation]) -> dict[str, Any] | None:
        """The measured point with the best posterior mean, for noisy observations.

        With noise, the best single measurement is partly luck (its value is
        biased upwards by the selection); the model's posterior mean at each
        measured point pools the neighbouring measurements, so its maximum over
        the feasible measured points is the better bet (the "in-sample"
        recommendation of noisy Bayesian optimisation). Noiseless campaigns,
        several objectives or fewer observations than the initial design keep
        :meth:`Strategy.recommend`.
        """
        usable = [(p, v) for p, v in observations if all(n in v for n in self.value_names())]
        if (self.settings.noiseless or len(self.objectives) != 1
                or len(usable) < max(self.settings.initial_design, 2)):
            return super().recommend(observations)
        feasible = [i for i, (_, v) in enumerate(usable) if self.feasible(v)]
        if not feasible:
            return None
        X, Y = self.observation_tensors(usable)
        model = self._fit(X, self._maximisation_targets(Y))
        with torch.no_grad():
            mean = model.posterior(X[feasible]).mean[..., 0]  # the objective, maximised, on the model's scale
        return dict(usable[feasible[int(mean.argmax())]][0])

    # ----------------------------------------------------------------- internals
    def _propose(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]], n: int
    ) -> list[Proposal]:
        version = self.model_version(observations, pending)
        in_hand = len(observations) + len(pending)
        if self._pool is not None:
            return self._propose_from_pool(observations, pending, n, version)
        n_design = n if not observations else max(0, min(n, self.settings.initial_design - in_hand))
        proposals = [
            Proposal(
                parameters=p,
                model_version=version,
                strategy=self.name,
                reason=f"initial design point {in_hand + i + 1} of {max(self.settings.initial_design, in_hand + n_design)}",
            )
            for i, p in enumerate(self.initial_design_points(in_hand, n_design))
        ]
        if n_design == n:
            return proposals
        X, Y = self.observation_tensors(observations)
        pending_points = [dict(p) for p in pending] + [p.parameters for p in proposals]
        X_pending = self.space.encode(pending_points) if pending_points else None
        model = self._fit(X, self._maximisation_targets(Y))
        q = n - n_design
        with manual_seed(self.settings.seed + len(observations)):  # the acquisition's baseline pruning draws too
            acqf, label = self._acquisition(model, X, X_pending, q)
            candidates, values = self._optimise(acqf, q, X)
        candidates = self._replace_duplicates(candidates, X, X_pending, in_hand + n_design)
        mean, std = self._predict(model, candidates)
        values = values.reshape(-1) if values.numel() == q else values.reshape(-1)[:1].expand(q)
        for i, point in enumerate(self.space.decode(candidates)):
            proposals.append(
                Proposal(
                    parameters=point,
                    acquisition_value=float(values[i]),
                    predicted_mean={o.name: float(mean[i, j]) for j, o in enumerate(self.objectives)},
                    predicted_std={o.name: float(std[i, j]) for j, o in enumerate(self.objectives)},
                    model_version=version,
                    strategy=self.name,
                    reason=f"{label} maximum over {len(observations)} observations"
                    + (f", {X_pending.shape[0]} in flight" if X_pending is not None else "")
                    + (f"; set aside as outliers: observation{'s' if len(self._outliers) > 1 else ''} "
                       + ", ".join(f"#{i + 1}" for i in sorted(self._outliers)) if self._outliers else ""),
                )
            )
        return proposals

    def _propose_from_pool(
        self, observations: Sequence[Observation], pending: Sequence[Mapping[str, Any]], n: int, version: str
    ) -> list[Proposal]:
        """Pool campaigns: seeded random design draws, then the acquisition's best free candidates."""
        assert self._pool is not None
        pool = self._pool
        known = [p for p, _ in observations] + [dict(p) for p in pending]
        taken = torch.zeros(len(pool), dtype=torch.bool)
        if known:  # (candidates, known) max-norm distances in one operation
            taken = (torch.cdist(pool, self.space.encode(known), p=float("inf")) < DUPLICATE_TOLERANCE).any(dim=-1)
        n = min(n, int((~taken).sum()))
        in_hand = len(observations) + len(pending)
        n_design = n if not observations else max(0, min(n, self.settings.initial_design - in_hand))
        proposals: list[Proposal] = []
        for index in [i for i in self._pool_order if not taken[i]][:n_design]:
            taken[index] = True
            proposals.append(Proposal(
                parameters=self.space.decode(pool[index : index + 1])[0],
                model_version=version,
                strategy=self.name,
                reason=f"initial design point {in_hand + len(proposals) + 1} of "
                f"{max(self.settings.initial_design, in_hand + n_design)} (pool draw)",
            ))
        q = n - n_design
        if q <= 0:
            return proposals
        X, Y = self.observation_tensors(observations)
        pending_points = [dict(p) for p in pending] + [p.parameters for p in proposals]
        X_pending = self.space.encode(pending_points) if pending_points else None
        model = self._fit(X, self._maximisation_targets(Y))
        # Seeded from the acquisition's construction on: its baseline pruning draws samples too.
        with manual_seed(self.settings.seed + len(observations)):
            acqf, label = self._acquisition(model, X, X_pending, q)
            candidates, values = optimize_acqf_discrete(acqf, q=q, choices=pool[~taken], unique=True)
        mean, std = self._predict(model, candidates)
        values = values.reshape(-1)
        for i, point in enumerate(self.space.decode(candidates)):
            proposals.append(
                Proposal(
                    parameters=point,
                    acquisition_value=float(values[min(i, len(values) - 1)]),
                    predicted_mean={o.name: float(mean[i, j]) for j, o in enumerate(self.objectives)},
                    predicted_std={o.name: float(std[i, j]) for j, o in enumerate(self.objectives)},
                    model_version=version,
                    strategy=self.name,
                    reason=f"{label} maximum over {int((~taken).sum())} free pool candidates, "
                    f"{len(observations)} observations"
                    + (f", {X_pending.shape[0]} in flight" if X_pending is not None else ""),
                )
            )
        return proposals

    def _signs(self) -> torch.Tensor:
        """+1 for maximised objectives, -1 for minimised ones, +1 for constraint outputs."""
        signs = [1.0 if o.direction == "maximize" else -1.0 for o in self.objectives]
        signs += [1.0] * len(self.outcome_constraints)
        return torch.tensor(signs, dtype=torch.float64)

    def _maximisation_targets(self, Y: torch.Tensor) -> torch.Tensor:
        return Y * self._signs()

    # -------------------------------------------------------------------- model
    def _fit(self, X: torch.Tensor, Y: torch.Tensor) -> Surrogate:
        """Fit one GP per output column; a ``ModelListGP`` if there are several."""
        self._outliers = set()
        models = [self._fit_output(X, Y[:, j : j + 1], j) for j in range(Y.shape[1])]
        return models[0] if len(models) == 1 else ModelListGP(*models)

    def _fit_output(self, X: torch.Tensor, y: torch.Tensor, j: int) -> SingleTaskGP:
        if self.settings.output_warping:
            warp = OutputWarp.fit(y)
            self._warps[j] = warp
            y = warp.forward(y)
        categories = {i: len(codes) for i, codes in self.space.categorical_dims.items()}
        warm = self._hyperparameters.get(j) if self.settings.warm_start else None
        model, hyper = build_single_task_gp(
            X, y, self.settings.noiseless, warm, categories or None, kernel=self.settings.kernel,
            robust=self.settings.robust,
        )
        self._outliers |= set(hyper.outliers)
        self._hyperparameters[j] = hyper
        return model

    # --------------------------------------------------------------- acquisition
    def _constraint_callables(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """Outcome constraints as ``c(Z) <= 0`` feasibility callables on model outputs."""
        callables: list[Callable[[torch.Tensor], torch.Tensor]] = []
        offset = len(self.objectives)
        for k, c in enumerate(self.outcome_constraints):
            column = offset + k
            bound = self._to_model_scale(column, c.bound)
            callables.append(_at_most(column, bound) if c.relation == "<=" else _at_least(column, bound))
        return callables

    def _to_model_scale(self, column: int, value: float) -> float:
        """Map a value of output ``column`` (already sign-flipped) to the model's (warped) scale."""
        warp = self._warps.get(column)
        if warp is None:
            return value
        return float(warp.forward(torch.tensor([value], dtype=torch.float64))[0])

    def _acquisition(
        self, model: Surrogate, X: torch.Tensor, X_pending: torch.Tensor | None, q: int
    ) -> tuple[AcquisitionFunction, str]:
        constraints = self._constraint_callables() or None
        n_obj = len(self.objectives)
        setting = self.settings.acquisition
        if n_obj == 1:
            analytic_ok = q == 1 and X_pending is None and constraints is None and self.settings.noiseless
            if setting == "logei" or (setting == "auto" and analytic_ok):
                if constraints is not None or q > 1 or X_pending is not None:
                    raise ValueError(
                        "acquisition: 'logei' handles one point with nothing in flight and no outcome constraints"
                    )
                # Plug-in incumbent: the best posterior mean at the observed points
                # (equal to the best observation when the noise is fixed tiny).
                with torch.no_grad():
                    best_f = float(model.posterior(X).mean.max())
                return LogExpectedImprovement(model, best_f=best_f), "LogEI"
            objective = GenericMCObjective(_first_output) if constraints else None
            acqf: AcquisitionFunction = qLogNoisyExpectedImprovement(
                model,
                objective=objective,
                **self._noisy_baseline(X, X_pending, constraints),
            )
            return acqf, "qLogNEI"
        mo_objective = IdentityMCMultiOutputObjective(outcomes=list(range(n_obj))) if constraints else None
        if self.settings.multi_objective == "parego":
            acqf = qLogNParEGO(
                model,
                objective=mo_objective,
                **self._noisy_baseline(X, X_pending, constraints),
            )
            return acqf, "qLogNParEGO"
        ref_point = self._reference_point(model, X)
        acqf = qLogNoisyExpectedHypervolumeImprovement(
            model,
            ref_point=ref_point.tolist(),
            objective=mo_objective,
            **self._noisy_baseline(X, X_pending, constraints),
        )
        return acqf, "qLogNEHVI"

    def _reference_point(self, model: Surrogate, X: torch.Tensor) -> torch.Tensor:
        """Hypervolume reference point: objective thresholds where given, else inferred."""
        with torch.no_grad():
            mean = model.posterior(X).mean[..., : len(self.objectives)]
        inferred = infer_reference_point(mean)
        signs = self._signs()[: len(self.objectives)]
        ref = []
        for j, o in enumerate(self.objectives):
            if o.threshold is None:
                ref.append(float(inferred[j]))
            else:
                ref.append(self._to_model_scale(j, float(signs[j]) * o.threshold))
        return torch.tensor(ref, dtype=X.dtype)

    def _noisy_baseline(
        self,
        X: torch.Tensor,
        X_pending: torch.Tensor | None,
        constraints: list[Callable[[torch.Tensor], torch.Tensor]] | None,
    ) -> dict[str, Any]:
        """What every noisy-incumbent MC acquisition here takes: the observed points as its
        baseline (pruned to the likely best), the seeded Sobol sampler, the outcome
        constraints and the points in flight."""
        return {
            "X_baseline": X,
            "sampler": self._sampler(),
            "constraints": constraints,
            "X_pending": X_pending,
            "prune_baseline": True,
        }

    def _sampler(self) -> Any:
        from botorch.sampling import SobolQMCNormalSampler

        return SobolQMCNormalSampler(sample_shape=torch.Size([self.settings.mc_samples]), seed=self.settings.seed)

    # --------------------------------------------------------------- optimisation
    def _optimise(self, acqf: AcquisitionFunction, q: int, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        space = self.space
        s = self.settings
        inequality = space.inequality_constraints()
        equality = space.equality_constraints()
        combinations = math.prod(len(c) for c in space.categorical_dims.values())
        if space.categorical_dims and not space.integer_dims and combinations <= MAX_ENUMERATED_CATEGORIES:
            # Few category combinations: optimise the continuous part for each one.
            fixed = [
                dict(zip(space.categorical_dims, map(float, codes)))
                for codes in itertools.product(*space.categorical_dims.values())
            ]
            candidates, values = optimize_acqf_mixed(
                acqf,
                bounds=space.bounds,
                q=q,
                num_restarts=max(2, s.num_restarts // 2),
                raw_samples=max(32, s.raw_samples // 4),
                fixed_features_list=fixed,
                inequality_constraints=inequality,
                equality_constraints=equality,
                options={"maxiter": s.maxiter},
            )
            return space.round(candidates), _acquisition_values(values)
        if space.categorical_dims or space.integer_dims:
            candidates, values = optimize_acqf_mixed_alternating(
                acqf,
                bounds=space.bounds,
                discrete_dims=space.integer_dims or None,
                cat_dims=space.categorical_dims or None,
                q=q,
                num_restarts=s.num_restarts,
                raw_samples=s.raw_samples,
                inequality_constraints=inequality,
                equality_constraints=equality,
                options={"maxiter_continuous": s.maxiter},
            )
            return space.round(candidates), _acquisition_values(values)
        options: dict[str, Any] = {"maxiter": s.maxiter}
        if equality is None:
            # Seed a share of the starts with perturbations of the best observed points:
            # this lets the acquisition refine the incumbent to high precision.
            options["sample_around_best"] = True
        candidates, values = optimize_acqf(
            acqf,
            bounds=space.bounds,
            q=q,
            num_restarts=s.num_restarts,
            raw_samples=s.raw_samples,
            inequality_constraints=inequality,
            equality_constraints=equality,
            sequential=q > 1,
            options=options,
        )
        return candidates.detach(), _acquisition_values(values).detach()

    def _replace_duplicates(
        self, candidates: torch.Tensor, X: torch.Tensor, X_pending: torch.Tensor | None, index: int
    ) -> torch.Tensor:
        """Replace a candidate equal to an observed, pending or earlier candidate by a design point."""
        taken = [X] + ([X_pending] if X_pending is not None else [])
        out: list[torch.Tensor] = []
        fallback = index
        for candidate in candidates:
            others = torch.cat(taken + ([torch.stack(out)] if out else []))
            if others.numel() and (others - candidate).abs().max(dim=-1).values.min() < DUPLICATE_TOLERANCE:
                replacement = None
                for _ in range(64):
                    (point,) = self.initial_design_points(fallback, 1)
                    fallback += 1
                    encoded = self.space.encode([point])[0]
                    if (others - encoded).abs().max(dim=-1).values.min() >= DUPLICATE_TOLERANCE:
                        replacement = encoded
                        break
                if replacement is None:
                    logger.warning("no distinct point left to propose; keeping a duplicate")
                    replacement = candidate
                else:
                    logger.info("acquisition optimum duplicates a known point; proposing a design point instead")
                candidate = replacement
            out.append(candidate)
        return torch.stack(out)

    def _predict(self, model: Surrogate, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted mean and std of the objectives' *measurements* at ``candidates``, in data units.

        The std includes the measurement noise the model inferred, so that it can be held against what
        the instrument then measures (the report's and the dashboard's calibration).
        """
        with torch.no_grad():
            posterior = model.posterior(candidates, observation_noise=True)
            mean = posterior.mean[..., : len(self.objectives)]
            std = posterior.variance[..., : len(self.objectives)].clamp_min(0).sqrt()
        for j, warp in self._warps.items():
            if j < mean.shape[-1]:
                # Back to data units: the median maps exactly; the std through the 1-sigma band.
                upper, lower = warp.inverse(mean[:, j] + std[:, j]), warp.inverse(mean[:, j] - std[:, j])
                mean[:, j] = warp.inverse(mean[:, j])
                std[:, j] = (upper - lower).abs() / 2
        signs = self._signs()[: len(self.objectives)]
        return mean * signs, std
