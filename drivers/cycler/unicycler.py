"""Universal cycling protocols (``aurora-unicycler``) on labweave's cyclers.

A cycling request may carry a protocol in aurora-unicycler's format (its JSON: ``sample``, ``record``,
``safety``, ``method`` of steps). labweave turns it

* into the schedule the simulated cycler runs (:func:`schedule_fields`): the fields of
  ``capacity``/``cycling`` (windows, C-rates, CV cut-offs, formation and cycle counts), so the cycler's
  own limits apply to it and its PyBaMM experiment is built as for any request; and
* into tomato tasks (:func:`tomato_tasks`) for a cycler run by a tomato daemon, loops unrolled (a tomato
  2.x payload is a flat task list), each task checked against the device's techniques and attribute
  limits when they are known.

A protocol an instrument cannot run is refused with the step named (``protocol.method[3]
(impedance_spectroscopy): ...``). The protocol itself is read by aurora-unicycler's own model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aurora_unicycler import CyclingProtocol as UnicyclerProtocol
from aurora_unicycler._core import ConstantCurrent, ConstantVoltage, Loop, OpenCircuitVoltage, Tag
from pydantic import ValidationError

from labweave.drivers.base import ParameterError


def read_protocol(data: Any) -> UnicyclerProtocol:
    """A protocol in aurora-unicycler's format.

    Raises:
        ParameterError: naming the first field the format refuses (``protocol.method.2.rate_C``).
    """
    if not isinstance(data, dict):
        raise ParameterError("protocol", "an aurora-unicycler protocol is a JSON object")
    try:
        return UnicyclerProtocol.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParameterError(f"protocol.{where}" if where else "protocol", first["msg"]) from None


def _steps(protocol: UnicyclerProtocol) -> list[tuple[int, Any, int | None]]:
    """The protocol's steps without tags: (index in ``method``, step, for a loop the index it goes back to)."""
    tags: dict[str, int] = {}
    out: list[tuple[int, Any, int | None]] = []
    pending_tags: list[str] = []
    for index, step in enumerate(protocol.method):
        if isinstance(step, Tag):
            pending_tags.append(step.tag)
            continue
        for tag in pending_tags:
            tags[tag] = index
        pending_tags = []
        target = None
        if isinstance(step, Loop):
            if isinstance(step.loop_to, str):
                if step.loop_to not in tags:
                    raise ParameterError(f"protocol.method[{index}].loop_to", f"no tag {step.loop_to!r} before it")
                target = tags[step.loop_to]
            else:  # 1-based, counting every step of the method
                target = step.loop_to - 1
                while 0 <= target < len(protocol.method) and isinstance(protocol.method[target], Tag):
                    target += 1
            if not 0 <= target < index:
                raise ParameterError(f"protocol.method[{index}].loop_to", "a loop goes back to an earlier step")
        out.append((index, step, target))
    return out


def _amps(step: Any, rate: float | None, milliamps: float | None, capacity_ah: float | None, index: int) -> float:
    """A current in A, signed as written, from a C-rate or mA."""
    if rate:
        if capacity_ah is None:
            raise ParameterError(f"protocol.method[{index}]",
                                 f"({step.step}) a C-rate needs the cell's capacity (sample.capacity_mAh or "
                                 "the request's capacity)")
        return rate * capacity_ah
    return (milliamps or 0.0) / 1000.0


@dataclass
class CycleBlock:
    """Charge (CC, optionally a CV hold), discharge (CC), repeated ``count`` times."""

    first: int
    charge_a: float
    discharge_a: float
    v_max: float
    v_min: float
    cv_cutoff_a: float | None
    count: int = 1
    sources: dict[str, int] = field(default_factory=dict)  # what -> the step index it came from


