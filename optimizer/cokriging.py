"""Co-kriging: the surrogate that links fidelities.

It predicts the *target* fidelity's value anywhere from observations at every
rung of the ladder (:mod:`labweave.optimizer.fidelity`), and says how much of
the target's uncertainty at a point an evaluation at a cheaper rung would
remove: the quantity a cost-aware acquisition weighs against the cost.

:class:`AutoregressiveGP` is the model of Kennedy & O'Hagan (Biometrika 87, 1
(2000)), as used for optimisation by Forrester, Sobester & Keane (Proc. R.
Soc. A 463, 3251 (2007)): the value at rung ``k`` is a scaled copy of the rung
below plus an independent discrepancy,

    f_0(x) = g_0(x),    f_k(x) = rho_{k-1}(x) f_{k-1}(x) + g_k(x),

with independent GPs ``g_j ~ GP(0, s_j k_j)``, ``k_j`` an ARD squared-exponential
kernel. The scale factor ``rho(x) = g(x) . beta`` has a basis ``g`` (Le Gratiet
& Garnier, Int. J. Uncertain. Quantif. 4, 365 (2014)):

- ``constant``: ``g = [1]``, Kennedy & O'Hagan's single factor;
- ``linear``: ``g = [1, x_1, ..., x_d]``;
- ``presence``: ``g = [1, 1(x_1 > 0), ..., 1(x_d > 0)]``, for compositions:
  how far a cheap method tracks the reference depends on which elements are
  present. A machine-learned potential's errors are species-specific; here
  CHGNet and EMT agree on the mixing energies of alloys of the late
  transition and noble metals (correlation 0.88 over 105 alloys) and not at
  all once aluminium is present (0.12 over 63), where EMT's aluminium
  parameters fail (Ni3Al: EMT +0.18 eV/atom, CHGNet -0.39).

With ``C_j(x, k) = rho_j(x) rho_{j+1}(x) ... rho_{k-1}(x)`` (1 when j = k),

    cov(f_a(x), f_b(x')) = sum_{j <= min(a, b)} C_j(x, a) C_j(x', b) s_j k_j(x, x').

It is one Gaussian process over (x, rung) pairs, so every observation, cheap
or dear, conditions the target prediction exactly. An observation may carry
its own noise variance (``noise``), added to its rung's fitted one: a
machine-learned potential's committee says how far to trust each value.
:meth:`AutoregressiveGP.loo_log_density` scores a fit by how well it predicts
each observation of a rung from the others, so that a choice between models
(the strategy's scale basis) is made on the data seen. Hyperparameters are fitted
by maximum a posteriori with L-BFGS-B and analytic gradients in NumPy (a fit
takes tens of milliseconds, so the model can be refitted at every proposal);
the lengthscale prior is BoTorch's dimension-scaled ``LogNormal`` (Hvarfner,
Hellsten & Nardi, ICML 2024), as in :mod:`labweave.optimizer.strategies.gp`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.linalg.lapack import dpotri
from scipy.optimize import minimize

logger = logging.getLogger(__name__)

#: Lengthscales below this are numerically useless on the unit cube.
MIN_LENGTHSCALE = 0.025
#: Lengthscales above this make a dimension irrelevant already.
MAX_LENGTHSCALE = 1e3
#: Smallest noise variance on standardised outputs (deterministic codes still
#: scatter around a smooth trend, e.g. through the random site arrangement).
MIN_NOISE = 1e-6
#: Prior median of a discrepancy's signal variance relative to the base rung.
DISCREPANCY_PRIOR_MEDIAN = 0.25
#: Prior standard deviation of the log of a discrepancy's signal variance.
DISCREPANCY_PRIOR_SPREAD = 1.0
#: Prior standard deviation of the coefficients of ``rho(x)`` beyond the constant.
SCALE_SLOPE_PRIOR_STD = 2.0
#: Bases of the scale factor ``rho(x)`` (see the module docstring).
SCALE_BASES = ("constant", "linear", "presence")
#: An input above this counts as present (a fraction of an element in the alloy).
PRESENCE_THRESHOLD = 1e-9


def scale_basis(X: np.ndarray, basis: str) -> np.ndarray:
    """Basis functions ``g(x)`` of the scale factor ``rho(x) = g(x) . beta``.

    Args:
        X: ``(n, d)`` inputs.
        basis: ``"constant"`` (``g = [1]``), ``"linear"`` (``g = [1, x_1, ..., x_d]``)
            or ``"presence"`` (``g = [1, 1(x_1 > 0), ..., 1(x_d > 0)]``).

    Returns:
        ``(n, p)`` array.

    Raises:
        ValueError: naming ``basis`` if unknown.
    """
    ones = np.ones((X.shape[0], 1))
    if basis == "constant":
        return ones
    if basis == "linear":
        return np.hstack([ones, X])
    if basis == "presence":
        return np.hstack([ones, (X > PRESENCE_THRESHOLD).astype(float)])
    raise ValueError(f"basis: {basis!r} is not one of {SCALE_BASES}")


@dataclass(frozen=True)
class CoKrigingHyperparameters:
    """MAP hyperparameters of the autoregressive GP, on standardised outputs.

    Args:
        lengthscales: ``(L, d)`` ARD lengthscales of each rung's kernel.
        variances: ``(L,)`` signal variances ``s_j``.
        scales: ``(L - 1, p)`` coefficients ``beta`` of the scale factors
            ``rho_k(x) = g(x) . beta_k`` between consecutive rungs.
        means: ``(L,)`` constant means of ``f_k``.
        noises: ``(L,)`` observation noise variances.
        basis: the basis ``g`` of the scale factors.
    """

    lengthscales: np.ndarray
    variances: np.ndarray
    scales: np.ndarray
    means: np.ndarray
    noises: np.ndarray
    basis: str = "constant"

    def pack(self) -> np.ndarray:
        """The optimiser's vector: log lengthscales, log variances, scales, means, log noises."""
        return np.concatenate(
            [
                np.log(self.lengthscales).ravel(),
                np.log(self.variances),
                self.scales.ravel(),
                self.means,
                np.log(self.noises),
            ]
        )

    @classmethod
    def unpack(cls, theta: np.ndarray, rungs: int, d: int, basis: str) -> CoKrigingHyperparameters:
        """Inverse of :meth:`pack`."""
        log_ls, log_s, beta, mean, log_noise = _split(np.asarray(theta, dtype=float), rungs, d, basis)
        return cls(np.exp(log_ls), np.exp(log_s), beta.copy(), mean.copy(), np.exp(log_noise), basis)

    def scale_at(self, X: np.ndarray) -> np.ndarray:
        """``(L - 1, n)`` scale factors ``rho_k(x)`` at the inputs."""
        return self.scales @ scale_basis(np.asarray(X, dtype=float), self.basis).T


