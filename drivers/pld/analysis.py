"""Growth-mode classification from the morphology a growth leaves.

Criterion (in this order):

* ``step_flow`` when at least half of the film was incorporated at the
  substrate's steps: the terraces never filled with islands, and RHEED shows
  no oscillation, only the dip and recovery of each pulse.
* ``layer_by_layer`` when the surface exposed essentially two levels at a
  time: the RMS roughness, averaged over the growth, stays below 0.55 unit
  cell. Ideal layer-by-layer growth averages sqrt(f(1-f)) over a layer,
  pi/8 = 0.39; statistical (Poisson) growth of H layers averages
  (2/3) sqrt(H), 0.67 at H = 1 and more beyond.
* ``island_3d`` otherwise.
"""

from __future__ import annotations

from labweave.schemas.thin_film import GrowthMode

#: Share of the film grown at substrate steps above which growth is step flow.
STEP_FLOW_SHARE = 0.5
#: Growth-averaged RMS roughness (unit cells) below which growth is layer by layer.
LAYER_BY_LAYER_ROUGHNESS = 0.55


def classify_growth(step_flow_fraction: float, mean_roughness_uc: float) -> GrowthMode:
    """The growth mode from the step-flow share and the mean roughness.

    Args:
        step_flow_fraction: share of the film incorporated at substrate steps.
        mean_roughness_uc: RMS roughness averaged over the growth (unit cells).

    Returns:
        The growth mode.
    """
    if step_flow_fraction >= STEP_FLOW_SHARE:
        return GrowthMode.STEP_FLOW
    if mean_roughness_uc < LAYER_BY_LAYER_ROUGHNESS:
        return GrowthMode.LAYER_BY_LAYER
    return GrowthMode.ISLAND_3D
