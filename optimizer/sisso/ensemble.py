"""An ensemble of SISSO models with calibrated uncertainty.

Following Nair, Foppa & Scheffler (npj Comput. Mater. (2025)), each member is
a SISSO model trained on a bootstrap resample of the data with a random
subset of the primary features left out ("feature dropout"). The members
disagree most where the data do not pin the descriptor down, so the spread of
their predictions is a measure of the model (epistemic) uncertainty usable
by an acquisition function in sequential learning.

A raw ensemble spread is rarely calibrated. The out-of-bag (OOB) predictions
of the members (each sample is predicted by the members whose bootstrap
missed it) give honest residuals, on which the predictive variance
``s^2 = a * sigma_ens^2 + b`` is fitted by maximum Gaussian likelihood; this is
the recalibration of bootstrap ensembles of Palmer et al., npj Comput. Mater.
8, 115 (2022), in its variance form, with ``b`` the noise the ensemble cannot
see.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize

from labweave.optimizer.sisso.model import SissoModel, SissoRegressor, SissoSettings, as_columns, check_training_data
from labweave.optimizer.sisso.units import FeatureUnits, parse_units

__all__ = ["EnsembleSettings", "SissoEnsemble"]

logger = logging.getLogger(__name__)

_MIN_OOB_MEMBERS = 2


class EnsembleSettings(BaseModel):
    """Settings of a SISSO ensemble.

    Attributes:
        n_models: number of members.
        dimension: descriptor dimension of every member's model.
        feature_dropout: probability that a primary feature is left out of a
            member (at least one feature is always kept).
        bootstrap: resample the training rows with replacement per member.
        calibrate: fit the variance calibration on out-of-bag residuals.
        seed: seed of the resampling and dropout.
        sisso: settings of each member's SISSO run (``max_dimension`` is
            overridden by ``dimension``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_models: int = Field(20, ge=2, le=1000)
    dimension: int = Field(2, ge=1, le=6)
    feature_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    bootstrap: bool = True
    calibrate: bool = True
    seed: int = 0
    sisso: SissoSettings = Field(default_factory=SissoSettings)


