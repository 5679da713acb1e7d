"""Simulated PLD chamber: heater, gas inlet, laser, target carousel and RHEED.

State that carries over between growths, as in a real chamber:

* the heater and the gas inlet start where the last growth left them and
  ramp to the new set points (the ramp advances the chamber's clock);
* every target remembers the pulses it has taken: repeated ablation of the
  same track roughens it into cones and lowers the ablation yield, down to
  ~75 % of a fresh target (Foltyn et al., Appl. Phys. Lett. 59, 594 (1991)),
  until it is polished;
* the laser entrance window is coated by the plume, losing transmission with
  the chamber's total pulse count until cleaned;
* the laser's pulse energy fluctuates from pulse to pulse (3 % rms) and the
  substrate's real temperature differs from the heater set point by a few
  kelvin from one mounting to the next.

All randomness comes from one seeded :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from dataclasses import dataclass
from typing import Self

import numpy as np

from labweave.drivers.base import BackendContext, BackendSettings, InstrumentFault, InstrumentStopped, PhysicalLimit
from labweave.drivers.pld import rheed
from labweave.drivers.pld.analysis import classify_growth
from labweave.drivers.pld.backend import PldBackend
from labweave.drivers.pld.deposition import PulsedDeposition
from labweave.drivers.pld.materials import TARGETS, TargetProperties, lattice_mismatch
from labweave.drivers.pld.plume import ChamberGeometry, deliver_pulse
from labweave.schemas.thin_film import GrowthRecipe, GrowthResult, RheedTrace, TargetMaterial

log = logging.getLogger(__name__)

#: Heater ramp rate (K/s) and pressure settling time (s).
HEATER_RAMP = 0.5
PRESSURE_SETTLE = 60.0
#: The heater's set point at rest (K), the chamber's base pressure (Pa) and the time constant of
#: pumping down to it once the gas inlet is closed (s).
AMBIENT = 300.0
BASE_PRESSURE = 1e-5
PUMP_DOWN = 30.0
#: Pulse-to-pulse energy jitter of the excimer laser (relative rms).
PULSE_JITTER = 0.03
#: Pulses of the same track after which the yield has lost 1 - 1/e of its drop.
TARGET_WEAR_PULSES = 30_000.0
TARGET_WEAR_DEPTH = 0.25
#: Chamber pulses after which the window has lost 1 - 1/e of its drop.
WINDOW_COATING_PULSES = 200_000.0
WINDOW_COATING_DEPTH = 0.15
#: Spread of the real substrate temperature around the set point (K).
MOUNTING_SPREAD = 3.0
#: RHEED recorded after the last pulse (s, at most).
FINAL_DWELL = 10.0
#: What the simulated chamber's hardware is rated for, narrower than the recipe's bounds (which are
#: those of any chamber of the lab): its substrate heater, the laser's fluence on the target, the
#: oxygen inlet's mass-flow controller.
CHAMBER_LIMITS = (
    PhysicalLimit("substrate_temperature", "the substrate heater", high="1000 degC"),
    PhysicalLimit("laser_fluence", "the excimer laser on the target", high="45 mJ / mm ** 2"),
    PhysicalLimit("oxygen_pressure", "the oxygen inlet", high="0.6 mbar"),
)


@dataclass
class _Growth:
    """One growth under way."""

    recipe: GrowthRecipe
    target: TargetProperties
    deposition: PulsedDeposition
    rng: np.random.Generator
    arrival_energy: float
    fired: int = 0


class SimulatedPldBackend(PldBackend):
    """A seeded, stateful model of a PLD chamber (registered as ``pld.simulated``; no options).

    The chamber's state: the laser (on from ``prepare`` to ``finish``), the oxygen inlet's valves,
    the heater's set point and temperature (ramping at :data:`HEATER_RAMP`), the chamber pressure,
    the wear of targets and window, and a clock of chamber time (:meth:`elapse` lets it run idle).

    Args:
        seed: seed of the chamber's random generator.
        targets: targets mounted on the carousel.
        geometry: the chamber's geometry and optics.
    """

    def __init__(
        self,
        seed: int = 0,
        targets: tuple[TargetMaterial, ...] = tuple(TargetMaterial),
        geometry: ChamberGeometry | None = None,
    ):
        self.rng = np.random.default_rng(seed)
        self.geometry = geometry or ChamberGeometry()
        self._targets = tuple(targets)
        self.target_pulses: dict[TargetMaterial, int] = {t: 0 for t in self._targets}
        self.window_pulses = 0
        self.heater_temperature = AMBIENT
        self.heater_setpoint = AMBIENT
        self.chamber_pressure = BASE_PRESSURE
        self.laser_on = False
        self.gas_valves_open = False
        self.clock = 0.0
        self.selected_target: TargetMaterial | None = None
        self._interlock = threading.Event()
        self._growth: _Growth | None = None

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        return cls(seed=context.seed)

    # -- chamber state -------------------------------------------------
    def installed_targets(self) -> tuple[TargetMaterial, ...]:
        return self._targets

    def target_yield(self, target: TargetMaterial) -> float:
        """Ablation yield of a target's worn track relative to a fresh one."""
        worn = 1.0 - math.exp(-self.target_pulses[target] / TARGET_WEAR_PULSES)
        return 1.0 - TARGET_WEAR_DEPTH * worn

    def window_transmission(self) -> float:
        """Transmission of the coated laser window relative to a clean one."""
        return 1.0 - WINDOW_COATING_DEPTH * (1.0 - math.exp(-self.window_pulses / WINDOW_COATING_PULSES))

    def polish_target(self, target: TargetMaterial) -> None:
        """Resurface a target: its ablation yield is that of a fresh one again."""
        self.target_pulses[target] = 0

    def clean_window(self) -> None:
        """Clean the laser entrance window."""
        self.window_pulses = 0

    # -- Backend -------------------------------------------------------
    def physical_limits(self, method: str) -> tuple[PhysicalLimit, ...]:
        return CHAMBER_LIMITS

    async def setup(self) -> None:
        self._interlock.clear()
        log.info("simulated PLD chamber ready, targets %s", [t.value for t in self._targets])

    safe_state = ("laser off (shutter closed, no further pulse), substrate heater ramping down to ambient, "
                  "oxygen inlet valves closed")

    async def stop(self) -> None:
        """Laser off, heater set to ambient (it ramps down), gas valves closed; a growth stops before its next pulse."""
        self._interlock.set()
        self.laser_on = False
        self.gas_valves_open = False
        self.heater_setpoint = AMBIENT
        log.warning("PLD chamber: laser off, heater ramping down from %.0f K, gas valves closed (safe stop)",
                    self.heater_temperature)

    def in_safe_state(self) -> bool:
        return not self.laser_on and not self.gas_valves_open and self.heater_setpoint == AMBIENT

    def elapse(self, seconds: float) -> None:
        """Let chamber time pass with nothing fired: the heater ramps toward its set point, and a
        chamber with its gas inlet closed pumps down toward its base pressure."""
        self.clock += seconds
        step = HEATER_RAMP * seconds
        gap = self.heater_setpoint - self.heater_temperature
        self.heater_temperature += max(-step, min(step, gap))
        if not self.gas_valves_open:
            excess = self.chamber_pressure - BASE_PRESSURE
            self.chamber_pressure = BASE_PRESSURE + excess * math.exp(-seconds / PUMP_DOWN)

    # -- PldBackend ----------------------------------------------------
    async def prepare(self, recipe: GrowthRecipe) -> None:
        if recipe.target not in self._targets:
            raise InstrumentFault(f"target {recipe.target.value} is not on the carousel", retryable=False)
        self._interlock.clear()
        ramp = abs(recipe.substrate_temperature - self.heater_temperature) / HEATER_RAMP
        settle = PRESSURE_SETTLE if not math.isclose(recipe.oxygen_pressure, self.chamber_pressure) else 0.0
        self.clock += max(ramp, settle)
        self.heater_setpoint = self.heater_temperature = recipe.substrate_temperature
        self.gas_valves_open = True
        self.chamber_pressure = recipe.oxygen_pressure
        self.selected_target = recipe.target
        self.laser_on = True

        rng = np.random.default_rng(self.rng.integers(2**63))
        target = TARGETS[recipe.target]
        surface_temperature = recipe.substrate_temperature + rng.normal(0.0, MOUNTING_SPREAD)
        kinetics = target.surface_kinetics(surface_temperature, recipe.substrate_miscut_deg)
        nominal = deliver_pulse(recipe.laser_fluence, recipe.oxygen_pressure, target, self.geometry)
        deposition = PulsedDeposition(kinetics, 1.0 / recipe.repetition_rate, nominal.arrival_time_s)
        self._growth = _Growth(recipe, target, deposition, rng, nominal.arrival_energy_ev)
        log.info(
            "PLD chamber at %.0f K, %.3g Pa, target %s; D = %.3g /s, dose %.4f uc/pulse",
            recipe.substrate_temperature,
            recipe.oxygen_pressure,
            recipe.target.value,
            kinetics.diffusion_rate,
            nominal.dose_unit_cells,
        )

    async def fire(self, pulses: int) -> int:
        growth = self._current()
        await asyncio.to_thread(self._fire_pulses, growth, pulses)
        return growth.fired

    def _fire_pulses(self, growth: _Growth, pulses: int) -> None:
        recipe = growth.recipe
        jitter = growth.rng.normal(0.0, PULSE_JITTER, pulses)
        for k in range(pulses):
            if self._interlock.is_set() or not self.laser_on:
                raise InstrumentStopped(f"laser stopped after {growth.fired} of {recipe.pulses} pulses")
            fluence = recipe.laser_fluence * self.window_transmission() * (1.0 + jitter[k])
            pulse = deliver_pulse(
                fluence, recipe.oxygen_pressure, growth.target, self.geometry, self.target_yield(recipe.target)
            )
            growth.deposition.fire(pulse.dose_unit_cells)
            growth.fired += 1
            self.target_pulses[recipe.target] += 1
            self.window_pulses += 1
            self.clock += 1.0 / recipe.repetition_rate

    async def finish(self) -> GrowthResult:
        growth = self._current()
        result = await asyncio.to_thread(self._report, growth)
        self._growth = None
        self.laser_on = False  # to standby; heater and gas stay as the recipe set them for the next growth
        return result

    def _report(self, growth: _Growth) -> GrowthResult:
        recipe, deposition = growth.recipe, growth.deposition
        dwell = min(FINAL_DWELL, 3.0 / recipe.repetition_rate)
        deposition.dwell(dwell)
        self.clock += dwell
        model_time, model_intensity = deposition.model_trace()
        rate = rheed.frame_rate(float(model_time[-1]))
        times, intensity = rheed.record(model_time, model_intensity, rate, growth.rng)
        oscillations = rheed.count_oscillations(times, intensity, deposition.pulse_interval)

        surface = deposition.surface
        a_nm = growth.target.lattice_nm
        thickness = surface.thickness()
        step_share = min(max(surface.step_flow / thickness, 0.0), 1.0) if thickness > 0 else 0.0
        mode = classify_growth(step_share, deposition.mean_roughness())
        islands_per_um2 = surface.layer_island_density(1) / (a_nm * 1e-3) ** 2
        log.info(
            "PLD growth done: %.2f uc in %d pulses, %s, %d oscillations",
            thickness,
            growth.fired,
            mode.value,
            oscillations,
        )
        return GrowthResult(
            rheed=RheedTrace(time=times.tolist(), intensity=intensity.tolist(), sample_rate=rate),
            growth_rate=thickness / growth.fired if growth.fired else 0.0,
            thickness_nm=thickness * a_nm,
            thickness_unit_cells=thickness,
            rms_roughness_nm=surface.roughness() * a_nm,
            growth_mode=mode,
            rheed_oscillations=oscillations,
            step_flow_fraction=step_share,
            island_density_per_um2=islands_per_um2,
            rheed_recovery_time=deposition.recovery_time(),
            arrival_kinetic_energy=growth.arrival_energy,
            lattice_mismatch_percent=100.0 * lattice_mismatch(recipe.target, recipe.substrate),
            growth_time=float(model_time[-1]),
            pulses_fired=growth.fired,
        )

    def _current(self) -> _Growth:
        if self._growth is None:
            raise InstrumentFault("no growth prepared: call prepare() first", retryable=False)
        return self._growth
