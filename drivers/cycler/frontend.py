"""The cycler frontend: ``capacity``/``cycling`` with the channel's limits and policy.

The frontend checks a request against the cycler's limits (the bounds on
:class:`~labweave.schemas.battery.CapacityCyclingInput` plus the cross-field
rules of :meth:`Cycler.validate`), turns C-rates into currents with the
requested capacity (or, if none is given, the cell's nominal capacity), fills
in the defaults of the BIG-MAP standard protocol as labweave reads it
(three formation cycles at C/10 between 2.5 and 4.2 V with a CV hold to
C/20, then 1C/1C cycles with a CV hold to C/20), runs the backend and turns
its measurements into the FINALES2 result.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel

from labweave.drivers.base import Instrument, Operation, ParameterError, Progress
from labweave.drivers.cycler.analysis import cycling_output
from labweave.drivers.cycler.backend import CyclerBackend, CyclingProtocol
from labweave.drivers.cycler.unicycler import read_protocol, schedule_fields
from labweave.schemas.battery import CapacityCyclingInput, CapacityCyclingOutput, CellInfo

log = logging.getLogger(__name__)

#: Defaults of the BIG-MAP standard protocol (labweave's reading).
STANDARD = {
    "V_max": 4.2,
    "V_min": 2.5,
    "c_rate_charge_formation": 0.1,
    "c_rate_discharge_formation": 0.1,
    "cv_cutoff_c_rate": 0.05,
    "repetions_formation_cycle": 3,
    "c_rate_charge": 1.0,
    "c_rate_discharge": 1.0,
}
#: Narrowest voltage window a cycle may use, V.
MIN_WINDOW = 0.5
#: Largest current of a channel, A.
CHANNEL_MAX_CURRENT = 5.0

CYCLING = Operation("capacity", "cycling", CapacityCyclingInput, CapacityCyclingOutput, run="cycle")


def _or(value, default):
    return default if value is None else value


def protocol_from(params: CapacityCyclingInput, capacity_ah: float) -> CyclingProtocol:
    """The schedule of a request, currents from C-rates times ``capacity_ah``.

    Raises:
        ParameterError: a current above ``I_max`` (naming the C-rate field).
    """
    v_max = _or(params.V_max, STANDARD["V_max"])
    v_min = _or(params.V_min, STANDARD["V_min"])
    cutoff = STANDARD["cv_cutoff_c_rate"] * capacity_ah
    rates = {
        "c_rate_charge_formation": _or(params.c_rate_charge_formation, STANDARD["c_rate_charge_formation"]),
        "c_rate_discharge_formation": _or(params.c_rate_discharge_formation, STANDARD["c_rate_discharge_formation"]),
        "c_rate_charge": _or(params.c_rate_charge, STANDARD["c_rate_charge"]),
        "c_rate_discharge": _or(params.c_rate_discharge, STANDARD["c_rate_discharge"]),
    }
    i_max = _or(params.I_max, CHANNEL_MAX_CURRENT)
    for field, rate in rates.items():
        current = rate * capacity_ah
        if current > i_max * (1 + 1e-9):
            raise ParameterError(
                field,
                f"{rate} C of {capacity_ah * 1e3:.4g} mAh is {current * 1e3:.4g} mA, above I_max {i_max * 1e3:.4g} mA",
            )
    return CyclingProtocol(
        capacity_ah=capacity_ah,
        formation_cycles=_or(params.repetions_formation_cycle, STANDARD["repetions_formation_cycle"]),
        number_cycles=params.number_cycles,
        formation_charge_a=rates["c_rate_charge_formation"] * capacity_ah,
        formation_discharge_a=rates["c_rate_discharge_formation"] * capacity_ah,
        formation_cv_cutoff_a=_or(params.CV_I_cutoff_formation, cutoff),
        charge_a=rates["c_rate_charge"] * capacity_ah,
        discharge_a=rates["c_rate_discharge"] * capacity_ah,
        cv_cutoff_a=_or(params.CV_I_cutoff, cutoff),
        formation_v_max=v_max,
        formation_v_min=v_min,
        v_max=_or(params.cycling_V_max, v_max),
        v_min=_or(params.cycling_V_min, v_min),
    )


class Cycler(Instrument):
    """A battery cycler offering ``capacity``/``cycling``.

    Args:
        backend: the channel group (e.g. :class:`~.sim.SimulatedCyclerBackend`).
    """

    name = "cycler"
    backend_type = CyclerBackend
    operations = (CYCLING,)

    def __init__(self, backend: CyclerBackend):
        super().__init__(backend)
        self.backend: CyclerBackend = backend

    def validate(self, quantity: str, method: str, parameters: dict) -> BaseModel:
        """Check the request against the channel's limits before anything runs.

        Beyond the per-field bounds: the cycling window lies inside
        ``V_min``..``V_max`` and is at least 0.5 V wide, and (when the
        capacity is given) no current exceeds ``I_max``.

        A request carrying an aurora-unicycler ``protocol`` is checked as the fields its steps set
        (:func:`~.unicycler.schedule_fields`); a refusal then names the step.

        Raises:
            ParameterError: naming the first offending field (or protocol step).
        """
        if parameters.get("protocol") is None:
            return self._validate_fields(quantity, method, parameters)
        protocol = read_protocol(parameters["protocol"])
        capacity = parameters.get("capacity")
        fields, sources = schedule_fields(protocol, capacity if isinstance(capacity, (int, float)) else None)
        requested = parameters.get("number_cycles")
        if requested is not None and requested != fields["number_cycles"]:
            raise ParameterError("number_cycles", f"the protocol runs {fields['number_cycles']} cycles after "
                                 f"formation, the request asks for {requested}")
        merged = {k: v for k, v in parameters.items() if k != "protocol"} | fields
        try:
            params = self._validate_fields(quantity, method, merged)
        except ParameterError as exc:
            field = exc.field.split(".")[0]
            if field not in sources:
                raise
            step = protocol.method[sources[field]]
            raise ParameterError(f"protocol.method[{sources[field]}]",
                                 f"({step.step}) {exc}") from None
        return params.model_copy(update={"protocol": parameters["protocol"]})

    def _validate_fields(self, quantity: str, method: str, parameters: dict) -> BaseModel:
        params = super().validate(quantity, method, parameters)
        assert isinstance(params, CapacityCyclingInput)
        v_max = _or(params.V_max, STANDARD["V_max"])
        v_min = _or(params.V_min, STANDARD["V_min"])
        if v_max - v_min < MIN_WINDOW:
            raise ParameterError("V_max", f"window {v_min}-{v_max} V is narrower than {MIN_WINDOW} V")
        cycling_max = _or(params.cycling_V_max, v_max)
        cycling_min = _or(params.cycling_V_min, v_min)
        if cycling_max > v_max:
            raise ParameterError("cycling_V_max", f"{cycling_max} V is above V_max {v_max} V")
        if cycling_min < v_min:
            raise ParameterError("cycling_V_min", f"{cycling_min} V is below V_min {v_min} V")
        if cycling_max - cycling_min < MIN_WINDOW:
            raise ParameterError(
                "cycling_V_max", f"window {cycling_min}-{cycling_max} V is narrower than {MIN_WINDOW} V"
            )
        if params.capacity is not None:
            protocol_from(params, params.capacity)
        return params

    async def cycle(self, params: CapacityCyclingInput, progress: Progress) -> CapacityCyclingOutput:
        """Run the formation and cycling protocol on the requested cell."""
        uuid = params.cell_info.uuid
        capacity = params.capacity
        if capacity is None:
            capacity = await self.backend.nominal_capacity(uuid)
            log.info("%s: no capacity given for %s, using its nominal %.4g mAh", self.name, uuid, capacity * 1e3)
        protocol = protocol_from(params, capacity)
        run = await self.backend.run_test(uuid, protocol, progress)
        cell_info = CellInfo.model_validate(params.cell_info.model_dump())
        return cycling_output(run, cell_info)
