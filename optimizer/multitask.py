"""BoTorch's multi-task GP as a surrogate linking fidelities, and its cost-aware entropy search.

An alternative to the hand-written co-kriging of :mod:`labweave.optimizer.cokriging`,
built from BoTorch's own parts so the two can be compared in one study
(``python -m benchmarks.alloy_study``):

- :class:`MultiTaskSurrogate` wraps :class:`botorch.models.MultiTaskGP`: one
  Matern-5/2 ARD kernel over the inputs times a learned inter-task covariance
  (the intrinsic coregionalisation model of Bonilla, Chai & Williams, NeurIPS
  2007), one task per rung of the fidelity ladder, hyperparameters by maximum
  marginal likelihood (``fit_gpytorch_mll``). It answers the same questions as
  :class:`~labweave.optimizer.cokriging.AutoregressiveGP` (:meth:`joint`,
  :meth:`predict`, :meth:`condition_on_expected`), so the strategy's augmented
  expected improvement per cost runs on either.
- :func:`entropy_per_cost` scores every (candidate, rung) of a discrete pool by
  :class:`~botorch.acquisition.max_value_entropy_search.qMultiFidelityMaxValueEntropy`
  (Takeno et al., ICML 2020) weighted by
  :class:`~botorch.acquisition.cost_aware.InverseCostWeightedUtility`: the
  information an evaluation gives about the target's minimum, per unit cost.

Outputs are standardised here once per fit (not by a BoTorch outcome
transform), so that fantasies of evaluations in flight keep the fit's scale.
Per-observation noise variances are not supported by this model (the
multi-task GP has one learned noise); the co-kriging model takes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from botorch.acquisition.cost_aware import InverseCostWeightedUtility
from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy
from botorch.fit import fit_gpytorch_mll
from botorch.models import MultiTaskGP
from botorch.models.deterministic import GenericDeterministicModel
from gpytorch.mlls import ExactMarginalLogLikelihood

from labweave.optimizer.cokriging import (
    JointPrediction,
    RungObservations,
    check_observations,
    standardisation,
    with_believed,
)

#: Candidate evaluations scored per call of the entropy acquisition.
ENTROPY_CHUNK = 256


class MultiTaskSurrogate(RungObservations):
    """A fitted :class:`botorch.models.MultiTaskGP`, one task per fidelity rung.

    Build it with :meth:`fit` or :meth:`with_state`. Inputs are ``(n, d)`` arrays
    on the unit cube, rungs indices into the ladder, outputs in data units.

    Args:
        X, rungs, y, n_rungs, y_mean, y_scale: the data and standardisation (:class:`RungObservations`).
        state: a fitted model's ``state_dict`` to load (``None``: untrained).
    """

    def __init__(
        self,
        X: np.ndarray,
        rungs: np.ndarray,
        y: np.ndarray,
        n_rungs: int,
        y_mean: float,
        y_scale: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(X, rungs, y, n_rungs, y_mean, y_scale)
        self.model = MultiTaskGP(
            train_X=self.inputs(self.X, self.rungs),
            train_Y=torch.as_tensor(self.standardised(), dtype=torch.float64).unsqueeze(-1),
            task_feature=-1,
            all_tasks=list(range(n_rungs)),
            output_tasks=[n_rungs - 1],  # one output, the target; the task column of an input picks the rung
            outcome_transform=None,
        )
        if state is not None:
            self.model.load_state_dict(state)
        self.model.eval()

    @staticmethod
    def inputs(X: np.ndarray, rungs: np.ndarray) -> torch.Tensor:
        """``(n, d + 1)`` model inputs: the features and the rung as the task column."""
        columns = np.hstack([np.asarray(X, dtype=float), np.asarray(rungs, dtype=float).reshape(-1, 1)])
        return torch.as_tensor(columns, dtype=torch.float64)

    @classmethod
    def fit(
        cls, X: np.ndarray, rungs: np.ndarray, y: np.ndarray, n_rungs: int, warm_start: dict[str, Any] | None = None
    ) -> MultiTaskSurrogate:
        """Fit the hyperparameters by maximum marginal likelihood and condition on the data.

        ``warm_start``, an earlier fit's :meth:`state`, is where the optimiser starts.

        Raises:
            ValueError: naming ``X``, ``rungs`` or ``y`` on inconsistent shapes, a rung off
                the ladder or a value that is not finite (:func:`check_observations`).
        """
        X, rungs, y = check_observations(X, rungs, y, n_rungs)
        y_mean, y_scale = standardisation(y)
        surrogate = cls(X, rungs, y, n_rungs, y_mean, y_scale,
                        _hyperparameters(warm_start) if warm_start is not None else None)
        surrogate.model.train()
        mll = ExactMarginalLogLikelihood(surrogate.model.likelihood, surrogate.model)
        fit_gpytorch_mll(mll)
        surrogate.model.eval()
        return surrogate

    @classmethod
    def with_state(
        cls, X: np.ndarray, rungs: np.ndarray, y: np.ndarray, n_rungs: int, state: dict[str, Any]
    ) -> MultiTaskSurrogate:
        """Condition on data with an earlier fit's hyperparameters (no fit), standardising anew."""
        y = np.asarray(y, dtype=float)
        y_mean, y_scale = standardisation(y)
        return cls(X, rungs, y, n_rungs, y_mean, y_scale, _hyperparameters(state))

    def state(self) -> dict[str, Any]:
        """The fitted hyperparameters (the model's ``state_dict``)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def noise_variance(self, rung: int) -> float:
        """Observation noise variance (one for every rung), in data units squared."""
        return float(self.model.likelihood.noise.detach().mean()) * self.y_scale**2

    def joint(self, X: np.ndarray, rung: int) -> JointPrediction:
        """Posterior of ``f_rung`` and of the target ``f_{L-1}`` at the same points (as the co-kriging's)."""
        X = np.asarray(X, dtype=float).reshape(-1, self.X.shape[1])
        m, top = X.shape[0], self.n_rungs - 1
        stacked = self.inputs(np.vstack([X, X]), np.concatenate([np.full(m, rung), np.full(m, top)]))
        with torch.no_grad():
            distribution = self.model(stacked)  # the latent posterior (the model is in eval mode)
            mean = distribution.mean.numpy()
            covariance = distribution.covariance_matrix.numpy()
        var_r = np.maximum(np.diagonal(covariance)[:m], 0.0)
        var_t = np.maximum(np.diagonal(covariance)[m:], 0.0)
        cov = np.diagonal(covariance[:m, m:])
        scale2 = self.y_scale**2
        noise = self.noise_variance(rung)
        return JointPrediction(
            mean=mean[:m] * self.y_scale + self.y_mean,
            variance=var_r * scale2,
            target_mean=mean[m:] * self.y_scale + self.y_mean,
            target_variance=var_t * scale2,
            explained_variance=(cov * scale2) ** 2 / np.maximum(var_r * scale2 + noise, 1e-300),
            noise_variance=noise,
        )

    def predict(self, X: np.ndarray, rung: int) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of ``f_rung`` (without noise), in data units."""
        joint = self.joint(X, rung)
        return joint.mean, joint.variance

    def condition_on_expected(self, X: np.ndarray, rungs: np.ndarray) -> MultiTaskSurrogate:
        """The model after observing its own posterior means at new points (kriging believer)."""
        believed = with_believed(self, X, rungs)
        if believed is None:
            return self
        return MultiTaskSurrogate(
            *believed,
            self.n_rungs,
            self.y_mean,
            self.y_scale,
            _hyperparameters(self.state()),
        )


def _hyperparameters(state: dict[str, Any]) -> dict[str, Any]:
    """A ``state_dict`` without the training data it was saved with (loaded into a model on other data)."""
    return {k: v for k, v in state.items() if not k.startswith("train_") and "prediction_strategy" not in k}


def entropy_per_cost(
    surrogate: MultiTaskSurrogate,
    pool_X: np.ndarray,
    costs: Sequence[float],
    seed: int,
    cells: np.ndarray,
) -> np.ndarray:
    """Multi-fidelity max-value entropy per unit cost of evaluating candidates at rungs.

    The information an observation at ``(x, rung)`` gives about the minimum of
    the target over the pool (BoTorch's ``qMultiFidelityMaxValueEntropy``, the
    pool as its candidate set, the minimum sampled by Gumbel approximation),
    divided by the rung's cost (``InverseCostWeightedUtility`` over a
    deterministic cost model of the rung).

    Args:
        surrogate: the fitted model.
        pool_X: ``(m, d)`` candidates.
        costs: cost per evaluation of each rung.
        seed: seed of the max-value samples.
        cells: ``(k, 2)`` (candidate index, rung) pairs to score.

    Returns:
        ``(k,)`` information gain (nats) per cost unit.
    """
    top = surrogate.n_rungs - 1
    cost_of = torch.as_tensor(list(costs), dtype=torch.float64)
    cost_model = GenericDeterministicModel(lambda X: cost_of[X[..., -1].round().long()].unsqueeze(-1), num_outputs=1)
    candidate_set = surrogate.inputs(pool_X, np.full(len(pool_X), top))

    def project(X: torch.Tensor) -> torch.Tensor:
        projected = X.clone()
        projected[..., -1] = float(top)
        return projected

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        acquisition = qMultiFidelityMaxValueEntropy(
            surrogate.model,
            candidate_set,
            maximize=False,
            cost_aware_utility=InverseCostWeightedUtility(cost_model=cost_model),
            project=project,
        )
        X = surrogate.inputs(pool_X[cells[:, 0]], cells[:, 1]).unsqueeze(-2)
        with torch.no_grad():
            values = [acquisition(X[i : i + ENTROPY_CHUNK]) for i in range(0, X.shape[0], ENTROPY_CHUNK)]
    out = torch.cat(values).numpy() if values else np.empty(0)
    return np.where(np.isfinite(out), out, -math.inf)