class SissoEnsemble:
    """Bootstrap + feature-dropout ensemble of SISSO models.

    Args:
        settings: the ensemble settings; keyword overrides are applied on top
            (e.g. ``SissoEnsemble(n_models=10, dimension=1)``).

    After :meth:`fit`:
        members_: the member models.
        member_features_: the primary features each member was allowed to use.
        variance_scale_: ``a`` of the calibration (1 without calibration).
        variance_floor_: ``b`` of the calibration (0 without calibration).
        oob_: out-of-bag mean, spread and target per sample that had enough
            OOB members (for diagnostics), as a dict of arrays.
    """

    def __init__(self, settings: EnsembleSettings | None = None, **overrides: Any) -> None:
        settings = settings or EnsembleSettings()
        if overrides:
            settings = EnsembleSettings.model_validate({**dict(settings), **overrides})
        self.settings = settings
        self.members_: list[SissoModel] = []
        self.member_features_: list[list[str]] = []
        self.variance_scale_ = 1.0
        self.variance_floor_ = 0.0
        self.oob_: dict[str, np.ndarray] = {}
        self.feature_names_: list[str] = []

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        feature_names: Sequence[str],
        units: FeatureUnits = None,
        *,
        target_name: str = "y",
        target_unit: str = "",
    ) -> SissoEnsemble:
        """Train the members and calibrate the spread.

        Args:
            X: primary feature values ``(n_samples, n_primary)``.
            y: the property ``(n_samples,)``.
            feature_names: primary feature names.
            units: their units (aligned sequence or mapping).
            target_name: property name for the formulas.
            target_unit: property unit for the formulas.

        Returns:
            ``self``.

        Raises:
            ValueError: naming the field on inconsistent input.
        """
        X, y = check_training_data(X, y, feature_names)
        names = list(feature_names)
        if len(y) < 5:
            raise ValueError(f"y: need at least 5 samples for an ensemble, got {len(y)}")
        unit_map = dict(zip(names, parse_units(units, names)))

        s = self.settings
        rng = np.random.default_rng(s.seed)
        member_settings = s.sisso.model_copy(update={"max_dimension": s.dimension, "cv_folds": None})
        n = len(y)
        self.feature_names_ = names
        self.members_, self.member_features_ = [], []
        in_bag = np.zeros((s.n_models, n), dtype=bool)
        for m in range(s.n_models):
            rows = self._draw_rows(rng, y)
            kept = self._draw_features(rng, len(names))
            kept_names = [names[j] for j in kept]
            regressor = SissoRegressor(member_settings).fit(
                X[np.ix_(rows, kept)],
                y[rows],
                kept_names,
                {k: unit_map[k] for k in kept_names},
                target_name=target_name,
                target_unit=target_unit,
            )
            model = regressor.models_[-1]
            self.members_.append(model)
            self.member_features_.append(kept_names)
            in_bag[m, rows] = True
            logger.debug("ensemble member %d/%d: %s", m + 1, s.n_models, model.formula(4))
        if s.calibrate and s.bootstrap:
            self._calibrate(X, y, in_bag)
        else:
            self.variance_scale_, self.variance_floor_ = 1.0, 0.0
        logger.info(
            "SISSO ensemble: %d members, variance scale %.3g, floor %.3g",
            len(self.members_),
            self.variance_scale_,
            self.variance_floor_,
        )
        return self

    def _draw_rows(self, rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
        n = len(y)
        if not self.settings.bootstrap:
            return np.arange(n)
        for _ in range(100):
            rows = rng.integers(0, n, n)
            if len(np.unique(rows)) >= min(n, self.settings.dimension + 3) and np.ptp(y[rows]) > 0:
                return rows
        raise ValueError("y: bootstrap resamples keep coming out constant; too few distinct values")

    def _draw_features(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        kept = np.flatnonzero(rng.random(n_features) >= self.settings.feature_dropout)
        if len(kept) == 0:
            kept = np.array([rng.integers(n_features)])
        return kept

    def _calibrate(self, X: np.ndarray, y: np.ndarray, in_bag: np.ndarray) -> None:
        """Fit ``s^2 = a sigma^2 + b`` to out-of-bag residuals by maximum likelihood."""
        predictions = self.predict_members(X)
        oob = ~in_bag & np.isfinite(predictions)
        counts = oob.sum(axis=0)
        usable = counts >= _MIN_OOB_MEMBERS
        if usable.sum() < 5:
            logger.warning(
                "SISSO ensemble: only %d samples have %d+ out-of-bag members; spread left uncalibrated",
                int(usable.sum()),
                _MIN_OOB_MEMBERS,
            )
            self.variance_scale_, self.variance_floor_ = 1.0, 0.0
            return
        masked = np.where(oob, predictions, np.nan)[:, usable]
        n_oob = counts[usable]
        mean = np.nanmean(masked, axis=0)
        spread_sq = np.nanvar(masked, axis=0, ddof=1)
        residual_sq = (y[usable] - mean) ** 2
        self.oob_ = {"mean": mean, "std": np.sqrt(spread_sq), "y": y[usable], "index": np.flatnonzero(usable)}
        scale_ref = max(float(np.mean(residual_sq)), 1e-300)
        n_members = len(self.members_)

        # Error of a K-member mean: (c + 1/K) sigma^2 + b, where c sigma^2 + b is the
        # error of the infinitely large ensemble and sigma^2/K the sampling noise of the
        # mean. OOB means average K ~ 0.37 M members; predictions average all M.
        def nll(theta: np.ndarray) -> float:
            variance = (np.exp(theta[0]) + 1.0 / n_oob) * spread_sq + np.exp(theta[1]) * scale_ref
            return float(np.sum(np.log(variance) + residual_sq / variance))

        start = np.array([0.0, np.log(0.1)])
        result = minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000})
        theta = result.x if np.all(np.isfinite(result.x)) else start
        self.variance_scale_ = float(np.exp(theta[0]) + 1.0 / n_members)
        self.variance_floor_ = float(np.exp(theta[1]) * scale_ref)

    # -------------------------------------------------------------- predict
    def predict_members(self, X: Any, feature_names: Sequence[str] | None = None) -> np.ndarray:
        """Every member's prediction.

        Args:
            X: primary feature values: a mapping name -> column, or an array
                with ``feature_names`` (default: the names seen in :meth:`fit`).
            feature_names: column names of an array ``X``.

        Returns:
            Shape ``(n_models, n)``; NaN where a member's descriptor is undefined.
        """
        self._check_fitted()
        columns = as_columns(X, feature_names if feature_names is not None else self.feature_names_)
        return np.array([member.predict(columns) for member in self.members_])

    def predict(self, X: Any, feature_names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and calibrated standard deviation.

        Args:
            X: primary feature values (see :meth:`predict_members`).
            feature_names: column names of an array ``X``.

        Returns:
            ``(mean, std)``, each of shape ``(n,)``.
        """
        predictions = self.predict_members(X, feature_names)
        finite = np.isfinite(predictions)
        counts = finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, predictions, 0.0).sum(axis=0) / counts
            deviation = np.where(finite, predictions - mean, 0.0)
            spread_sq = np.where(counts > 1, np.sum(deviation**2, axis=0) / (counts - 1), np.nan)
        std = np.sqrt(self.variance_scale_ * spread_sq + self.variance_floor_)
        return mean, std

    # ---------------------------------------------------------- inspection
    def formulas(self, digits: int = 4) -> list[str]:
        """The members' models as readable equations with their coefficients."""
        self._check_fitted()
        return [member.formula(digits) for member in self.members_]

    def descriptor_frequencies(self) -> list[tuple[str, int]]:
        """How many members use each descriptor feature, most frequent first."""
        self._check_fitted()
        counts: Counter[str] = Counter()
        expr: dict[str, str] = {}
        for member in self.members_:
            for feature in member.features:
                counts[feature.canonical] += 1
                expr.setdefault(feature.canonical, feature.expr)
        return [(expr[key], count) for key, count in counts.most_common()]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the fitted ensemble."""
        self._check_fitted()
        return {
            "settings": self.settings.model_dump(mode="json"),
            "feature_names": list(self.feature_names_),
            "members": [member.to_dict() for member in self.members_],
            "member_features": [list(names) for names in self.member_features_],
            "variance_scale": self.variance_scale_,
            "variance_floor": self.variance_floor_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SissoEnsemble:
        """Rebuild an ensemble written by :meth:`to_dict`."""
        ensemble = cls(EnsembleSettings.model_validate(data["settings"]))
        ensemble.feature_names_ = list(data["feature_names"])
        ensemble.members_ = [SissoModel.from_dict(member) for member in data["members"]]
        ensemble.member_features_ = [list(names) for names in data["member_features"]]
        ensemble.variance_scale_ = float(data["variance_scale"])
        ensemble.variance_floor_ = float(data["variance_floor"])
        return ensemble

    def _check_fitted(self) -> None:
        if not self.members_:
            raise RuntimeError("SissoEnsemble: call fit() first")