def _basis_size(d: int, basis: str) -> int:
    return 1 if basis == "constant" else d + 1


def _split(theta: np.ndarray, rungs: int, d: int, basis: str) -> tuple[np.ndarray, ...]:
    """Slice the packed vector into log lengthscales ``(L, d)``, log variances, scales ``(L-1, p)``, means, log noises."""
    p = _basis_size(d, basis)
    i = rungs * d
    j = i + rungs + (rungs - 1) * p
    return (
        theta[:i].reshape(rungs, d),
        theta[i : i + rungs],
        theta[i + rungs : j].reshape(rungs - 1, p),
        theta[j : j + rungs],
        theta[j + rungs : j + 2 * rungs],
    )


def rung_coefficients(rho: np.ndarray, r: np.ndarray, rungs: int, skip: int | None = None) -> np.ndarray:
    """How each independent term ``g_j`` enters each value: ``C[j, a] = rho_j(x_a) ... rho_{r_a - 1}(x_a)``.

    ``f_{r_a}(x_a) = sum_j C[j, a] g_j(x_a)``; ``C[j, a] = 1`` for ``j = r_a`` and 0
    for ``j > r_a``.

    Args:
        rho: ``(L - 1, n)`` scale factors at the points.
        r: ``(n,)`` rungs of the points.
        rungs: ``L``.
        skip: return the derivative with respect to ``rho_skip`` instead (the
            products without it, zero where they do not contain it).

    Returns:
        ``(L, n)`` array.
    """
    n = r.shape[0]
    C = np.zeros((rungs, n))
    for j in range(rungs):
        product = np.where(r >= j, 1.0, 0.0)
        contains = np.zeros(n, dtype=bool)
        for m in range(j, rungs - 1):
            active = r > m  # rho_m enters f_r for r > m, for terms j <= m
            if skip is not None and m == skip:
                contains |= active
                continue
            product = np.where(active, product * rho[m], product)
        C[j] = product if skip is None else np.where(contains, product, 0.0)
    return C


