"""Sure-independence screening (SIS) of a SISSO feature space.

SIS ranks every feature by its projection score, the absolute Pearson
correlation with the target (first dimension) or, for higher dimensions, the
largest absolute correlation with the residuals of the best models of the
previous dimension (Ouyang et al., Phys. Rev. Mater. 2, 083802 (2018);
``n_residual`` of SISSO++, Purcell et al., J. Chem. Phys. 159, 114110 (2023)).
It keeps the ``n_select`` best features that are not, up to an affine map,
copies of each other or of features selected for an earlier dimension. Among
exact copies the simplest expression (fewest nodes, then fewest operators,
then earliest generated) is kept.

The feature space is streamed block by block, so the top rung never has to
fit in memory; a running pool of the best candidates is kept meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from labweave.optimizer.sisso.features import Feature, FeatureSpace, standardize_rows

__all__ = ["ScreenedFeature", "projection_scores", "screen"]

logger = logging.getLogger(__name__)

#: two features whose |correlation| exceeds this are the same feature to a linear model
SAME_FEATURE_CORRELATION = 1.0 - 1e-8


@dataclass(frozen=True)
class ScreenedFeature:
    """A feature chosen by SIS.

    Attributes:
        feature: the expression tree.
        values: its values on the training samples, shape ``(n_samples,)``.
        score: its projection score (absolute correlation, 0..1).
    """

    feature: Feature
    values: np.ndarray
    score: float


def projection_scores(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Absolute Pearson correlation of each row with the closest target.

    Because the targets are centred, ``(v - mean(v)) . t = v . t``: the rows
    need not be centred, only their centred norms are computed (from sums,
    falling back to explicit centring where that would lose precision).

    Args:
        values: feature values, shape ``(b, n)``.
        targets: standardized targets (centred, unit norm), shape ``(k, n)``.

    Returns:
        ``max_k |corr(values_i, targets_k)|``, shape ``(b,)``; 0 for constant
        rows, NaN for rows with non-finite values.
    """
    n = values.shape[1]
    with np.errstate(all="ignore"):
        total = values.sum(axis=1)
        squares = np.einsum("ij,ij->i", values, values)
        centred_sq = squares - total * total / n
        imprecise = ~(centred_sq > 1e-6 * squares)
        if np.any(imprecise):
            rows = np.flatnonzero(imprecise & np.isfinite(squares))
            centred = values[rows] - values[rows].mean(axis=1, keepdims=True)
            centred_sq[rows] = np.einsum("ij,ij->i", centred, centred)
        # einsum, not BLAS: matrix-vector products of tall thin blocks are many times faster this way
        dots = np.max(np.abs(np.einsum("ij,kj->ik", values, targets)), axis=1)
        norms = np.sqrt(centred_sq)
        return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)


def _standardized_targets(targets: np.ndarray) -> np.ndarray:
    targets = np.atleast_2d(np.asarray(targets, dtype=float))
    z, norms = standardize_rows(targets)
    if np.any(norms <= 0):
        raise ValueError("targets: a target (or residual) is constant; nothing to screen against")
    return z


@dataclass
class _Candidate:
    score: float
    start: int
    values: np.ndarray
    block_build: Callable[[int], Feature]
    row: int

    def feature(self) -> Feature:
        return self.block_build(self.row)


def _collect(space: FeatureSpace, targets: np.ndarray, pool_size: int) -> tuple[list[_Candidate], int]:
    """Stream the space and keep the ``pool_size`` best-scoring valid candidates."""
    pool: list[_Candidate] = []
    threshold = -1.0
    n_valid = 0
    for block in space.candidate_blocks():
        n_valid += int(np.count_nonzero(block.valid))
        scores = np.where(block.valid, projection_scores(block.values, targets), -1.0)
        rows = np.flatnonzero(scores > threshold)
        if len(rows) == 0:
            continue
        scores = scores[rows]
        if len(rows) > pool_size:
            top = np.argpartition(-scores, pool_size - 1)[:pool_size]
            rows, scores = rows[top], scores[top]
        pool.extend(
            _Candidate(float(s), block.start + int(r), block.values[r].copy(), block.build, int(r))
            for s, r in zip(scores, rows)
        )
        if len(pool) > 2 * pool_size:
            pool.sort(key=lambda c: (-c.score, c.start))
            del pool[pool_size:]
            threshold = pool[-1].score
    pool.sort(key=lambda c: (-c.score, c.start))
    return pool[:pool_size], n_valid


def screen(
    space: FeatureSpace,
    targets: np.ndarray,
    n_select: int,
    exclude: Sequence[np.ndarray] = (),
) -> list[ScreenedFeature]:
    """Select the ``n_select`` features best correlated with the targets.

    Args:
        space: the feature space to screen (all rungs up to its ``max_rung``).
        targets: the property, or the residuals of the previous dimension's
            best models; shape ``(n,)`` or ``(k, n)``.
        n_select: how many features to keep.
        exclude: values of features selected before (they and their copies
            are skipped).

    Returns:
        The selected features, best first (fewer if the space is smaller).

    Raises:
        ValueError: naming ``n_select`` if it is not positive, or ``targets``
            if a target is constant or has the wrong length.
    """
    if n_select < 1:
        raise ValueError(f"n_select: must be positive, got {n_select}")
    targets = _standardized_targets(targets)
    if targets.shape[1] != space.n_samples:
        raise ValueError(f"targets: length {targets.shape[1]} != {space.n_samples} samples")
    excluded = standardize_rows(np.array(exclude, dtype=float).reshape(len(exclude), space.n_samples))[0]

    pool_size = 20 * n_select + 100
    while True:
        pool, n_valid = _collect(space, targets, pool_size)
        chosen: list[tuple[_Candidate, Feature, np.ndarray]] = []
        for cand in pool:
            z = standardize_rows(cand.values[None, :])[0][0]
            if len(excluded) and np.max(np.abs(excluded @ z)) > SAME_FEATURE_CORRELATION:
                continue
            feature = cand.feature()
            duplicate_of = None
            for k, (_, _, z_other) in enumerate(chosen):
                if abs(float(z_other @ z)) > SAME_FEATURE_CORRELATION:
                    duplicate_of = k
                    break
            if duplicate_of is not None:
                other, other_feature, _ = chosen[duplicate_of]
                if (feature.size, feature.complexity, cand.start) < (
                    other_feature.size,
                    other_feature.complexity,
                    other.start,
                ):
                    chosen[duplicate_of] = (cand, feature, z)
                continue
            if len(chosen) < n_select:
                chosen.append((cand, feature, z))
        if len(chosen) >= n_select or len(pool) >= n_valid:
            break
        pool_size *= 4
        logger.debug("SIS: too many copies among the best candidates; widening the pool to %d", pool_size)
    logger.debug("SIS: screened %d valid features, selected %d", n_valid, len(chosen))
    return [ScreenedFeature(feature, cand.values, cand.score) for cand, feature, _ in chosen]
