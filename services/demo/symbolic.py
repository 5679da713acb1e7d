"""Symbolic formulas for a campaign's results: SISSO fitted to everything both runs measured.

After a campaign, the results of its run and of its baseline are one data
set over the same search space. SISSO (Ouyang et al., Phys. Rev. Mater. 2,
083802 (2018); :mod:`labweave.optimizer.sisso`) searches a unit-aware space
of expressions built from the numeric parameters for the low-dimensional
linear model that describes each objective best, the dimension chosen by
cross-validation where there are enough results. With a dozen or two
results, these are descriptive formulas (what the campaign has learnt so far
about the landscape), not validated physical laws; the report gives each
with its training and cross-validated errors.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labweave.optimizer.analytics import Observation
from labweave.optimizer.sisso.model import SissoRegressor, SissoSettings
from labweave.optimizer.sisso.units import parse_unit
from labweave.schemas.campaign import CategoricalParameter, Objective, SearchSpaceSpec

log = logging.getLogger(__name__)

#: Fewest results a formula is fitted to.
MIN_RESULTS = 6
#: The feature space: two operator layers, descriptors of one or two features.
SETTINGS = SissoSettings(max_rung=2, max_dimension=2, n_sis_select=10)


@dataclass(frozen=True)
class Formula:
    """A formula found for one objective.

    Args:
        objective: the objective described.
        text: the formula.
        rmse: its root mean squared error on the results it was fitted to.
        cv_rmse: its cross-validated RMSE, if there were enough results.
        results: how many results it was fitted to.
    """

    objective: str
    text: str
    rmse: float
    cv_rmse: float | None
    results: int

    def describe(self) -> str:
        """The formula and its errors in one line."""
        cv = f", cross-validated RMSE {self.cv_rmse:.3g}" if self.cv_rmse is not None else ""
        return f"{self.text} (from {self.results} results; RMSE {self.rmse:.3g}{cv})"


def fit_formulas(space: SearchSpaceSpec, objectives: Sequence[Objective], observations: Sequence[Observation],
                 seed: int = 0) -> list[Formula]:
    """Fit a SISSO formula for each objective to the observations.

    Args:
        space: the campaign's search space (gives the numeric parameters and their units).
        objectives: the campaign's objectives.
        observations: the results to describe (both runs, one fidelity).
        seed: seed of the cross-validation split.

    Returns:
        One formula per objective that could be fitted (at least :data:`MIN_RESULTS` results,
        a property that varies).
    """
    numeric = [p for p in space.parameters if not isinstance(p, CategoricalParameter)]
    rows = [o for o in observations if all(p.name in o.parameters for p in numeric)]
    if len(rows) < MIN_RESULTS or not numeric:
        return []
    names = [p.name for p in numeric]
    units = [_unit_text(getattr(p, "unit", None)) for p in numeric]
    X = np.array([[float(o.parameters[n]) for n in names] for o in rows])
    formulas = []
    for objective in objectives:
        y = np.array([o.values[objective.name] for o in rows])
        if np.ptp(y) == 0:
            continue
        folds = min(5, len(rows) // 3) if len(rows) >= 9 else None
        settings = SETTINGS.model_copy(update={"cv_folds": folds, "seed": seed})
        try:
            fitted = SissoRegressor(settings).fit(X, y, names, units, target_name=objective.name)
        except ValueError as exc:  # e.g. too few distinct values for a feature space
            log.warning("no SISSO formula for %s: %s", objective.name, exc)
            continue
        model = fitted.best_model_
        chosen = model.dimension - 1
        cv = None
        if fitted.cv_rmse_ is not None and math.isfinite(fitted.cv_rmse_[chosen]):
            cv = float(fitted.cv_rmse_[chosen])
        formulas.append(Formula(objective.name, model.formula(digits=4), float(model.rmse), cv, len(rows)))
    return formulas


def _unit_text(unit: str | None) -> str | None:
    """A parameter's unit for SISSO's unit algebra (which parses ``J/cm2``), ``None`` if it cannot."""
    if not unit:
        return None
    try:
        parse_unit(unit)
    except ValueError:
        log.warning("unit %r not understood; the parameter is taken as dimensionless", unit)
        return None
    return unit
