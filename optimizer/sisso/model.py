"""SISSO models and the SISSO regressor (SIS + l0, dimension by dimension).

The regressor follows Ouyang et al., Phys. Rev. Mater. 2, 083802 (2018) as
implemented in SISSO++ (Purcell et al., J. Chem. Phys. 159, 114110 (2023)):

1. build the feature space up to ``max_rung`` (:class:`.FeatureSpace`);
2. for dimension ``d = 1 .. max_dimension``: screen ``n_sis_select`` new
   features by correlation with the property (``d = 1``) or with the
   residuals of the ``n_residual`` best models of dimension ``d - 1``;
3. find the best ``d``-feature linear model (with intercept) over all
   subsets of the union of the screened features (:func:`.l0_search`).

Optionally the dimension is chosen by k-fold cross-validation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from labweave.optimizer.sisso.features import Feature, FeatureSpace
from labweave.optimizer.sisso.l0 import l0_search
from labweave.optimizer.sisso.operators import DEFAULT_OPERATORS, resolve_operators
from labweave.optimizer.sisso.screening import ScreenedFeature, screen
from labweave.optimizer.sisso.units import FeatureUnits, Unit, parse_units

__all__ = ["SissoSettings", "SissoModel", "SissoRegressor", "as_columns", "check_training_data"]

logger = logging.getLogger(__name__)


class SissoSettings(BaseModel):
    """Settings of one SISSO run (names as in SISSO++ where they exist).

    Attributes:
        max_rung: depth of the feature space (operator layers).
        n_sis_select: features kept by SIS per dimension.
        max_dimension: the largest descriptor dimension fitted.
        n_residual: how many of the previous dimension's best models provide
            residuals for SIS (a feature scores by its best correlation).
        operators: operator keys (see :mod:`.operators`).
        min_abs_value: screened features need a largest |value| at least this.
        max_abs_value: screened features need a largest |value| at most this.
        cv_folds: if set, choose the dimension by this many-fold cross-validation.
        seed: seed of the cross-validation fold split.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rung: int = Field(2, ge=0, le=3)
    n_sis_select: int = Field(10, ge=1)
    max_dimension: int = Field(2, ge=1, le=6)
    n_residual: int = Field(1, ge=1)
    operators: tuple[str, ...] = DEFAULT_OPERATORS
    min_abs_value: float = Field(1e-5, ge=0.0)
    max_abs_value: float = Field(1e8, gt=0.0)
    cv_folds: int | None = Field(None, ge=2)
    seed: int = 0

    @field_validator("operators")
    @classmethod
    def _known_operators(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(op.key for op in resolve_operators(value))


def as_columns(X: Any, feature_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Primary feature columns by name.

    Args:
        X: a mapping name -> values, or an array ``(n, p)`` with ``feature_names``.
        feature_names: the column names when ``X`` is an array.

    Returns:
        name -> 1-D float array.

    Raises:
        ValueError: naming ``X`` or ``feature_names`` when they do not fit.
    """
    if isinstance(X, Mapping):
        return {str(name): np.asarray(col, dtype=float).ravel() for name, col in X.items()}
    data = np.asarray(X, dtype=float)
    if data.ndim == 1:
        data = data[None, :]
    if feature_names is None:
        raise ValueError("feature_names: required when X is an array")
    if data.ndim != 2 or data.shape[1] != len(feature_names):
        raise ValueError(f"X: expected shape (n, {len(feature_names)}), got {data.shape}")
    return {name: data[:, j] for j, name in enumerate(feature_names)}


@dataclass(frozen=True)
class SissoModel:
    """A linear model on SISSO descriptors: ``y = c0 + sum_i a_i * feature_i``.

    Attributes:
        features: the descriptor features.
        coefficients: ``a_i``, one per feature.
        intercept: ``c0``.
        rmse: the training root mean squared error.
        target_name: the name of the modelled property.
        target_unit: its unit (text).
    """

    features: tuple[Feature, ...]
    coefficients: tuple[float, ...]
    intercept: float
    rmse: float
    target_name: str = "y"
    target_unit: str = ""

    @property
    def dimension(self) -> int:
        """The number of descriptor features."""
        return len(self.features)

    @property
    def descriptor(self) -> str:
        """The descriptor features as text, separated by ``"; "``."""
        return "; ".join(feature.expr for feature in self.features)

    @property
    def primary_names(self) -> frozenset[str]:
        """The primary features the model needs."""
        return frozenset().union(*(feature.primary_names for feature in self.features))

    def formula(self, digits: int = 6) -> str:
        """The model as a readable equation.

        Args:
            digits: significant digits of the coefficients.

        Returns:
            e.g. ``dE = -0.287 - 0.0321 * ((EA_B - IP_A) * (|r_sigma - r_s_B|)) - ...``.
        """
        text = f"{self.target_name} = {self.intercept:.{digits}g}"
        for coef, feature in zip(self.coefficients, self.features):
            sign = "-" if coef < 0 else "+"
            text += f" {sign} {abs(coef):.{digits}g} * {feature.expr}"
        return text

    def feature_values(self, X: Any, feature_names: Sequence[str] | None = None) -> np.ndarray:
        """The descriptor values.

        Args:
            X: primary feature values (see :func:`as_columns`).
            feature_names: column names when ``X`` is an array.

        Returns:
            Shape ``(n, dimension)``.
        """
        columns = as_columns(X, feature_names)
        n = len(next(iter(columns.values()))) if columns else 0
        return np.column_stack([f.evaluate(columns) for f in self.features]) if self.features else np.zeros((n, 0))

    def predict(self, X: Any, feature_names: Sequence[str] | None = None) -> np.ndarray:
        """Predict the property.

        Args:
            X: primary feature values: a mapping name -> column, or an array
                ``(n, p)`` with ``feature_names``. Extra columns are ignored.
            feature_names: column names when ``X`` is an array.

        Returns:
            Predictions, shape ``(n,)``; NaN where a descriptor is undefined.
        """
        return self.intercept + self.feature_values(X, feature_names) @ np.asarray(self.coefficients)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (features in postfix form with primary units)."""
        units: dict[str, str] = {}
        for feature in self.features:
            _collect_units(feature, units)
        return {
            "features": [feature.postfix for feature in self.features],
            "coefficients": [float(c) for c in self.coefficients],
            "intercept": float(self.intercept),
            "rmse": float(self.rmse),
            "target_name": self.target_name,
            "target_unit": self.target_unit,
            "primary_units": units,
            "formula": self.formula(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SissoModel:
        """Rebuild a model written by :meth:`to_dict`.

        Args:
            data: the dictionary.

        Returns:
            The model.
        """
        units = dict(data["primary_units"])
        features = tuple(Feature.from_postfix(text, units) for text in data["features"])
        return cls(
            features,
            tuple(float(c) for c in data["coefficients"]),
            float(data["intercept"]),
            float(data["rmse"]),
            str(data.get("target_name", "y")),
            str(data.get("target_unit", "")),
        )


def _collect_units(feature: Feature, units: dict[str, str]) -> None:
    if feature.name is not None:  # a primary feature
        units[feature.name] = str(feature.unit)
    for child in feature.children:
        _collect_units(child, units)


def check_training_data(X: Any, y: Any, feature_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The training data of a SISSO fit as float arrays: ``X`` ``(n_samples, n_primary)``, ``y`` ``(n_samples,)``.

    Raises:
        ValueError: naming ``X``, ``y`` or ``feature_names`` if the shapes disagree, a
            property value is not finite or the property is constant.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array, got shape {X.shape}")
    if len(y) != X.shape[0]:
        raise ValueError(f"y: {len(y)} values for {X.shape[0]} samples")
    if not np.all(np.isfinite(y)):
        raise ValueError("y: contains non-finite values")
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"feature_names: {len(feature_names)} names for {X.shape[1]} columns")
    if np.ptp(y) == 0:
        raise ValueError("y: the property is constant")
    return X, y


@dataclass
class SissoRegressor:
    """SISSO symbolic regression.

    Args:
        settings: the run settings; defaults to :class:`SissoSettings`.

    After :meth:`fit`:
        models_: the best model of each dimension (index ``d - 1``).
        selected_: the SIS-selected features of each dimension.
        seconds_: wall time from the start of :meth:`fit` until each
            dimension's model was found.
        dimension_: the chosen dimension (cross-validated if
            ``settings.cv_folds``, else ``max_dimension``).
        cv_rmse_: mean validation RMSE per dimension (cross-validation only).
    """

    settings: SissoSettings = field(default_factory=SissoSettings)
    models_: list[SissoModel] = field(default_factory=list, init=False)
    selected_: list[list[ScreenedFeature]] = field(default_factory=list, init=False)
    seconds_: list[float] = field(default_factory=list, init=False)
    dimension_: int | None = field(default=None, init=False)
    cv_rmse_: np.ndarray | None = field(default=None, init=False)
    cv_rmse_sem_: np.ndarray | None = field(default=None, init=False)
    feature_names_: list[str] = field(default_factory=list, init=False)
    units_: list[Unit] = field(default_factory=list, init=False)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        feature_names: Sequence[str],
        units: FeatureUnits = None,
        *,
        target_name: str = "y",
        target_unit: str = "",
    ) -> SissoRegressor:
        """Fit SISSO models of dimension 1 to ``max_dimension``.

        Args:
            X: primary feature values, shape ``(n_samples, n_primary)``.
            y: the property, shape ``(n_samples,)``.
            feature_names: the primary feature names.
            units: their units (sequence aligned with the names, or a mapping).
            target_name: the property's name, for formulas.
            target_unit: the property's unit, for formulas.

        Returns:
            ``self``.

        Raises:
            ValueError: naming the field on inconsistent or non-finite input.
        """
        X, y = check_training_data(X, y, feature_names)
        self.feature_names_ = list(feature_names)
        self.units_ = parse_units(units, self.feature_names_)
        self._fit_path(X, y, target_name, target_unit)
        if self.settings.cv_folds:
            self.cv_rmse_, self.cv_rmse_sem_ = self.cross_validate(X, y, feature_names, units, self.settings.cv_folds)
            finite = np.where(np.isfinite(self.cv_rmse_), self.cv_rmse_, np.inf)
            self.dimension_ = int(np.argmin(finite[: len(self.models_)])) + 1
        else:
            self.dimension_ = len(self.models_)
        return self

    def _fit_path(self, X: np.ndarray, y: np.ndarray, target_name: str, target_unit: str) -> None:
        s = self.settings
        start = time.perf_counter()
        space = FeatureSpace(
            X,
            self.feature_names_,
            self.units_,
            max_rung=s.max_rung,
            operators=s.operators,
            min_abs_value=s.min_abs_value,
            max_abs_value=s.max_abs_value,
        )
        logger.debug(
            "SISSO: %d stored features (rung < %d) built in %.2f s",
            len(space.stored),
            s.max_rung,
            time.perf_counter() - start,
        )
        self.models_, self.selected_, self.seconds_ = [], [], []
        max_dimension = min(s.max_dimension, X.shape[0] - 2)
        pool: list[ScreenedFeature] = []
        residual_targets = y[None, :]
        for dimension in range(1, max_dimension + 1):
            chosen = screen(space, residual_targets, s.n_sis_select, exclude=[f.values for f in pool])
            if not chosen:
                logger.info("SISSO: feature space exhausted at dimension %d", dimension)
                break
            self.selected_.append(chosen)
            pool.extend(chosen)
            if len(pool) < dimension:
                break
            values = np.column_stack([f.values for f in pool])
            fits = l0_search(values, y, dimension, n_keep=s.n_residual)
            best = fits[0]
            model = SissoModel(
                tuple(pool[i].feature for i in best.indices),
                tuple(float(c) for c in best.coefficients),
                best.intercept,
                best.rmse,
                target_name,
                target_unit,
            )
            self.models_.append(model)
            self.seconds_.append(time.perf_counter() - start)
            logger.debug(
                "SISSO: dimension %d, RMSE %.6g, %s (%.2f s)", dimension, best.rmse, model.descriptor, self.seconds_[-1]
            )
            residual_targets = np.array([y - fit.predict(values[:, list(fit.indices)]) for fit in fits])
            if np.any(np.ptp(residual_targets, axis=1) == 0):
                break

    def cross_validate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        feature_names: Sequence[str],
        units: FeatureUnits,
        folds: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """k-fold cross-validated RMSE of each dimension.

        Args:
            X: primary feature values ``(n, p)``.
            y: the property ``(n,)``.
            feature_names: primary feature names.
            units: their units.
            folds: number of folds (the split is seeded by ``settings.seed``).

        Returns:
            Mean validation RMSE per dimension ``(max_dimension,)`` and its
            standard error over folds; NaN for dimensions a fold could not fit.
        """
        X, y = check_training_data(X, y, feature_names)
        if folds > len(y):
            raise ValueError(f"cv_folds: {folds} folds for {len(y)} samples")
        rng = np.random.default_rng(self.settings.seed)
        order = rng.permutation(len(y))
        inner = self.settings.model_copy(update={"cv_folds": None})
        errors = np.full((folds, self.settings.max_dimension), np.nan)
        for k, test in enumerate(np.array_split(order, folds)):
            train = np.setdiff1d(order, test)
            member = SissoRegressor(inner).fit(X[train], y[train], feature_names, units)
            columns = as_columns(X[test], feature_names)
            for d, model in enumerate(member.models_):
                errors[k, d] = np.sqrt(np.mean((model.predict(columns) - y[test]) ** 2))
            logger.info("SISSO CV fold %d/%d: validation RMSE %s", k + 1, folds, np.round(errors[k], 5))
        mean = np.full(errors.shape[1], np.nan)
        sem = np.full(errors.shape[1], np.nan)
        for d, column in enumerate(errors.T):
            finite = column[np.isfinite(column)]
            if len(finite):
                mean[d] = finite.mean()
            if len(finite) > 1:
                sem[d] = finite.std(ddof=1) / np.sqrt(len(finite))
        return mean, sem

    @property
    def best_model_(self) -> SissoModel:
        """The model of the chosen dimension."""
        if not self.models_:
            raise RuntimeError("SissoRegressor: call fit() first")
        return self.models_[(self.dimension_ or len(self.models_)) - 1]

    def predict(self, X: Any, feature_names: Sequence[str] | None = None, dimension: int | None = None) -> np.ndarray:
        """Predict with the chosen (or a given) dimension's model.

        Args:
            X: primary feature values (mapping, or array with names).
            feature_names: column names of an array ``X``; defaults to the
                names seen in :meth:`fit`.
            dimension: which model to use; default the chosen dimension.

        Returns:
            Predictions ``(n,)``.
        """
        if not self.models_:
            raise RuntimeError("SissoRegressor: call fit() first")
        model = self.best_model_ if dimension is None else self.models_[dimension - 1]
        names = feature_names if feature_names is not None else self.feature_names_
        return model.predict(X, names)
