"""The l0 step of SISSO: exhaustive least squares over feature subsets.

For a descriptor dimension ``d`` every ``d``-subset of the screened features
is fitted by ordinary least squares with an intercept, and the subsets with
the smallest residual sum of squares win (Ouyang et al., Phys. Rev. Mater. 2,
083802 (2018)). With centred, scaled columns the residual sum of squares of a
subset ``S`` is ``y'y - b_S' G_SS^-1 b_S`` with ``G = X'X`` and ``b = X'y``, so
all subsets are solved at once as a batch of ``d x d`` normal equations
(numpy's batched ``solve``); the winners are refitted exactly by QR-based
least squares.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["LinearFit", "fit_linear", "l0_search"]

_MAX_BATCH = 200_000


@dataclass(frozen=True)
class LinearFit:
    """A least-squares fit of the target on a subset of features.

    Attributes:
        indices: column indices of the features used (ascending).
        coefficients: one coefficient per feature.
        intercept: the constant term.
        rmse: root mean squared training error.
    """

    indices: tuple[int, ...]
    coefficients: np.ndarray
    intercept: float
    rmse: float

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Evaluate the fit.

        Args:
            values: the subset's feature values, shape ``(n, d)``.

        Returns:
            Predictions, shape ``(n,)``.
        """
        return self.intercept + values @ self.coefficients


def fit_linear(values: np.ndarray, y: np.ndarray, indices: tuple[int, ...] = ()) -> LinearFit:
    """Ordinary least squares with an intercept (via numpy's ``lstsq``).

    Args:
        values: feature values, shape ``(n, d)``.
        y: target, shape ``(n,)``.
        indices: the column indices to record in the result.

    Returns:
        The fit.
    """
    design = np.column_stack([np.ones(len(y)), values])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ solution
    return LinearFit(tuple(indices), solution[1:], float(solution[0]), float(np.sqrt(np.mean(residual**2))))


def _combination_batches(n: int, d: int) -> Iterator[np.ndarray]:
    combos = itertools.combinations(range(n), d)
    while True:
        chunk = np.fromiter(itertools.chain.from_iterable(itertools.islice(combos, _MAX_BATCH)), dtype=np.int64)
        if chunk.size == 0:
            return
        yield chunk.reshape(-1, d)


def l0_search(values: np.ndarray, y: np.ndarray, dimension: int, n_keep: int = 1) -> list[LinearFit]:
    """Best ``dimension``-feature linear models among all subsets of the columns.

    Args:
        values: candidate feature values, shape ``(n_samples, n_features)``.
        y: target, shape ``(n_samples,)``.
        dimension: number of features per model.
        n_keep: how many of the best models to return.

    Returns:
        Up to ``n_keep`` fits, best (lowest RMSE) first.

    Raises:
        ValueError: naming ``dimension`` if it is not in ``1..n_features``, or
            ``values``/``y`` on inconsistent shapes.
    """
    values = np.asarray(values, dtype=float)
    y = np.asarray(y, dtype=float)
    if values.ndim != 2 or values.shape[0] != y.shape[0]:
        raise ValueError(f"values: expected shape ({y.shape[0]}, n_features), got {values.shape}")
    n_features = values.shape[1]
    if not 1 <= dimension <= n_features:
        raise ValueError(f"dimension: must be between 1 and {n_features}, got {dimension}")
    if n_keep < 1:
        raise ValueError(f"n_keep: must be positive, got {n_keep}")

    centred = values - values.mean(axis=0)
    scale = np.sqrt(np.sum(centred**2, axis=0))
    scale[scale == 0] = 1.0
    x = centred / scale
    yc = y - y.mean()
    gram = x.T @ x
    proj = x.T @ yc
    total = float(yc @ yc)
    # a whisker of ridge keeps exactly collinear subsets solvable; the winners are refitted exactly
    ridge = 1e-12 * np.eye(dimension)

    best_rss = np.empty(0)
    best_sets = np.empty((0, dimension), dtype=np.int64)
    keep = min(n_keep, math.comb(n_features, dimension))
    for combos in _combination_batches(n_features, dimension):
        g = gram[combos[:, :, None], combos[:, None, :]] + ridge
        b = proj[combos]
        coef = np.linalg.solve(g, b[:, :, None])[:, :, 0]
        rss = total - np.einsum("ij,ij->i", b, coef)
        rss = np.where(np.isfinite(rss), rss, np.inf)
        all_rss = np.concatenate([best_rss, rss])
        all_sets = np.concatenate([best_sets, combos])
        top = np.argsort(all_rss, kind="stable")[: keep * 4 + 4]
        best_rss, best_sets = all_rss[top], all_sets[top]

    fits = [fit_linear(values[:, combo], y, tuple(int(i) for i in combo)) for combo in best_sets]
    fits.sort(key=lambda fit: fit.rmse)
    return fits[:keep]
