"""Kinetic model of pulsed-laser epitaxy: a multilayer rate-equation surface.

The surface is described level by level (Cohen et al., Surf. Sci. 216, 222
(1989); the multilayer rate-equation picture of Tersoff, Denier van der Gon &
Tromp, Phys. Rev. Lett. 72, 266 (1994) for interlayer transport):

* ``theta[k]`` is the coverage of layer k (the share of the surface at least
  k unit cells high; ``theta[0] = 1``); level j is exposed on
  ``e_j = theta[j] - theta[j+1]``.
* ``islands[k]`` is the density of islands of layer k (per surface site).
* ``adatoms[j]`` is the amount of mobile growth units on level j (unit cells
  per surface site).
* ``step_flow`` is the material incorporated at the substrate's vicinal steps.

Each laser pulse lands its dose on every exposed level, spread over the
arrival time of the plume (so the instantaneous flux is dose/arrival time,
orders of magnitude above the mean flux). Growth units landing on a mobile
unit form a nucleus at once (direct impingement). Between and during pulses
the mobile units on level j, with the surface diffusion rate
D = nu exp(-E_d / kT) (Arrhenius), are lost by four parallel channels, all
proportional to D:

* attachment to the ascending edges of layer j+1 islands and to the
  descending edges of layer j (over an additional Ehrlich-Schwoebel barrier,
  transmission p = exp(-E_ES/kT)); the edge length per site of layer k is
  L_k = 2 sqrt(pi N_k theta_k (1 - theta_k)), exact for isolated discs
  (theta -> 0) and for isolated holes (theta -> 1). The capture rate per unit
  follows the mean exit time of a disc with a partially absorbing rim,
  tau = R^2/(8D) + R/(2 p D) (a Robin boundary), written for a region of
  half-width w = e_j / (edge length);
* incorporation at the substrate steps of a vicinal surface with terrace
  width W, rate 12 D / W^2 (mean first-passage time W^2/(12 D) to either
  step of a terrace, Burton, Cabrera & Frank, Phil. Trans. R. Soc. A 243,
  299 (1951));
* nucleation of new islands of layer j+1 at the rate sigma_i C_i D m^(i+1)
  exp(E_i/kT) per site, with m the mobile-unit density and i the critical
  nucleus (Walton's relation; Venables, Phil. Mag. 27, 697 (1973)). With a
  steady flux F this gives Venables' island density N ~ (D/F)^(-i/(i+2)); in
  pulsed deposition the nucleation burst after each pulse is set by the
  instantaneous dose, not the mean flux (Hinnemann, Hinrichsen & Wolf, Phys.
  Rev. Lett. 87, 135701 (2001)).

Because all channels scale with D, the competition between them is set by
the mobile-unit density, the island geometry, p and W. The decay of the
mobile units after a pulse is the RHEED recovery (Koster et al., Appl. Phys.
Lett. 74, 3729 (1999)); its time constant grows as exp(E_d/kT). A pulse that
arrives before the surface has recovered finds mobile units still there:
their density builds up, nucleation (which grows as m^(i+1)) wins over edge
attachment, islands nucleate on top of islands and the surface roughens.
When the diffusion length exceeds the terrace width the substrate steps
take up the material and the film grows by step flow.

Each step is integrated semi-implicitly (the loss rate taken at the start of
the step, the unit balance implicit), so the scheme is positive, conserves
material exactly, and is stable for any step; the time grid is geometric
after each pulse to follow the fast recovery and the slow tail alike.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: Boltzmann constant (eV/K).
KB_EV = 8.617333262e-5
#: Levels added whenever the top of the window fills.
LEVEL_CHUNK = 16
#: A layer this close to complete is merged into the substrate below.
COMPLETE = 1.0 - 1e-9


@dataclass(frozen=True)
class SurfaceKinetics:
    """Rates of the surface processes at one temperature.

    Attributes:
        diffusion_rate: surface hop rate D = nu exp(-E_d/kT) (1/s).
        descent_probability: transmission over a descending step edge,
            p = exp(-E_ES/kT).
        nucleation_prefactor: sigma_i C_i exp(E_i/kT) of the nucleation rate.
        critical_nucleus: size i of the critical nucleus.
        terrace_width: width of the substrate terraces (surface sites).
    """

    diffusion_rate: float
    descent_probability: float
    nucleation_prefactor: float
    critical_nucleus: int
    terrace_width: float

    @classmethod
    def at(
        cls,
        temperature: float,
        diffusion_barrier_ev: float,
        attempt_frequency: float,
        schwoebel_barrier_ev: float,
        critical_nucleus: int,
        nucleus_binding_ev: float,
        nucleation_prefactor: float,
        lattice_nm: float,
        miscut_deg: float,
    ) -> SurfaceKinetics:
        """Kinetics of a film material at a substrate temperature.

        Args:
            temperature: substrate temperature (K).
            diffusion_barrier_ev: E_d (eV).
            attempt_frequency: nu (1/s).
            schwoebel_barrier_ev: E_ES (eV).
            critical_nucleus: i.
            nucleus_binding_ev: E_i (eV).
            nucleation_prefactor: sigma_i C_i.
            lattice_nm: in-plane lattice parameter and step height (nm).
            miscut_deg: vicinal miscut of the substrate (deg); terrace width
                W = a / tan(miscut).

        Returns:
            The rates, with W in surface sites.
        """
        kt = KB_EV * temperature
        terrace_nm = lattice_nm / math.tan(math.radians(miscut_deg))
        return cls(
            diffusion_rate=attempt_frequency * math.exp(-diffusion_barrier_ev / kt),
            descent_probability=math.exp(-schwoebel_barrier_ev / kt),
            nucleation_prefactor=nucleation_prefactor * math.exp(nucleus_binding_ev / kt),
            critical_nucleus=critical_nucleus,
            terrace_width=terrace_nm / lattice_nm,
        )


class MultilayerSurface:
    """The growing surface: layer coverages, island densities, mobile units.

    Args:
        kinetics: the surface rates.
        levels: levels held at first; the window grows as needed.
    """

    def __init__(self, kinetics: SurfaceKinetics, levels: int = 32):
        self.kinetics = kinetics
        self.theta = np.zeros(levels + 1)
        self.theta[0] = 1.0
        self.islands = np.zeros(levels + 1)
        self.adatoms = np.zeros(levels)
        #: Complete layers merged out of the window.
        self.base = 0
        #: Material incorporated at substrate steps (unit cells).
        self.step_flow = 0.0
        #: Island density of the first grown layer (per site), kept once merged.
        self.first_layer_islands = 0.0
        self._step_sink = 12.0 / kinetics.terrace_width**2

    # -- observables ---------------------------------------------------
    def exposed(self) -> np.ndarray:
        """Exposed share e_j of each level in the window."""
        return self.theta[:-1] - self.theta[1:]

    def edge_density(self) -> np.ndarray:
        """Edge length per site L_k of each layer k in the window (L_0 = 0)."""
        th = self.theta
        edges = 2.0 * np.sqrt(np.pi * self.islands * np.maximum(th * (1.0 - th), 0.0))
        edges[0] = 0.0
        return edges

    def thickness(self) -> float:
        """Mean film thickness (unit cells), mobile units included."""
        return self.base + float(self.theta[1:].sum()) + self.step_flow + float(self.adatoms.sum())

    def roughness(self) -> float:
        """RMS height of the surface (unit cells); mobile units sit one level up."""
        e = self.exposed()
        levels = np.arange(e.size, dtype=float)
        settled = np.clip(e - self.adatoms, 0.0, None)
        weights = np.concatenate([settled, self.adatoms])
        heights = np.concatenate([levels, levels + 1.0])
        total = weights.sum()
        mean = (weights * heights).sum() / total
        return float(math.sqrt(max((weights * (heights - mean) ** 2).sum() / total, 0.0)))

    def layer_island_density(self, layer: int) -> float:
        """Island density of an absolute layer (per site); 0 if not in the window."""
        k = layer - self.base
        if layer == 1 and k < 1:
            return self.first_layer_islands
        if 1 <= k < self.islands.size:
            return float(self.islands[k])
        return 0.0

    # -- dynamics ------------------------------------------------------
    def mobile_density(self) -> np.ndarray:
        """Density of mobile units on each level's exposed area (per site, at most 1)."""
        return np.minimum(self.adatoms / np.maximum(self.exposed(), 1e-12), 1.0)

    def land(self, dose: float, waiting: np.ndarray) -> None:
        """Land a dose on every exposed level; a unit landing on a waiting unit pins it.

        A unit that lands on top of a mobile unit left over from earlier
        pulses (``waiting``) sits one level higher and pins the unit below,
        which becomes a one-unit island (direct impingement; with no
        diffusion at all this stacks units at random, Poisson growth). The
        units of one pulse land within microseconds and meet by diffusion,
        which the nucleation term follows.

        Args:
            dose: unit cells per site landing now (at most 0.5 per call).
            waiting: density per level of units left from earlier pulses.
        """
        e = self.exposed()
        landed = dose * e
        hits = np.minimum(landed * waiting[: e.size], self.adatoms)
        self.theta[1:] += hits
        self.islands[1:] += hits
        self.adatoms += landed - 2.0 * hits
        self.adatoms[1:] += hits[:-1]
        self._tidy()

    def relax(self, dt: float) -> None:
        """Advance the mobile units by dt (s): edge capture, step flow, nucleation.

        Args:
            dt: time step (s).
        """
        k = self.kinetics
        e = self.exposed()
        e_safe = np.maximum(e, 1e-12)
        edges = self.edge_density()
        up = edges[1:]
        down = edges[:-1]
        half_width = np.minimum(e_safe / (up + down + 1e-12), 0.5 * k.terrace_width)
        p = k.descent_probability
        rate_up = 2.0 * up / (half_width * e_safe)
        rate_down = 2.0 * down * p / (1.0 + p * half_width) / e_safe
        density = np.minimum(self.adatoms / e_safe, 1.0)
        rate_nuc = (k.critical_nucleus + 1) * k.nucleation_prefactor * density**k.critical_nucleus
        rate_total = rate_up + rate_down + rate_nuc + self._step_sink
        remaining = self.adatoms / (1.0 + k.diffusion_rate * rate_total * dt)
        consumed = self.adatoms - remaining
        share = consumed / rate_total
        to_up = share * rate_up
        to_down = share * rate_down
        to_nuc = share * rate_nuc
        self.adatoms = remaining
        self.theta[1:] += to_up + to_nuc
        self.theta[1:-1] += to_down[1:]
        self.islands[1:] += to_nuc / (k.critical_nucleus + 1)
        self.step_flow += float((share * self._step_sink).sum())
        self._tidy()

    def _tidy(self) -> None:
        """Keep coverages ordered and within [0, 1], merge complete layers, grow the window."""
        th = self.theta
        if th[1] > 1.0 or (th[2:] > th[1:-1]).any():
            upper = np.sort(th[1:])[::-1]
            spill = 0.0
            for idx in range(upper.size):
                upper[idx] += spill
                spill = max(upper[idx] - 1.0, 0.0)
                upper[idx] -= spill
            th[1:] = upper
        while th[1] >= COMPLETE:
            if self.base == 0:
                self.first_layer_islands = float(self.islands[1])
            self.base += 1
            self.adatoms[1] += self.adatoms[0]
            self.step_flow += th[1] - 1.0
            self.theta = np.concatenate([[1.0], th[2:], [0.0]])
            self.islands = np.concatenate([[0.0], self.islands[2:], [0.0]])
            self.adatoms = np.concatenate([self.adatoms[1:], [0.0]])
            th = self.theta
        if th[-2] > 1e-7 or self.adatoms[-1] > 1e-9:
            self.theta = np.concatenate([th, np.zeros(LEVEL_CHUNK)])
            self.islands = np.concatenate([self.islands, np.zeros(LEVEL_CHUNK)])
            self.adatoms = np.concatenate([self.adatoms, np.zeros(LEVEL_CHUNK)])
