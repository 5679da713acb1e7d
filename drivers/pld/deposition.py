"""A pulse train on the growing surface: the time grid and what is recorded.

Each pulse period is integrated in two parts: the arrival of the plume (the
pulse dose landed in a few slices over the arrival time, so nucleation sees
the instantaneous flux) and the recovery until the next pulse on a geometric
time grid, fine just after the pulse, coarse before the next one.
"""

from __future__ import annotations

import math

import numpy as np

from labweave.drivers.pld.growth import MultilayerSurface, SurfaceKinetics
from labweave.drivers.pld.rheed import specular_intensity

#: Steps of the recovery grid per pulse period.
RECOVERY_STEPS = 28
#: First recovery step as a share of the recovery time.
FIRST_STEP = 1e-4
#: A recovery slower than this is reported as this (s).
SLOWEST_RECOVERY = 1e4


def geometric_steps(total: float, first: float, count: int) -> np.ndarray:
    """Step lengths growing geometrically from ``first`` and summing to ``total``.

    Args:
        total: the time to cover (s).
        first: the first step (s), less than total / count.
        count: number of steps.

    Returns:
        The step lengths (s).
    """
    if first * count >= total:
        return np.full(count, total / count)
    low, high = 1.0, 2.0
    while first * (high**count - 1) / (high - 1) < total:
        high *= 2.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if first * (mid**count - 1) / (mid - 1) < total:
            low = mid
        else:
            high = mid
    ratio = 0.5 * (low + high)
    steps = first * ratio ** np.arange(count)
    return steps * (total / steps.sum())


class PulsedDeposition:
    """A train of laser pulses on one surface, with its RHEED record.

    Args:
        kinetics: surface rates at the growth temperature.
        pulse_interval: time between pulses, 1 / repetition rate (s).
        arrival_time: spread of the plume's arrival at the substrate (s).
    """

    def __init__(self, kinetics: SurfaceKinetics, pulse_interval: float, arrival_time: float):
        self.surface = MultilayerSurface(kinetics)
        self.pulse_interval = pulse_interval
        arrival = min(max(arrival_time, 1e-7), 0.5 * pulse_interval)
        slices = 4 if kinetics.diffusion_rate * arrival > 0.05 else 1
        self._arrival_steps = np.full(slices, arrival / slices)
        rest = pulse_interval - arrival
        self._recovery_steps = geometric_steps(rest, FIRST_STEP * rest, RECOVERY_STEPS)
        self.time = 0.0
        self.pulses = 0
        self.dose_landed = 0.0
        self._times: list[float] = [0.0]
        self._intensity: list[float] = [specular_intensity(self.surface)]
        self._recovery: list[float] = []
        self._roughness: list[float] = []

    def fire(self, dose: float) -> None:
        """Fire one pulse and follow the surface until the next one.

        Args:
            dose: unit cells per site the pulse brings to the substrate.
        """
        surface = self.surface
        waiting = surface.mobile_density()
        for dt in self._arrival_steps:
            surface.land(dose / self._arrival_steps.size, waiting)
            surface.relax(dt)
            self._advance(dt)
        after_pulse = float(surface.adatoms.sum())
        mobile = np.empty(self._recovery_steps.size)
        for idx, dt in enumerate(self._recovery_steps):
            surface.relax(dt)
            self._advance(dt)
            mobile[idx] = surface.adatoms.sum()
        self._recovery.append(self._time_constant(after_pulse, mobile))
        self._roughness.append(surface.roughness())
        self.pulses += 1
        self.dose_landed += dose

    def dwell(self, duration: float) -> None:
        """Record the surface with the laser off (recovery after the last pulse).

        Args:
            duration: time to wait (s).
        """
        if duration <= 0:
            return
        for dt in geometric_steps(duration, FIRST_STEP * duration, RECOVERY_STEPS):
            self.surface.relax(dt)
            self._advance(dt)

    def _advance(self, dt: float) -> None:
        self.time += dt
        self._times.append(self.time)
        self._intensity.append(specular_intensity(self.surface))

    def _time_constant(self, after: float, mobile: np.ndarray) -> float:
        """Time for the mobile units to fall to 1/e of their number after the pulse.

        If they do not within the pulse period, the mean decay rate over the
        period is extrapolated (capped at SLOWEST_RECOVERY).
        """
        ends = np.cumsum(self._recovery_steps)
        if after <= 0.0:
            return 0.0
        target = after / math.e
        below = np.nonzero(mobile <= target)[0]
        if below.size:
            idx = int(below[0])
            t_hi, m_hi = ends[idx], mobile[idx]
            t_lo, m_lo = (ends[idx - 1], mobile[idx - 1]) if idx else (0.0, after)
            if m_lo <= m_hi or m_hi <= 0.0:
                return float(t_hi)
            frac = math.log(m_lo / target) / math.log(m_lo / m_hi)
            return float(t_lo + frac * (t_hi - t_lo))
        if mobile[-1] <= 0.0 or after / mobile[-1] <= 1.0 + ends[-1] / SLOWEST_RECOVERY:
            return SLOWEST_RECOVERY
        return float(ends[-1] / math.log(after / mobile[-1]))

    # -- records -------------------------------------------------------
    def model_trace(self) -> tuple[np.ndarray, np.ndarray]:
        """Times (s) and noise-free specular intensity of every model state."""
        return np.asarray(self._times), np.asarray(self._intensity)

    def mean_roughness(self) -> float:
        """RMS roughness (unit cells) averaged over the pulses fired."""
        if not self._roughness:
            return 0.0
        return float(np.mean(self._roughness))

    def recovery_time(self) -> float:
        """Median time constant of the mobile-unit decay after a pulse (s)."""
        if not self._recovery:
            return 0.0
        return float(np.median(self._recovery))