def squared_differences(X1: np.ndarray, X2: np.ndarray) -> np.ndarray:
    """``(d, n1, n2)`` squared coordinate differences."""
    return (X1.T[:, :, None] - X2.T[:, None, :]) ** 2


def _rung_kernels(D: np.ndarray, log_ls: np.ndarray, log_s: np.ndarray) -> np.ndarray:
    """``s_j exp(-0.5 sum_k D_k / l_jk^2)`` for every rung ``j``: shape ``(L, n1, n2)``."""
    d, n1, n2 = D.shape
    sq = (np.exp(-2.0 * log_ls) @ D.reshape(d, n1 * n2)).reshape(-1, n1, n2)
    return np.exp(log_s)[:, None, None] * np.exp(-0.5 * sq)


def _combine(B: np.ndarray, C1: np.ndarray, C2: np.ndarray) -> np.ndarray:
    """``cov(f(a), f(b)) = sum_j C1[j, a] C2[j, b] B_j[a, b]``."""
    return np.einsum("ja,jb,jab->ab", C1, C2, B)


def _cholesky(K: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, adding jitter until it succeeds.

    Raises:
        np.linalg.LinAlgError: if even a jitter of 0.1 does not help.
    """
    jitter = 0.0
    eye = np.eye(K.shape[0])
    while True:
        try:
            return np.linalg.cholesky(K + jitter * eye)
        except np.linalg.LinAlgError:
            jitter = 1e-9 if jitter == 0.0 else jitter * 10
            if jitter > 1e-1:
                raise


def _lengthscale_prior(d: int) -> tuple[float, float]:
    """Location and scale of the dimension-scaled ``LogNormal`` lengthscale prior."""
    return math.sqrt(2.0) + 0.5 * math.log(d), math.sqrt(3.0)


def _variance_prior(rungs: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard deviations of the normal priors on the log signal variances."""
    loc = np.full(rungs, math.log(DISCREPANCY_PRIOR_MEDIAN))
    scale = np.full(rungs, DISCREPANCY_PRIOR_SPREAD)
    loc[0], scale[0] = 0.0, 1.0
    return loc, scale


def _scale_prior(rungs: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard deviations of the normal priors on the scale coefficients."""
    loc = np.zeros((rungs - 1, p))
    loc[:, 0] = 1.0
    std = np.full((rungs - 1, p), SCALE_SLOPE_PRIOR_STD)
    std[:, 0] = 0.5
    return loc, std


def negative_log_posterior(
    theta: np.ndarray,
    D: np.ndarray,
    G_basis: np.ndarray,
    r: np.ndarray,
    z: np.ndarray,
    rungs: int,
    basis: str,
    extra_noise: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Negative log posterior density of the hyperparameters per observation, and its gradient.

    Priors: lengthscales ``LogNormal(sqrt(2) + log(d)/2, sqrt(3))`` (Hvarfner et
    al. 2024, on the value, as GPyTorch does); log signal variances
    ``Normal(0, 1)`` for rung 0 and ``Normal(log 0.25, 1)`` for a discrepancy
    (expected smaller than the trend, but it may not be), on the log so that
    the mode is the median: a few target observations must not shrink the
    discrepancy, and with it the target's uncertainty, to nothing; scale
    coefficients ``beta_0 ~ Normal(1, 0.5^2)`` (the cheap method is expected to
    track the target) and ``Normal(0, 2^2)`` for the others; means
    ``Normal(0, 2^2)``; noise variances ``LogNormal(-4, 1)`` (BoTorch's default
    likelihood). The
    marginal-likelihood gradient is ``0.5 tr((K^-1 - a a^T) dK)`` with
    ``a = K^-1 (z - m)`` (Rasmussen & Williams, *Gaussian Processes for Machine
    Learning*, MIT Press 2006, eq. 5.9).

    Args:
        theta: packed hyperparameters (see :meth:`CoKrigingHyperparameters.pack`).
        D: ``(d, n, n)`` squared coordinate differences of the training inputs.
        G_basis: ``(n, p)`` scale basis at the training inputs.
        r: ``(n,)`` rungs of the observations.
        z: ``(n,)`` standardised observations.
        rungs: number of rungs ``L``.
        basis: the scale basis (see :func:`scale_basis`).
        extra_noise: ``(n,)`` each observation's own noise variance on standardised
            outputs, added to its rung's fitted noise (``None`` for none).

    Returns:
        The value and its gradient with respect to ``theta``.
    """
    d, n, _ = D.shape
    log_ls, log_s, beta, mean, log_noise = _split(theta, rungs, d, basis)
    noise = np.exp(log_noise)
    rho = beta @ G_basis.T  # (L - 1, n)
    C = rung_coefficients(rho, r, rungs)
    B = _rung_kernels(D, log_ls, log_s)
    K = _combine(B, C, C) + np.diag(noise[r] + (0.0 if extra_noise is None else extra_noise))
    L = _cholesky(K)
    residual = z - mean[r]
    alpha = _cho_solve(L, residual)
    value = 0.5 * residual @ alpha + np.log(np.diagonal(L)).sum() + 0.5 * n * math.log(2 * math.pi)
    G = _inverse(L) - np.outer(alpha, alpha)  # dnll = 0.5 sum(G * dK)

    grad_ls = np.empty((rungs, d))
    grad_s = np.empty(rungs)
    W = np.empty((rungs, n))  # W[j] = (G o B_j) C_j
    for j in range(rungs):
        GB = G * B[j]
        M = GB * np.outer(C[j], C[j])
        grad_s[j] = 0.5 * M.sum()
        grad_ls[j] = 0.5 * np.exp(-2.0 * log_ls[j]) * (D.reshape(d, n * n) @ M.ravel())
        W[j] = GB @ C[j]
    grad_beta = np.empty_like(beta)
    for i in range(rungs - 1):
        Q = rung_coefficients(rho, r, rungs, skip=i)  # d C / d rho_i
        grad_beta[i] = G_basis.T @ (Q * W).sum(0)
    grad_mean = -np.bincount(r, weights=alpha, minlength=rungs).astype(float, copy=False)
    grad_noise = 0.5 * np.bincount(r, weights=np.diagonal(G), minlength=rungs) * noise

    loc, scale = _lengthscale_prior(d)
    value += (log_ls + (log_ls - loc) ** 2 / (2 * scale**2)).sum()
    grad_ls += 1.0 + (log_ls - loc) / scale**2
    s_loc, s_scale = _variance_prior(rungs)
    value += ((log_s - s_loc) ** 2 / (2 * s_scale**2)).sum()
    grad_s += (log_s - s_loc) / s_scale**2
    b_loc, b_std = _scale_prior(rungs, beta.shape[1])
    value += (((beta - b_loc) / b_std) ** 2).sum() / 2.0 + (mean**2).sum() / 8.0
    grad_beta += (beta - b_loc) / b_std**2
    grad_mean += mean / 4.0
    value += (log_noise + (log_noise + 4.0) ** 2 / 2.0).sum()
    grad_noise += 1.0 + (log_noise + 4.0)
    grad = np.concatenate([grad_ls.ravel(), grad_s, grad_beta.ravel(), grad_mean, grad_noise])
    return value / n, grad / n


def _cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L L^T x = b``."""
    return cho_solve((L, True), b, check_finite=False)


def _inverse(L: np.ndarray) -> np.ndarray:
    """``(L L^T)^-1`` from the lower Cholesky factor (LAPACK ``potri``, a third of a solve against the identity)."""
    inverse, info = dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed ({info})")
    return np.tril(inverse) + np.tril(inverse, -1).T


def _own_noise(noise: np.ndarray | None, n: int) -> np.ndarray:
    """Per-observation noise variances as an ``(n,)`` array (zeros for ``None``).

    Raises:
        ValueError: naming ``noise`` if its shape is wrong or a value is negative or not finite.
    """
    if noise is None:
        return np.zeros(n)
    own = np.asarray(noise, dtype=float)
    if own.shape != (n,):
        raise ValueError(f"noise: need shape ({n},), got {own.shape}")
    if not (np.isfinite(own).all() and (own >= 0).all()):
        raise ValueError("noise: variances must be finite and non-negative")
    return own


def check_observations(
    X: np.ndarray, rungs: np.ndarray, y: np.ndarray, n_rungs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations on a fidelity ladder as arrays: inputs ``(n, d)``, rungs ``(n,)`` (ints), values ``(n,)``.

    Raises:
        ValueError: naming ``X``, ``rungs`` or ``y`` on inconsistent shapes, a rung
            off the ladder of ``n_rungs`` or a value that is not finite.
    """
    X = np.asarray(X, dtype=float)
    rungs = np.asarray(rungs, dtype=int)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X: need an (n, d) array with n >= 1, got shape {X.shape}")
    n = X.shape[0]
    if rungs.shape != (n,) or y.shape != (n,):
        raise ValueError(f"rungs/y: need shape ({n},), got {rungs.shape} and {y.shape}")
    if rungs.min() < 0 or rungs.max() >= n_rungs:
        raise ValueError(f"rungs: values must lie in 0..{n_rungs - 1}")
    if not np.isfinite(y).all():
        raise ValueError("y: observations must be finite")
    return X, rungs, y


def standardisation(y: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the observations (scale 1 when undefined)."""
    mean = float(y.mean())
    scale = float(y.std(ddof=1)) if len(y) > 1 else 1.0
    return mean, scale if scale > 1e-12 else 1.0


def default_start(rungs: int, d: int, basis: str) -> np.ndarray:
    """The first start of the fit: prior modes (lengthscales) and prior means (the rest)."""
    loc, scale = _lengthscale_prior(d)
    log_ls = max(loc - scale**2, math.log(MIN_LENGTHSCALE))
    s_loc, _ = _variance_prior(rungs)
    b_loc, _ = _scale_prior(rungs, _basis_size(d, basis))
    return np.concatenate([np.full(rungs * d, log_ls), s_loc, b_loc.ravel(), np.zeros(rungs), np.full(rungs, -5.0)])


def _bounds(rungs: int, d: int, basis: str) -> list[tuple[float, float]]:
    p = _basis_size(d, basis)
    return (
        [(math.log(MIN_LENGTHSCALE), math.log(MAX_LENGTHSCALE))] * (rungs * d)
        + [(math.log(1e-4), math.log(1e2))] * rungs
        + [(-3.0, 3.0) if k == 0 else (-6.0, 6.0) for _ in range(rungs - 1) for k in range(p)]
        + [(-10.0, 10.0)] * rungs
        + [(math.log(MIN_NOISE), 0.0)] * rungs
    )


@dataclass(frozen=True)
class JointPrediction:
    """Posterior, at some points, of one rung's value and of the target value.

    Attributes (``(m,)`` arrays in data units, except ``noise_variance``):
        mean, variance: of the latent value ``f_rung``.
        target_mean, target_variance: of the target ``f_{L-1}``.
        explained_variance: how much of ``target_variance`` an observation at
            this rung (with its noise) would remove, in expectation.
        noise_variance: observation noise variance at this rung.
    """

    mean: np.ndarray
    variance: np.ndarray
    target_mean: np.ndarray
    target_variance: np.ndarray
    explained_variance: np.ndarray
    noise_variance: float

    def observation_correlation(self) -> np.ndarray:
        """Correlation between a new observation at this rung and the target value.

        ``sqrt(explained / target variance)``: about 1 for a target evaluation,
        0 where this rung's value is already known or says nothing about the
        target.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(self.target_variance > 0, self.explained_variance / self.target_variance, 0.0)
        return np.sqrt(np.clip(share, 0.0, 1.0))


class RungObservations:
    """What a surrogate over a fidelity ladder is conditioned on, with the standardisation of its outputs.

    Args:
        X: ``(n, d)`` inputs.
        rungs: ``(n,)`` rungs.
        y: ``(n,)`` observations in data units.
        n_rungs: number of rungs ``L``.
        y_mean: standardisation offset.
        y_scale: standardisation scale.
    """

    def __init__(
        self, X: np.ndarray, rungs: np.ndarray, y: np.ndarray, n_rungs: int, y_mean: float, y_scale: float
    ) -> None:
        self.X = np.asarray(X, dtype=float)
        self.rungs = np.asarray(rungs, dtype=int)
        self.y = np.asarray(y, dtype=float)
        self.n_rungs = n_rungs
        self.y_mean = y_mean
        self.y_scale = y_scale

    def standardised(self) -> np.ndarray:
        """The observations on the model's scale: ``(y - y_mean) / y_scale``."""
        return (self.y - self.y_mean) / self.y_scale


class AutoregressiveGP(RungObservations):
    """The fitted autoregressive multi-fidelity GP (see the module docstring).

    Build it with :meth:`fit`. Inputs are ``(n, d)`` arrays on the unit cube,
    rungs are indices into the fidelity ladder, outputs are in data units
    (standardised inside over all observations).

    Args:
        X, rungs, y, n_rungs: the training data (:class:`RungObservations`).
        hyper: hyperparameters on standardised outputs.
        y_mean, y_scale: the standardisation (:class:`RungObservations`).
        noise: ``(n,)`` each observation's own noise variance in data units squared
            (an MLIP committee's variance, say), added to its rung's fitted noise;
            ``None`` for none (every observation has its rung's noise only).
    """

    def __init__(
        self,
        X: np.ndarray,
        rungs: np.ndarray,
        y: np.ndarray,
        n_rungs: int,
        hyper: CoKrigingHyperparameters,
        y_mean: float,
        y_scale: float,
        noise: np.ndarray | None = None,
    ) -> None:
        super().__init__(X, rungs, y, n_rungs, y_mean, y_scale)
        self.hyper = hyper
        self.noise = _own_noise(noise, self.y.shape[0])
        self._log_ls = np.log(hyper.lengthscales)
        self._log_s = np.log(hyper.variances)
        self._C = self._coefficients(self.X, self.rungs)
        B = _rung_kernels(squared_differences(self.X, self.X), self._log_ls, self._log_s)
        K = _combine(B, self._C, self._C) + np.diag(hyper.noises[self.rungs] + self.noise / y_scale**2)
        self._L = _cholesky(K)
        self._alpha = _cho_solve(self._L, self.standardised() - hyper.means[self.rungs])

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        rungs: np.ndarray,
        y: np.ndarray,
        n_rungs: int,
        basis: str = "constant",
        warm_start: CoKrigingHyperparameters | None = None,
        maxiter: int = 200,
        noise: np.ndarray | None = None,
    ) -> AutoregressiveGP:
        """Fit the hyperparameters by MAP (L-BFGS-B) and condition on the data.

        Args:
            X: ``(n, d)`` inputs on the unit cube, ``n >= 1``.
            rungs: ``(n,)`` rung of each observation, ``0 .. n_rungs - 1``.
            y: ``(n,)`` observations in data units.
            n_rungs: number of rungs.
            basis: basis of the scale factors (see :func:`scale_basis`):
                ``"constant"`` (Kennedy & O'Hagan), ``"linear"`` or ``"presence"``
                (a cheap method may track the target in one region and not in
                another).
            warm_start: hyperparameters of an earlier fit, tried as a start as well.
            maxiter: iteration cap per start.
            noise: ``(n,)`` each observation's own noise variance (data units
                squared) on top of its rung's fitted noise, or ``None``.

        Returns:
            The fitted model.

        Raises:
            ValueError: naming ``X``, ``rungs``, ``y`` or ``basis`` on inconsistent
                shapes or values.
        """
        X, rungs, y = check_observations(X, rungs, y, n_rungs)
        n, d = X.shape
        own = _own_noise(noise, n)
        G_basis = scale_basis(X, basis)
        y_mean, y_scale = standardisation(y)
        z = (y - y_mean) / y_scale
        extra = own / y_scale**2 if own.any() else None
        D = squared_differences(X, X)
        bounds = _bounds(n_rungs, d, basis)
        lower, upper = np.array(bounds).T
        starts = [default_start(n_rungs, d, basis)]
        if warm_start is not None and warm_start.basis == basis and warm_start.lengthscales.shape == (n_rungs, d):
            starts.insert(0, np.clip(warm_start.pack(), lower, upper))

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            try:
                value, grad = negative_log_posterior(theta, D, G_basis, rungs, z, n_rungs, basis, extra)
            except np.linalg.LinAlgError:
                return 1e10, np.zeros_like(theta)
            if not math.isfinite(value):
                return 1e10, np.zeros_like(theta)
            return value, grad

        best_theta, best_value = starts[0], math.inf
        for start in starts:
            result = minimize(
                objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter}
            )
            if result.fun < best_value:
                best_theta, best_value = result.x, float(result.fun)
        hyper = CoKrigingHyperparameters.unpack(best_theta, n_rungs, d, basis)
        logger.debug("co-kriging fit: scales=%s variances=%s noises=%s", hyper.scales, hyper.variances, hyper.noises)
        return cls(X, rungs, y, n_rungs, hyper, y_mean, y_scale, own)

    @classmethod
    def with_hyperparameters(
        cls,
        X: np.ndarray,
        rungs: np.ndarray,
        y: np.ndarray,
        n_rungs: int,
        hyper: CoKrigingHyperparameters,
        noise: np.ndarray | None = None,
    ) -> AutoregressiveGP:
        """Condition on data with given hyperparameters (no fit), standardising anew.

        Args:
            X: ``(n, d)`` inputs; rungs: ``(n,)`` rungs; y: ``(n,)`` observations.
            n_rungs: number of rungs.
            hyper: hyperparameters of an earlier fit.
            noise: ``(n,)`` each observation's own noise variance, or ``None``.

        Returns:
            The model.
        """
        y = np.asarray(y, dtype=float)
        y_mean, y_scale = standardisation(y)
        return cls(X, rungs, y, n_rungs, hyper, y_mean, y_scale, noise)

    def loo_log_density(self, rung: int) -> float:
        """Leave-one-out log predictive density of the observations at ``rung``.

        For each observation ``i`` at that rung, the log density of its value
        under the model conditioned on all the others (hyperparameters kept),
        in closed form: residual ``[K^-1 (z - m)]_i / [K^-1]_ii`` and variance
        ``1 / [K^-1]_ii`` on standardised outputs (Rasmussen & Williams 2006,
        eq. 5.12). Summed; comparable between models of the same data (the
        standardisation depends on the data only). ``0.0`` without such
        observations.
        """
        mask = self.rungs == rung
        if not mask.any():
            return 0.0
        inverse_diag = np.diagonal(_inverse(self._L))[mask]
        variance = 1.0 / inverse_diag
        residual = self._alpha[mask] * variance
        return float(np.sum(-0.5 * np.log(2 * math.pi * variance) - 0.5 * residual**2 / variance))

    # --------------------------------------------------------------- prediction
    def _coefficients(self, X: np.ndarray, rungs: np.ndarray) -> np.ndarray:
        return rung_coefficients(self.hyper.scale_at(X), rungs, self.n_rungs)

    def _cross(self, X: np.ndarray, C: np.ndarray) -> np.ndarray:
        """``(m, n)`` prior covariance of the values with coefficients ``C`` at ``X`` and the training data."""
        B = _rung_kernels(squared_differences(X, self.X), self._log_ls, self._log_s)
        return _combine(B, C, self._C)

    def noise_variance(self, rung: int) -> float:
        """Observation noise variance at a rung, in data units squared."""
        return float(self.hyper.noises[rung]) * self.y_scale**2

    def predict(self, X: np.ndarray, rung: int) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent value ``f_rung`` (without noise).

        Args:
            X: ``(m, d)`` inputs.
            rung: the rung.

        Returns:
            ``(m,)`` means and ``(m,)`` variances, in data units.
        """
        joint = self.joint(X, rung)
        return joint.mean, joint.variance

    def joint(self, X: np.ndarray, rung: int) -> JointPrediction:
        """Posterior of ``f_rung`` and of the target ``f_{L-1}`` at the same points.

        Args:
            X: ``(m, d)`` inputs.
            rung: the rung to evaluate at.

        Returns:
            Means and variances, and the share of the target's variance an
            observation at ``rung`` would explain (``cov^2 / (var + noise)``), in
            data units.
        """
        X = np.asarray(X, dtype=float).reshape(-1, self.X.shape[1])
        m = X.shape[0]
        top = self.n_rungs - 1
        s = self.hyper.variances[:, None]
        C_r = self._coefficients(X, np.full(m, rung))
        k_r = self._cross(X, C_r)
        v_r = solve_triangular(self._L, k_r.T, lower=True, check_finite=False)
        mean_r = self.hyper.means[rung] + k_r @ self._alpha
        var_r = np.maximum((C_r**2 * s).sum(0) - (v_r**2).sum(0), 0.0)
        if rung == top:
            mean_t, var_t, cov = mean_r, var_r, var_r
        else:
            C_t = self._coefficients(X, np.full(m, top))
            k_t = self._cross(X, C_t)
            v_t = solve_triangular(self._L, k_t.T, lower=True, check_finite=False)
            mean_t = self.hyper.means[top] + k_t @ self._alpha
            var_t = np.maximum((C_t**2 * s).sum(0) - (v_t**2).sum(0), 0.0)
            cov = (C_r * C_t * s).sum(0) - (v_r * v_t).sum(0)
        scale, scale2 = self.y_scale, self.y_scale**2
        noise = self.noise_variance(rung)
        variance = var_r * scale2
        return JointPrediction(
            mean=mean_r * scale + self.y_mean,
            variance=variance,
            target_mean=mean_t * scale + self.y_mean,
            target_variance=var_t * scale2,
            explained_variance=(cov * scale2) ** 2 / np.maximum(variance + noise, 1e-300),
            noise_variance=noise,
        )

    def condition_on_expected(self, X: np.ndarray, rungs: np.ndarray) -> AutoregressiveGP:
        """The model after observing its own posterior means at new points (kriging believer).

        Conditioning on the expected values leaves the posterior mean unchanged
        everywhere and shrinks the variance as the real observations will
        (Ginsbourger, Le Riche & Carraro, in *Computational Intelligence in
        Expensive Optimization Problems*, Springer 2010): the way evaluations
        still in flight enter the acquisition.

        Args:
            X: ``(m, d)`` inputs of the evaluations in flight.
            rungs: ``(m,)`` their rungs.

        Returns:
            A new model with the same hyperparameters and standardisation.
        """
        believed = with_believed(self, X, rungs)
        if believed is None:
            return self
        X_all, rungs_all, y_all = believed
        return AutoregressiveGP(
            X_all,
            rungs_all,
            y_all,
            self.n_rungs,
            self.hyper,
            self.y_mean,
            self.y_scale,
            np.concatenate([self.noise, np.zeros(X_all.shape[0] - self.X.shape[0])]),  # believed values carry no noise
        )


class Observed(Protocol):
    """A surrogate over rungs with its data: what the kriging believer extends."""

    X: np.ndarray
    rungs: np.ndarray
    y: np.ndarray

    def predict(self, X: np.ndarray, rung: int) -> tuple[np.ndarray, np.ndarray]: ...


def with_believed(
    model: Observed, X: np.ndarray, rungs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A model's data with the evaluations in flight added at its own posterior means (kriging believer).

    Args:
        model: the surrogate, with its inputs ``X``, rungs and observations ``y``.
        X: inputs of the evaluations in flight (``(m, d)``, or flat).
        rungs: their rungs (``m`` of them).

    Returns:
        The inputs, rungs and observations, the model's own followed by the believed ones;
        None when nothing is in flight.
    """
    X = np.asarray(X, dtype=float).reshape(-1, model.X.shape[1])
    rungs = np.asarray(rungs, dtype=int).reshape(-1)
    if X.shape[0] == 0:
        return None
    expected = believed_values(model.predict, X, rungs)
    return np.vstack([model.X, X]), np.concatenate([model.rungs, rungs]), np.concatenate([model.y, expected])


def believed_values(
    predict: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], X: np.ndarray, rungs: np.ndarray
) -> np.ndarray:
    """A model's posterior means at points in flight, each at its own rung (the kriging believer's values).

    Args:
        predict: the model's ``predict(X, rung) -> (mean, variance)``.
        X: ``(m, d)`` inputs.
        rungs: ``(m,)`` their rungs.
    """
    expected = np.empty(X.shape[0])
    for rung in np.unique(rungs):
        mask = rungs == rung
        expected[mask] = predict(X[mask], int(rung))[0]
    return expected