def cycle_blocks(protocol: UnicyclerProtocol, capacity_ah: float | None) -> list[CycleBlock]:
    """The protocol read as blocks of CC-CV charge / CC discharge cycles, each with its loop count.

    Raises:
        ParameterError: a step that does not fit this shape, named.
    """
    steps = _steps(protocol)
    blocks: list[CycleBlock] = []
    i = 0
    while i < len(steps):
        index, step, _ = steps[i]
        if not isinstance(step, ConstantCurrent):
            raise ParameterError(f"protocol.method[{index}]",
                                 f"({step.step}) the simulated cycler runs cycles of a constant-current charge, "
                                 "an optional constant-voltage hold and a constant-current discharge; a cycle "
                                 f"cannot start with {step.step}")
        charge = _amps(step, step.rate_C, step.current_mA, capacity_ah, index)
        if charge <= 0 or not step.until_voltage_V:
            raise ParameterError(f"protocol.method[{index}]",
                                 f"({step.step}) a cycle starts with a charge (positive current) up to a voltage "
                                 "(until_voltage_V)")
        block = CycleBlock(index, charge, 0.0, step.until_voltage_V, 0.0, None,
                           sources={"charge": index, "v_max": index})
        i += 1
        if i < len(steps) and isinstance(steps[i][1], ConstantVoltage):
            cv_index, cv, _ = steps[i]
            if abs(cv.voltage_V - block.v_max) > 1e-6:
                raise ParameterError(f"protocol.method[{cv_index}]",
                                     f"({cv.step}) the hold must be at the charge's end voltage {block.v_max} V, "
                                     f"not {cv.voltage_V} V")
            if not (cv.until_rate_C or cv.until_current_mA):
                raise ParameterError(f"protocol.method[{cv_index}]",
                                     f"({cv.step}) the simulated cycler ends a hold at a current (until_rate_C or "
                                     "until_current_mA)")
            block.cv_cutoff_a = abs(_amps(cv, cv.until_rate_C, cv.until_current_mA, capacity_ah, cv_index))
            block.sources["cv"] = cv_index
            i += 1
        if i >= len(steps) or not isinstance(steps[i][1], ConstantCurrent):
            where = f"protocol.method[{steps[i][0]}]" if i < len(steps) else "protocol.method"
            kind = f"({steps[i][1].step}) " if i < len(steps) else ""
            raise ParameterError(where, f"{kind}a charge must be followed by a constant-current discharge")
        d_index, discharge, _ = steps[i]
        current = _amps(discharge, discharge.rate_C, discharge.current_mA, capacity_ah, d_index)
        if current >= 0 or not discharge.until_voltage_V:
            raise ParameterError(f"protocol.method[{d_index}]",
                                 f"({discharge.step}) a discharge has a negative current and ends at a voltage "
                                 "(until_voltage_V)")
        block.discharge_a, block.v_min = -current, discharge.until_voltage_V
        block.sources |= {"discharge": d_index, "v_min": d_index}
        i += 1
        if i < len(steps) and isinstance(steps[i][1], Loop):
            l_index, loop, target = steps[i]
            if target != block.first:
                raise ParameterError(f"protocol.method[{l_index}]",
                                     f"({loop.step}) a loop must go back to the charge that starts its cycle "
                                     f"(protocol.method[{block.first}])")
            block.count = loop.cycle_count
            block.sources["count"] = l_index
            i += 1
        blocks.append(block)
    if not blocks:
        raise ParameterError("protocol.method", "the protocol has no cycle")
    return blocks


def schedule_fields(protocol: UnicyclerProtocol, capacity_ah: float | None) -> tuple[dict[str, Any], dict[str, int]]:
    """The ``capacity``/``cycling`` fields of the protocol (a formation block, then a cycling block; or one
    cycling block), and for each field the step it came from.

    Raises:
        ParameterError: the protocol does not have that shape, the step named.
    """
    if protocol.sample.capacity_mAh is not None:
        capacity_ah = protocol.sample.capacity_mAh / 1000.0
    blocks = cycle_blocks(protocol, capacity_ah)
    if len(blocks) > 2:
        raise ParameterError(f"protocol.method[{blocks[2].first}]",
                             "(constant_current) the simulated cycler runs a formation block and a cycling block; "
                             "this starts a third")
    formation, cycling = (blocks[0], blocks[1]) if len(blocks) == 2 else (None, blocks[0])
    if capacity_ah is None:  # currents in mA throughout: C-rates need a capacity to be written
        raise ParameterError("capacity", "the protocol gives currents in mA: give the cell's capacity "
                             "(sample.capacity_mAh or the request's capacity)")
    fields: dict[str, Any] = {"capacity": capacity_ah}
    sources: dict[str, int] = {}

    def put(name: str, value: Any, block: CycleBlock, source: str) -> None:
        fields[name] = value
        sources[name] = block.sources.get(source, block.first)

    for block, prefix in ((formation, "formation"), (cycling, "cycling")):
        if block is None:
            continue
        cutoff = block.cv_cutoff_a if block.cv_cutoff_a is not None else block.charge_a  # no hold: none is run
        if prefix == "formation":
            put("repetions_formation_cycle", block.count, block, "count")
            put("c_rate_charge_formation", block.charge_a / capacity_ah, block, "charge")
            put("c_rate_discharge_formation", block.discharge_a / capacity_ah, block, "discharge")
            put("CV_I_cutoff_formation", cutoff, block, "cv")
            put("V_max", block.v_max, block, "v_max")
            put("V_min", block.v_min, block, "v_min")
        else:
            put("number_cycles", block.count, block, "count")
            put("c_rate_charge", block.charge_a / capacity_ah, block, "charge")
            put("c_rate_discharge", block.discharge_a / capacity_ah, block, "discharge")
            put("CV_I_cutoff", cutoff, block, "cv")
            put("cycling_V_max", block.v_max, block, "v_max")
            put("cycling_V_min", block.v_min, block, "v_min")
    if formation is None:
        put("repetions_formation_cycle", 0, cycling, "charge")
        put("V_max", cycling.v_max, cycling, "v_max")
        put("V_min", cycling.v_min, cycling, "v_min")
    return fields, sources


