"""Laser ablation of the target and transport of the plume to the substrate.

Three relations, each from the PLD literature:

* Ablated depth per pulse above threshold follows the logarithmic
  (Beer-Lambert) law d = (1/alpha) ln(F / F_th) and is zero below F_th
  (Bauerle, *Laser Processing and Chemistry*, 4th ed., Springer 2011, ch. 13;
  the same law fits oxide targets, e.g. Dam et al., J. Appl. Phys. 83, 2732
  (1998) for YBCO).
* The ablated material leaves the target in a forward-peaked cos^n
  distribution, so the areal density on axis at distance d is
  N (n+1) / (2 pi d^2) (Anisimov et al., Phys. Rev. B 48, 12076 (1993)).
* In a background gas the plume is slowed by drag, v(x) = v0 - beta x, and
  stops at x_f = v0/beta (Geohegan, Appl. Phys. Lett. 60, 2732 (1992)); the
  stopping distance scales as (E/p)^(1/3) with pulse energy E and pressure p
  (Dyer, Issa & Key, Appl. Phys. Lett. 57, 186 (1990)). The share of the
  plume that reaches a substrate at distance d falls as 1/(1 + (d/x_f)^3),
  that is 1/(1 + p/p_c) with p_c the pressure at which x_f = d; material
  arriving after the plume has stopped is thermalised and its arrival is
  spread over the diffusion time through the gas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labweave.drivers.pld.materials import TargetProperties

#: Elementary charge (J/eV).
EV = 1.602176634e-19
#: Boltzmann constant (J/K).
KB = 1.380649e-23


@dataclass(frozen=True)
class ChamberGeometry:
    """The fixed geometry and optics of the chamber.

    Attributes:
        target_substrate_distance_mm: distance from target to substrate (mm).
        spot_area_mm2: laser spot area on the target (mm2).
        plume_exponent: n of the cos^n angular distribution of the plume.
        plume_energy_scale_ev: kinetic energy per species of the plume front
            per e-fold of fluence above threshold, KE0 = s ln(F/F_th) (eV).
        stopping_pressure_pa: pressure at which a 40 mJ plume stops exactly at
            the substrate (Pa); scales with pulse energy (x_f^3 ~ E/p).
        gas_temperature_k: temperature of the background gas (K).
    """

    target_substrate_distance_mm: float = 50.0
    spot_area_mm2: float = 2.0
    plume_exponent: float = 10.0
    plume_energy_scale_ev: float = 40.0
    stopping_pressure_pa: float = 12.0
    gas_temperature_k: float = 300.0


@dataclass(frozen=True)
class PulseDelivery:
    """What one laser pulse delivers to the substrate.

    Attributes:
        ablated_depth_nm: depth removed from the target per pulse (nm).
        dose_unit_cells: material reaching the substrate (unit cells per site).
        transfer_efficiency: share of the vacuum dose that arrives through the gas.
        arrival_energy_ev: mean kinetic energy of arriving species (eV).
        arrival_time_s: spread of the arrival of one pulse's material (s);
            the pulse dose over this time is the instantaneous flux.
    """

    ablated_depth_nm: float
    dose_unit_cells: float
    transfer_efficiency: float
    arrival_energy_ev: float
    arrival_time_s: float


def ablated_depth(fluence: float, target: TargetProperties) -> float:
    """Depth ablated per pulse by the logarithmic law (nm); zero below threshold.

    Args:
        fluence: laser fluence on the target (J/cm2).
        target: the target's properties.

    Returns:
        d = (1/alpha) ln(F/F_th) for F > F_th, else 0 (nm).
    """
    if fluence <= target.ablation_threshold:
        return 0.0
    return target.optical_penetration_nm * math.log(fluence / target.ablation_threshold)


def deliver_pulse(
    fluence: float, pressure: float, target: TargetProperties, geometry: ChamberGeometry, yield_factor: float = 1.0
) -> PulseDelivery:
    """Follow one pulse from the target to the substrate.

    Args:
        fluence: laser fluence on the target (J/cm2).
        pressure: background oxygen pressure (Pa).
        target: the target's properties.
        geometry: the chamber's geometry.
        yield_factor: ablation yield of the worn target relative to a fresh one.

    Returns:
        The dose, energy and arrival spread at the substrate.
    """
    depth = ablated_depth(fluence, target) * yield_factor
    distance_nm = geometry.target_substrate_distance_mm * 1e6
    spot_nm2 = geometry.spot_area_mm2 * 1e12
    # Formula units ablated (one per a^3), spread as cos^n: on-axis areal
    # density N (n+1) / (2 pi d^2); one unit cell covers a^2 of the substrate.
    a = target.lattice_nm
    units = depth * spot_nm2 / a**3
    vacuum_dose = units * (geometry.plume_exponent + 1) / (2 * math.pi * distance_nm**2) * a**2

    pulse_energy_mj = fluence * geometry.spot_area_mm2 * 1e-2 * 1e3  # J/cm2 * cm2 -> mJ
    p_stop = geometry.stopping_pressure_pa * max(pulse_energy_mj, 1e-6) / 40.0
    efficiency = 1.0 / (1.0 + pressure / p_stop)
    dose = vacuum_dose * efficiency

    distance_m = geometry.target_substrate_distance_mm * 1e-3
    thermal_ev = 1.5 * KB * geometry.gas_temperature_k / EV
    if depth <= 0:
        return PulseDelivery(0.0, 0.0, efficiency, 0.0, 0.0)
    ke0 = geometry.plume_energy_scale_ev * math.log(fluence / target.ablation_threshold)
    v0 = math.sqrt(2 * ke0 * EV / target.species_mass_kg)
    # Drag model: x_f = v0/beta = d (p_stop/p)^(1/3).
    stop_distance = distance_m * (p_stop / max(pressure, 1e-12)) ** (1.0 / 3.0)
    beta = v0 / stop_distance
    if stop_distance > distance_m:
        v_arrival = v0 - beta * distance_m
        arrival_ev = max(0.5 * target.species_mass_kg * v_arrival**2 / EV, thermal_ev)
        # Time of flight x = (v0/beta)(1 - exp(-beta t)); the arrival spread is
        # of the order of the time of flight itself.
        arrival_time = math.log(v0 / max(v_arrival, 1e-9)) / beta
    else:
        arrival_ev = thermal_ev
        # Beyond x_f the material diffuses through the gas: D_gas ~ lambda v_th / 3
        # with lambda = kT / (sqrt(2) pi d_c^2 p), d_c ~ 0.35 nm.
        v_th = math.sqrt(8 * KB * geometry.gas_temperature_k / (math.pi * target.species_mass_kg))
        mean_free_path = KB * geometry.gas_temperature_k / (math.sqrt(2) * math.pi * (0.35e-9) ** 2 * pressure)
        d_gas = mean_free_path * v_th / 3.0
        remaining = distance_m - stop_distance
        arrival_time = stop_distance / v0 + remaining**2 / (2 * d_gas)
    return PulseDelivery(
        ablated_depth_nm=depth,
        dose_unit_cells=dose,
        transfer_efficiency=efficiency,
        arrival_energy_ev=arrival_ev,
        arrival_time_s=min(arrival_time, 5e-3),
    )
