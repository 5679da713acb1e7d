"""Cycling data to FINALES results: capacity/cycling and degradationEOL/degradation_workflow.

Pure functions of the measurements: no instrument, no I/O, no global random
state (the bootstrap of the end-of-life uncertainty uses a fixed seed), so a
workflow tenant can compute a ``degradationEOL`` result from the
``capacity``/``cycling`` results it collected.

End of life is the first cycle whose discharge capacity falls below a
fraction (80 %) of that of the first cycle after formation. If a test stops
before, the end of life is extrapolated from a power-law fade fitted to the
retention, ``r(n) = 1 - a (n - 1)^b``: capacity fade of lithium-ion cells
follows such laws, with b near 0.5 for SEI-dominated and near 1 or above for
mechanically dominated ageing (e.g. Spotnitz, J. Power Sources 113, 72
(2003); Schmalstieg et al., J. Power Sources 257, 325 (2014)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from labweave.drivers.cells import CATALOGUE
from labweave.drivers.cycler.backend import CyclingRun, DischargeCurve, curve_cycles
from labweave.schemas.battery import (
    CapacityCyclingOutput,
    CellInfo,
    ChemicalInfo,
    DegradationEOLOutput,
    DegradationWorkflowOutput,
    FormulationComponent,
    FormulationInfo,
    MethodMeta,
    RunInfo,
)

#: Capacity retention that defines end of life.
END_OF_LIFE_THRESHOLD = 0.8
#: Relative uncertainty assumed for a capacity when the data cannot tell.
DEFAULT_CAPACITY_UNCERTAINTY = 2e-4
#: Bootstrap draws of the fitted fade for the end-of-life uncertainty.
_DRAWS = 400


def end_of_life_cycle(
    capacities: Sequence[float], threshold: float = END_OF_LIFE_THRESHOLD, aborted: bool = False
) -> int | None:
    """First cycle (1-based) below ``threshold`` times the first cycle's capacity.

    Args:
        capacities: discharge capacity per cycle.
        threshold: retention defining end of life.
        aborted: the test ended early because the cell failed; its last
            cycle then counts as end of life if the threshold was not reached.

    Returns:
        The cycle, or None if the capacity never fell below the threshold
        and the test was not aborted.
    """
    if not capacities:
        return 1 if aborted else None
    limit = threshold * capacities[0]
    for n, capacity in enumerate(capacities, start=1):
        if capacity < limit:
            return n
    return len(capacities) if aborted else None


def capacity_vector_variance(early: DischargeCurve, late: DischargeCurve, points: int = 200) -> float | None:
    """log10 of the variance of Q_late(V) - Q_early(V) (Severson et al., Nat. Energy 4, 383 (2019)).

    Both discharge curves are interpolated on a common voltage grid spanning
    the voltages both cover.

    Returns:
        log10 of the variance in mAh^2, or None if the curves do not overlap.
    """
    v_e, q_e = np.asarray(early.voltage), np.asarray(early.capacity_mah)
    v_l, q_l = np.asarray(late.voltage), np.asarray(late.capacity_mah)
    if len(v_e) < 3 or len(v_l) < 3:
        return None
    low = max(v_e.min(), v_l.min())
    high = min(v_e.max(), v_l.max())
    if high - low < 0.05:
        return None
    grid = np.linspace(low, high, points)
    order_e, order_l = np.argsort(v_e), np.argsort(v_l)
    delta = np.interp(grid, v_l[order_l], q_l[order_l]) - np.interp(grid, v_e[order_e], q_e[order_e])
    variance = float(np.var(delta))
    return math.log10(variance) if variance > 0 else None


def cycling_output(
    run: CyclingRun, cell_info: CellInfo, threshold: float = END_OF_LIFE_THRESHOLD
) -> CapacityCyclingOutput:
    """The ``capacity``/``cycling`` result of a test.

    ``delta_coulombic_efficiency`` and ``capacity_vector_variance`` compare
    the last cycle with the early cycle of :func:`~.backend.curve_cycles`;
    ``voltage_gap_charge_discharge`` is the last cycle's mean charge voltage
    minus its mean discharge voltage; charging rates run over formation and
    cycling.
    """
    cycles = run.cycles
    capacities = [round(c.discharge_capacity_mah, 6) for c in cycles]
    efficiencies = [round(c.coulombic_efficiency, 6) for c in cycles]
    delta_ce = gap = variance = None
    if cycles:
        early, late = curve_cycles(len(cycles))
        last = cycles[-1]
        if late > early:
            delta_ce = efficiencies[late - 1] - efficiencies[early - 1]
        if math.isfinite(last.mean_charge_voltage) and math.isfinite(last.mean_discharge_voltage):
            gap = last.mean_charge_voltage - last.mean_discharge_voltage
        first_curve = cycles[early - 1].curve
        if late > early and first_curve is not None and last.curve is not None:
            variance = capacity_vector_variance(first_curve, last.curve)
    rates = [c.charge_c_rate for c in run.formation + cycles]
    return CapacityCyclingOutput(
        capacity_list=capacities,
        channel_list=[run.channel],
        cell_info=cell_info,
        delta_coulombic_efficiency=delta_ce,
        voltage_gap_charge_discharge=gap,
        capacity_vector_variance=variance,
        coulombic_efficiency_list=efficiencies,
        charge_capacity_list=[round(c.charge_capacity_mah, 6) for c in cycles],
        formation_capacity_list=[round(c.discharge_capacity_mah, 6) for c in run.formation],
        end_of_life_cycle=end_of_life_cycle(capacities, threshold, aborted=not run.completed),
        end_of_life_threshold=threshold,
        average_charging_rate=float(np.mean(rates)) if rates else None,
        maximum_charging_rate=max(rates) if rates else None,
        minimum_charging_rate=min(rates) if rates else None,
        test_completed=run.completed,
        abort_reason=run.abort_reason,
    )


# -- end of life -----------------------------------------------------------------


def _retention_model(n: np.ndarray, a: float, b: float) -> np.ndarray:
    return 1.0 - a * np.power(np.maximum(n - 1.0, 0.0), b)


@dataclass(frozen=True)
class FadeFit:
    """A power-law fade ``r(n) = 1 - a (n - 1)^b`` fitted to a capacity trajectory.

    Attributes:
        a, b: fitted parameters.
        covariance: their 2x2 covariance.
        residual_std: standard deviation of the retention residuals.
        first_capacity: capacity of cycle 1, mAh.
    """

    a: float
    b: float
    covariance: np.ndarray
    residual_std: float
    first_capacity: float

    def cycle_at(self, retention: float, a: float | None = None, b: float | None = None) -> float:
        """The (real-valued) cycle at which the fitted retention reaches ``retention``."""
        a = self.a if a is None else a
        b = self.b if b is None else b
        return 1.0 + ((1.0 - retention) / a) ** (1.0 / b)


def fit_fade(capacities: Sequence[float]) -> FadeFit | None:
    """Fit the power-law fade to a capacity trajectory (None if it shows no fade or is too short)."""
    q = np.asarray(capacities, dtype=float)
    if len(q) < 5 or q[0] <= 0:
        return None
    retention = q / q[0]
    n = np.arange(1, len(q) + 1, dtype=float)
    fade_end = 1.0 - float(np.median(retention[-3:]))
    if fade_end <= 0:
        return None
    guess_a = max(fade_end / max(n[-1] - 1.0, 1.0), 1e-9)
    try:
        (a, b), covariance = curve_fit(
            _retention_model, n, retention, p0=(guess_a, 1.0), bounds=((1e-12, 0.2), (1.0, 3.0)), maxfev=20000
        )
    except (RuntimeError, ValueError):
        return None
    residuals = retention - _retention_model(n, a, b)
    dof = max(len(q) - 2, 1)
    covariance = np.asarray(covariance, dtype=float)
    if not np.all(np.isfinite(covariance)):
        covariance = np.zeros((2, 2))
    return FadeFit(
        a=float(a),
        b=float(b),
        covariance=covariance,
        residual_std=float(np.sqrt(np.sum(residuals**2) / dof)),
        first_capacity=float(q[0]),
    )


@dataclass(frozen=True)
class EndOfLife:
    """An end-of-life estimate of one cell.

    Attributes:
        cycle: the end-of-life cycle.
        uncertainty: its standard uncertainty, cycles.
        measured: the cell reached the threshold during the test.
        capacity_uncertainty: standard uncertainty of one capacity, mAh.
        rating: 0-5, how far the estimate can be trusted.
        success: False if the cell failed (a defect) or no estimate is possible.
    """

    cycle: int
    uncertainty: float
    measured: bool
    capacity_uncertainty: float
    rating: int
    success: bool


def estimate_end_of_life(
    capacities: Sequence[float], threshold: float = END_OF_LIFE_THRESHOLD, aborted: bool = False
) -> EndOfLife:
    """End of life of one cell, measured or extrapolated, with its uncertainty.

    * Measured (the threshold was crossed): uncertainty from the capacity
      noise over the local slope of the fitted fade, at least half a cycle.
    * Extrapolated: the fitted power law solved for the threshold; the
      uncertainty is the spread of that solution over parameter draws from
      the fit's covariance (fixed seed, so the function stays pure).
    * Aborted test (a cell that failed, e.g. shorted): the failing cycle,
      flagged unsuccessful: it says nothing about the chemistry.

    Args:
        capacities: discharge capacity per cycle after formation, mAh.
        threshold: retention defining end of life.
        aborted: the test ended because the cell failed.
    """
    q = [float(c) for c in capacities]
    fit = fit_fade(q)
    noise = DEFAULT_CAPACITY_UNCERTAINTY * (q[0] if q else 1.0)
    capacity_uncertainty = max(noise, fit.residual_std * fit.first_capacity) if fit else noise
    crossed = end_of_life_cycle(q, threshold)
    if crossed is not None:
        slope = None
        if fit is not None and fit.b > 0:
            n = float(crossed)
            slope = fit.a * fit.b * max(n - 1.0, 1.0) ** (fit.b - 1.0)
        sigma_r = capacity_uncertainty / q[0]
        spread = sigma_r / slope if slope else 1.0
        return EndOfLife(crossed, max(float(spread), 0.5), True, capacity_uncertainty, 5, True)
    if aborted:
        return EndOfLife(max(len(q), 1), 1.0, False, capacity_uncertainty, 1, False)
    if fit is None:
        cycles = max(len(q), 1)
        return EndOfLife(cycles, float(cycles), False, capacity_uncertainty, 0, False)
    estimate = fit.cycle_at(threshold)
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal([fit.a, fit.b], fit.covariance, size=_DRAWS, check_valid="ignore")
    valid = draws[(draws[:, 0] > 0) & (draws[:, 1] > 0.05)]
    cycles_drawn = np.array([fit.cycle_at(threshold, a, b) for a, b in valid]) if len(valid) else np.array([])
    cycles_drawn = cycles_drawn[np.isfinite(cycles_drawn)]
    spread = float(np.std(cycles_drawn)) if len(cycles_drawn) > 1 else estimate
    observed_fade = 1.0 - q[-1] / q[0]
    reach = estimate / len(q)
    rating = 4 if observed_fade >= 0.5 * (1 - threshold) else 3 if reach <= 5 else 2
    return EndOfLife(
        cycle=max(int(round(estimate)), len(q) + 1),
        uncertainty=max(spread, 0.5),
        measured=False,
        capacity_uncertainty=capacity_uncertainty,
        rating=rating,
        success=True,
    )


def _chemicals_info(formulation: Sequence[FormulationComponent]) -> dict[str, ChemicalInfo]:
    info = {}
    for comp in formulation:
        props = CATALOGUE.get(comp.chemical.InChIKey)
        if props is None:
            continue
        info[props.key] = ChemicalInfo(
            name=props.name,
            molar_mass=(props.molar_mass, 0.01),
            density=(props.density, 0.005),
        )
    return info


def degradation_workflow_output(
    formulation: Sequence[FormulationComponent | dict],
    cycling_results: Sequence[CapacityCyclingOutput | dict],
    internal_reference: str,
    threshold: float = END_OF_LIFE_THRESHOLD,
    formulation_info: FormulationInfo | None = None,
) -> DegradationWorkflowOutput:
    """The ``degradationEOL``/``degradation_workflow`` result of cells cycled with one formulation.

    Args:
        formulation: the electrolyte the cells were made with.
        cycling_results: ``capacity``/``cycling`` result data, one per cell
            (models or their JSON dicts).
        internal_reference: the workflow run's identifier.
        threshold: retention defining end of life.
        formulation_info: documentation of the electrolyte batch, if known.

    Returns:
        One ``degradationEOL`` entry per cell (failed cells flagged
        ``meta.success = false``), in the order given.
    """
    components = [FormulationComponent.model_validate(c) for c in formulation]
    entries = []
    for raw in cycling_results:
        result = CapacityCyclingOutput.model_validate(raw)
        capacities = result.capacity_list
        aborted = result.test_completed is False
        eol = estimate_end_of_life(capacities, threshold, aborted=aborted)
        entries.append(
            DegradationEOLOutput(
                end_of_life=eol.cycle,
                end_of_life_uncertainty=round(eol.uncertainty, 3),
                capacity_trajectory=list(capacities),
                capacity_trajectory_uncertainty=[round(eol.capacity_uncertainty, 6)] * len(capacities),
                meta=MethodMeta(success=eol.success, rating=eol.rating),
                cell_info=result.cell_info,
            )
        )
    return DegradationWorkflowOutput(
        run_info=RunInfo(
            formulation=components,
            internal_reference=internal_reference,
            formulation_info=formulation_info,
            chemicals_info=_chemicals_info(components) or None,
        ),
        degradationEOL=entries,
    )
