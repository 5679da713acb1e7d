"""RHEED: the specular intensity of a surface, the camera, and oscillation counting.

Specular intensity in the kinematic approximation at the out-of-phase
(anti-Bragg) condition, where neighbouring levels scatter in antiphase:
I = |sum_j e_j (-1)^j|^2, with e_j the exposed share of level j (Cohen,
Petrich, Pukite, Whaley & Arrott, Surf. Sci. 216, 222 (1989)). Step edges
and disordered mobile units scatter diffusely and take intensity from the
specular beam (the step-density picture of Neave, Joyce, Dobson & Norton,
Appl. Phys. A 31, 1 (1983)); this is written as exp(-b_s L - b_a n_a) with L
the edge length per site and n_a the mobile units per site. A smooth surface
gives 1; a half-filled layer gives ~0; a surface exposing many levels
(3D growth) gives ~0 for good.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks, lfilter

from labweave.drivers.pld.growth import MultilayerSurface

#: Diffuse-scattering weight of step edges (per edge site per site).
STEP_ATTENUATION = 2.0
#: Diffuse-scattering weight of mobile units (per unit per site).
ADATOM_ATTENUATION = 4.0
#: An oscillation is clear when its maximum stands this far (in units of the
#: bare-substrate intensity) above the minima on both sides.
OSCILLATION_PROMINENCE = 0.08
#: Fastest camera frame rate (Hz) and most frames kept per growth.
MAX_FRAME_RATE = 25.0
MAX_FRAMES = 4000


def specular_intensity(surface: MultilayerSurface) -> float:
    """Specular RHEED intensity of a surface, relative to a smooth one.

    Args:
        surface: the growing surface.

    Returns:
        The intensity, between 0 and 1.
    """
    e = surface.exposed()
    # Levels j and j+1 scatter in antiphase: sum_j e_j (-1)^j (the sign of the
    # merged base layers cancels in the square).
    amplitude = float(e[0::2].sum() - e[1::2].sum())
    diffuse = STEP_ATTENUATION * float(surface.edge_density().sum()) + ADATOM_ATTENUATION * float(surface.adatoms.sum())
    return amplitude * amplitude * float(np.exp(-diffuse))


def frame_rate(duration: float) -> float:
    """Camera frame rate for a recording of this duration (Hz).

    Args:
        duration: recording time (s).

    Returns:
        Video rate, lowered so that a long growth keeps at most MAX_FRAMES frames.
    """
    return min(MAX_FRAME_RATE, MAX_FRAMES / max(duration, 1e-9))


def record(
    model_time: np.ndarray, model_intensity: np.ndarray, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the model intensity as the RHEED camera would, with seeded noise.

    Two noise sources: a slow multiplicative drift of the electron-gun
    emission (AR(1), 2 % rms, correlation time 30 s) and the camera's
    additive read noise (1 % of the substrate intensity).

    Args:
        model_time: times of the model states (s), increasing.
        model_intensity: intensity at those times.
        rate: frame rate (Hz).
        rng: the backend's random generator.

    Returns:
        Frame times and recorded intensities.
    """
    duration = float(model_time[-1])
    frames = max(int(duration * rate) + 1, 2)
    times = np.linspace(0.0, duration, frames)
    clean = np.interp(times, model_time, model_intensity)
    step = times[1] - times[0]
    keep = np.exp(-step / 30.0)
    kicks = rng.normal(0.0, 0.02 * np.sqrt(1.0 - keep**2), frames)
    kicks[0] = rng.normal(0.0, 0.02)
    drift = lfilter([1.0], [1.0, -keep], kicks)
    noisy = clean * (1.0 + drift) + rng.normal(0.0, 0.01, frames)
    return times, noisy


def count_oscillations(times: np.ndarray, intensity: np.ndarray, pulse_interval: float) -> int:
    """Count clear RHEED oscillations in a recorded trace.

    Criterion: the trace is smoothed with a moving average over one pulse
    interval (at least three frames), which removes the dip and recovery of
    each pulse but keeps the layer period (many pulses per layer); every
    interior maximum of the smoothed trace whose prominence is at least
    OSCILLATION_PROMINENCE (8 % of the substrate intensity: four times the
    2 % rms drift of the electron gun, eight times the camera noise) closes
    one oscillation.

    Args:
        times: frame times (s).
        intensity: recorded intensity.
        pulse_interval: time between pulses (s).

    Returns:
        The number of clear oscillations.
    """
    if times.size < 5:
        return 0
    step = times[1] - times[0]
    window = max(3, int(round(pulse_interval / step)))
    if window >= times.size // 2:
        return 0
    kernel = np.ones(window) / window
    smooth = np.convolve(intensity, kernel, mode="valid")
    peaks, _ = find_peaks(smooth, prominence=OSCILLATION_PROMINENCE)
    return int(peaks.size)
