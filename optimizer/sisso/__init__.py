"""SISSO symbolic regression with ensemble uncertainty.

The sure-independence screening and sparsifying operator method (Ouyang et
al., Phys. Rev. Mater. 2, 083802 (2018)), following SISSO++ (Purcell et al.,
J. Chem. Phys. 159, 114110 (2023)), and an ensemble of SISSO models on
bootstrap resamples with feature dropout for uncertainty (Nair, Foppa &
Scheffler, npj Comput. Mater. (2025)).

Modules:
    units: unit algebra of the primary features.
    operators: the operator set and its unit rules.
    features: expression trees and the (streamed) feature space.
    screening: sure-independence screening.
    l0: exhaustive least squares over screened subsets.
    model: :class:`SissoModel` and :class:`SissoRegressor` (with k-fold choice of dimension).
    ensemble: :class:`SissoEnsemble`, a calibrated surrogate for sequential learning.

The octet82 study against SISSO++ lives in a clone's ``benchmarks/`` (``python -m benchmarks.sisso_octet``).
"""

from labweave.optimizer.sisso.ensemble import EnsembleSettings, SissoEnsemble
from labweave.optimizer.sisso.features import Feature, FeatureSpace
from labweave.optimizer.sisso.l0 import LinearFit, l0_search
from labweave.optimizer.sisso.model import SissoModel, SissoRegressor, SissoSettings
from labweave.optimizer.sisso.operators import DEFAULT_OPERATORS
from labweave.optimizer.sisso.screening import ScreenedFeature, screen
from labweave.optimizer.sisso.units import DIMENSIONLESS, Unit, parse_unit

__all__ = [
    "DEFAULT_OPERATORS",
    "DIMENSIONLESS",
    "EnsembleSettings",
    "Feature",
    "FeatureSpace",
    "LinearFit",
    "ScreenedFeature",
    "SissoEnsemble",
    "SissoModel",
    "SissoRegressor",
    "SissoSettings",
    "Unit",
    "l0_search",
    "parse_unit",
    "screen",
]