# -- tomato ---------------------------------------------------------------------------------------------
#: Longest a constant-current step may take, as a multiple of 1/|C-rate| hours, when it gives no time.
CC_TIME_FACTOR = 1.5
#: Longest hold, s, when the protocol gives no time.
CV_DEFAULT_SECONDS = 4 * 3600.0


def tomato_tasks(protocol: UnicyclerProtocol, capacity_ah: float | None, role: str = "cycler") -> list[dict]:
    """The protocol as tomato tasks for the component in ``role``, loops unrolled (:func:`unrolled`)."""
    return [task for _, task in unrolled(protocol, capacity_ah, role)]


def unrolled(protocol: UnicyclerProtocol, capacity_ah: float | None, role: str = "cycler") -> list[tuple[int, dict]]:
    """The protocol as tomato tasks for the component in ``role``, loops unrolled, each with the index of
    the step it comes from.

    Each step becomes a task whose technique is the step's kind (``open_circuit_voltage``,
    ``constant_current``, ``constant_voltage``), with the currents in A (a charge positive), the end
    conditions as ``limit_*`` attributes, at most ``until_time_s`` (or a bound from the C-rate), sampled
    every ``record.time_s``.

    Raises:
        ParameterError: a step with no tomato technique (impedance, voltage scans), named.
    """
    if protocol.sample.capacity_mAh is not None:
        capacity_ah = protocol.sample.capacity_mAh / 1000.0
    steps = _steps(protocol)
    tasks_of: dict[int, dict] = {}
    for index, step, _ in steps:
        params: dict[str, Any] = {}
        if isinstance(step, OpenCircuitVoltage):
            duration = step.until_time_s
        elif isinstance(step, ConstantCurrent):
            current = _amps(step, step.rate_C, step.current_mA, capacity_ah, index)
            params["current"] = current
            if step.until_voltage_V:
                params["limit_voltage_max" if current > 0 else "limit_voltage_min"] = step.until_voltage_V
            hours = CC_TIME_FACTOR / abs(current / capacity_ah) if capacity_ah else 24.0
            duration = step.until_time_s or hours * 3600.0
        elif isinstance(step, ConstantVoltage):
            params["voltage"] = step.voltage_V
            if step.until_rate_C or step.until_current_mA:
                params["limit_current_min"] = abs(_amps(step, step.until_rate_C, step.until_current_mA,
                                                        capacity_ah, index))
            duration = step.until_time_s or CV_DEFAULT_SECONDS
        elif isinstance(step, Loop):
            continue
        else:
            raise ParameterError(f"protocol.method[{index}]", f"({step.step}) no tomato task runs this step")
        tasks_of[index] = {"component_role": role, "technique_name": step.step, "max_duration": duration,
                           "sampling_interval": protocol.record.time_s, "task_params": params}
    # unroll the loops, as aurora-unicycler counts them: cycle_count is the total number of passes
    order = [index for index, _, _ in steps]
    loops = {index: (target or 0, step.cycle_count) for index, step, target in steps if isinstance(step, Loop)}
    done = {index: 0 for index in loops}
    out: list[tuple[int, dict]] = []
    position = 0
    while position < len(order):
        index = order[position]
        if index in loops:
            target, count = loops[index]
            done[index] += 1
            if done[index] < count:
                for inner in loops:  # loops inside this one start again
                    if target <= inner < index:
                        done[inner] = 0
                position = order.index(target)
                continue
            position += 1
            continue
        out.append((index, dict(tasks_of[index], task_params=dict(tasks_of[index]["task_params"]))))
        if len(out) > 100_000:
            raise ParameterError("protocol.method", "the unrolled protocol has over 100000 tasks")
        position += 1
    return out


def check_tasks(tasks: list[tuple[int, dict]], techniques: set[str], limits: dict[str, Any]) -> None:
    """Refuse a protocol (as :func:`unrolled` tasks) if the tomato device cannot run one of its steps:
    a technique it does not offer, an attribute it lacks or a value outside its bounds; the step named.

    Args:
        techniques: the techniques of the device's component.
        limits: its settable attributes' limits (:class:`~labweave.drivers.tomato.limits.AttrLimit`).
    """
    for index, task in tasks:
        kind = task["technique_name"]
        if kind not in techniques:
            raise ParameterError(f"protocol.method[{index}]",
                                 f"({kind}) the tomato device offers {', '.join(sorted(techniques)) or 'nothing'}")
        for name, value in task["task_params"].items():
            limit = limits.get(name)
            reason = f"the device has no attribute {name!r}" if limit is None else limit.refusal(value)
            if reason is not None:
                raise ParameterError(f"protocol.method[{index}]", f"({kind}) {name}: {reason}")
