"""The GP's MAP fit: the closed-form log posterior and its gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.mlls import ExactMarginalLogLikelihood
from scipy.optimize import approx_fprime

from labweave.optimizer.strategies.gp import _negative_log_posterior, fit_robust_map_hyperparameters


def data(n: int = 25, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, d))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return X, (y - y.mean()) / y.std()


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
@pytest.mark.parametrize("fixed_noise", [None, 1e-3])
@pytest.mark.parametrize("outliers", [(), (2, 11)])
def test_the_gradient_is_that_of_the_log_posterior(kernel, fixed_noise, outliers) -> None:
    X, y = data()
    rng = np.random.default_rng(1)
    theta = np.concatenate([rng.normal(-0.7, 0.3, X.shape[1]), [0.2]]
                           + ([[-3.0]] if fixed_noise is None else []) + [np.full(len(outliers), -1.0)])
    value, grad = _negative_log_posterior(theta, X, y, fixed_noise, kernel, outliers)

    def f(t: np.ndarray) -> float:
        return _negative_log_posterior(t, X, y, fixed_noise, kernel, outliers)[0]

    numeric = approx_fprime(theta, f, 1e-6)
    assert math.isfinite(value)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_the_log_posterior_is_gpytorchs_up_to_a_constant(kernel) -> None:
    """Differences between two hyperparameter settings agree with SingleTaskGP's exact MLL and priors."""
    X, y = data()
    n, d = X.shape
    model = SingleTaskGP(torch.tensor(X), torch.tensor(y).unsqueeze(-1),
                         covar_module=get_covar_module_with_dim_scaled_prior(d, use_rbf_kernel=kernel == "rbf"))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    values = []
    for lengthscales, mean, noise in [(np.full(d, 0.4), 0.1, 0.01), (np.array([0.2, 0.9, 1.5, 3.0]), -0.3, 0.05)]:
        with torch.no_grad():
            model.covar_module.lengthscale = torch.tensor(lengthscales).reshape(1, -1)
            model.mean_module.constant.fill_(mean)
            model.likelihood.noise = torch.tensor([noise])
        model.train()
        with torch.no_grad():
            theirs = float(mll(model(torch.tensor(X)), torch.tensor(y)))
        ours, _ = _negative_log_posterior(np.concatenate([np.log(lengthscales), [mean, math.log(noise)]]), X, y, None,
                                          kernel)
        values.append((ours, theirs))
    (ours_a, theirs_a), (ours_b, theirs_b) = values
    assert ours_b - ours_a == pytest.approx(-(theirs_b - theirs_a), rel=1e-6)


def test_the_robust_fit_sets_a_gross_outlier_aside() -> None:
    X, y = data(n=30)
    y = y.copy()
    y[7] += 8.0
    hyper = fit_robust_map_hyperparameters(torch.tensor(X), torch.tensor(y))
    assert 7 in hyper.outliers
    assert all(0.025 <= ls <= 1e3 for ls in hyper.lengthscales)
