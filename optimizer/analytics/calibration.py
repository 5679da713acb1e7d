"""The model's predictions against the measurements: how well its uncertainties cover its errors.

Before each model-made experiment the optimizer records, in the request's
provenance, the predicted mean and standard deviation of each objective
(``predicted_mean``, ``predicted_std``: ``{objective: value}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from labweave.schemas.api import RequestDetail

from .observations import Observation
from .progress import IN_FLIGHT
from .terms import CampaignTerms


@dataclass(frozen=True)
class Prediction:
    """The model's prediction for a proposal, and what was then measured.

    Args:
        mean: predicted mean.
        std: predicted standard deviation (its size, if written negative).
        measured: the measured value.
        method: the method that measured it.
        request_uuid: the request.
    """

    mean: float
    std: float
    measured: float
    method: str = ""
    request_uuid: str = ""

    @property
    def z(self) -> float:
        """Standardised error ``(measured - mean) / std``."""
        return (self.measured - self.mean) / self.std if self.std > 0 else math.inf


@dataclass(frozen=True)
class Calibration:
    """How well the predictions matched.

    Args:
        n: predictions with a measurement.
        rmse: root mean squared error of the predicted means.
        within_2_sigma: the share of measurements within two standard deviations (about 0.95 for
            calibrated Gaussian uncertainties).
    """

    n: int
    rmse: float
    within_2_sigma: float


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def predicted(provenance: dict[str, Any], objective: str) -> tuple[float, float] | None:
    """``(mean, std)`` the provenance predicts for ``objective``, ``None`` if it predicts none."""
    means, stds = provenance.get("predicted_mean"), provenance.get("predicted_std")
    if not isinstance(means, dict) or not isinstance(stds, dict):
        return None
    mean, std = _finite(means.get(objective)), _finite(stds.get(objective))
    return None if mean is None or std is None else (mean, abs(std))


def predictions(terms: CampaignTerms, observations: Iterable[Observation]) -> dict[str, list[Prediction]]:
    """Each objective's predictions against its measurements, in the order of the results.

    Returns:
        ``{objective: predictions}``; objectives the model did not predict are left out.
    """
    out: dict[str, list[Prediction]] = {}
    for o in observations:
        for objective in terms.objectives:
            guess = predicted(o.provenance, objective.name)
            if guess is not None and objective.name in o.values:
                out.setdefault(objective.name, []).append(
                    Prediction(guess[0], guess[1], o.values[objective.name], o.method, o.request_uuid))
    return out


def awaiting_measurement(terms: CampaignTerms, requests: Iterable[RequestDetail]) -> int:
    """Requests in flight whose proposal predicted the first objective."""
    name = terms.objectives[0].name if terms.objectives else None
    return sum(1 for r in requests if r.status in IN_FLIGHT and name and predicted(r.provenance, name))


def calibration(preds: Sequence[Prediction]) -> Calibration | None:
    """RMSE of the predictions and the share of measurements within two standard deviations.

    Returns:
        The statistics, ``None`` without predictions.
    """
    if not preds:
        return None
    rmse = math.sqrt(sum((p.measured - p.mean) ** 2 for p in preds) / len(preds))
    within = sum(1 for p in preds if abs(p.measured - p.mean) <= 2.0 * p.std) / len(preds)
    return Calibration(len(preds), rmse, within)
