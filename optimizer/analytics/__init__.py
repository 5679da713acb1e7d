"""Campaign analytics: what a campaign's requests and results say, computed in one place.

The optimizer daemon (the state it publishes), the dashboard (a campaign's
page and the list of campaigns) and the demo's report all read campaigns
through this package; each only adapts its inputs (requests as
:class:`~labweave.schemas.api.RequestDetail`, results as
:class:`~labweave.schemas.core.ResultInfo`) and renders what it gets.

- :mod:`.terms`: objectives, outcome constraints, budget and fidelity ladder of a campaign;
- :mod:`.observations`: resolved requests with the values read from their results;
- :mod:`.progress`: progress in the budget's own unit (experiments or cost);
- :mod:`.curves`: best so far, per experiment or per cost, and the hypervolume after each result;
- :mod:`.front`: Pareto fronts and hypervolumes (BoTorch);
- :mod:`.calibration`: the model's predictions against the measurements;
- :mod:`.formulas`: the formulas a strategy reports, as text.
"""

from __future__ import annotations

from .calibration import Calibration, Prediction, awaiting_measurement, calibration, predicted, predictions
from .curves import Curve, best, best_so_far, better, hypervolume_so_far, progress_curve
from .formulas import FormulaStep, formula_history, formula_lines
from .front import hypervolume, pareto_front, pareto_mask, reference_point
from .observations import Observation, live_results, observations, read_values
from .progress import ENDED, IN_FLIGHT, Progress, charge, progress
from .terms import COST, EXPERIMENTS, CampaignTerms

__all__ = [
    "COST", "ENDED", "EXPERIMENTS", "IN_FLIGHT", "Calibration", "CampaignTerms", "Curve", "Observation",
    "Prediction", "Progress", "awaiting_measurement", "best", "best_so_far", "better", "calibration", "charge",
    "FormulaStep", "formula_history", "formula_lines", "hypervolume", "hypervolume_so_far", "live_results", "observations", "pareto_front",
    "pareto_mask", "predicted", "predictions", "progress", "progress_curve", "read_values", "reference_point",
]
