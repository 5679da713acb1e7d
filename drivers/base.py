"""The driver framework: an instrument frontend over a small async backend.

A frontend (:class:`Instrument`) holds the policy: which operations the
instrument offers (each a FINALES quantity and method with pydantic parameter
and result models), validation of parameters against the instrument's own
limits before anything runs, its state, and a safe stop. A backend
(:class:`Backend`) talks to the hardware or, for a simulated backend, is a
stateful seeded model of it. Simulated and real backends are sibling classes.

The frontend publishes its operations as FINALES capability definitions (JSON
schemas generated from the models, their ``unit`` annotations checked to be
pint units) and its limitations (derived from the bounds and choices declared
on the parameter models), so what the server enforces and what the instrument
checks come from one place.

Backends are found by name (:mod:`labweave.drivers.registry`): a backend
class declares the options it takes as a pydantic model
(:attr:`Backend.settings_model`) and builds itself from them and the
:class:`BackendContext` of the process (:meth:`Backend.from_settings`).
"""

from __future__ import annotations

import enum
import logging
import math
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from labweave.drivers.compute import IN_PROCESS, Executor
from labweave.schemas.capability import Capability
from labweave.schemas.limitation import violations
from labweave.schemas.units import parse_unit
from labweave.schemas.units import registry as unit_registry

log = logging.getLogger(__name__)

#: Called by an operation with a fraction done (0..1) and a short message.
Progress = Callable[[float, str], Awaitable[None] | None]


class DriverError(Exception):
    """Base class of the errors a driver raises."""

    #: Whether running the same request again may succeed (a jammed gripper
    #: may; parameters outside the instrument's limits never will).
    retryable: bool = False


class ParameterError(DriverError, ValueError):
    """Parameters break the instrument's limits; names the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):  # raised on a Dask worker, re-raised here: keep both arguments
        return (type(self), (self.field, self.message))


class InstrumentFault(DriverError):
    """The instrument failed while running (a dropped cell, a crashed solver)."""

    def __init__(self, message: str, retryable: bool = True):
        self.retryable = retryable
        super().__init__(message)

    def __reduce__(self):  # raised on a Dask worker, re-raised here: keep whether it is retryable
        return (type(self), (self.args[0] if self.args else "", self.retryable))


class InstrumentStopped(DriverError):
    """The instrument was stopped (safe stop) before the operation finished."""

    retryable = True


class InstrumentState(str, enum.Enum):
    IDLE = "idle"
    BUSY = "busy"
    STOPPED = "stopped"
    FAULT = "fault"


@dataclass(frozen=True)
class Operation:
    """One thing an instrument can do: a FINALES quantity by a method.

    ``run`` names the frontend coroutine that performs it; it takes the
    validated parameter model and a progress callback and returns the result
    model.
    """

    quantity: str
    method: str
    parameters: type[BaseModel]
    result: type[BaseModel]
    run: str
    #: A published capability definition to use instead of the generated one
    #: (for FINALES2 compatibility, where the schema is fixed by FINALES2).
    capability_file: dict | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.quantity, self.method)


@dataclass(frozen=True)
class PhysicalLimit:
    """A limit of the hardware (or of the method) on one parameter, in its own unit.

    Backends declare these (:meth:`Backend.physical_limits`) in the unit the
    hardware is specified in (a heater rated to ``"1000 degC"``, a channel
    sourcing ``"2000 mA"``); the frontend converts them with the lab's pint
    registry to the unit the parameter is annotated with, publishes them as
    part of its limitations, and checks every request against them before the
    backend is touched (:meth:`Instrument.admit`).

    Attributes:
        field: the parameter, as a dotted path (``"substrate_temperature"``, ``"electrolyte.volume"``).
        what: the part of the instrument that sets the limit, as the lab says it (``"the substrate heater"``).
        low: the least value admitted, a pint quantity (``"1 meV / angstrom"``), or None.
        high: the largest value admitted, or None.
        quantity: the one quantity of the method whose parameters it limits (a method serving
            several, such as CHGNet's bulk properties and its fine-tuning); None: every one.
    """

    field: str
    what: str
    low: str | None = None
    high: str | None = None
    quantity: str | None = None

    def bounds(self, unit: str) -> tuple[float | None, float | None]:
        """The limit's low and high converted to ``unit`` (the parameter's unit)."""
        ureg = unit_registry()

        def convert(text: str | None) -> float | None:
            if text is None:
                return None
            number, _, unit_text = text.strip().partition(" ")  # "1000 degC": an offset unit, so not a product
            magnitude = ureg.Quantity(float(number), parse_unit(unit_text)).to(parse_unit(unit)).magnitude
            return float(f"{magnitude:.12g}")  # 1000 degC is 1273.15 K, not 1273.1499999999999

        return convert(self.low), convert(self.high)


class BackendSettings(BaseModel):
    """The options a backend takes (``--backend-option KEY=VALUE``); none by default.

    A backend with options (a device address, a channel count) subclasses this
    and names the subclass in :attr:`Backend.settings_model`. Unknown options are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class BackendContext:
    """What the process gives every backend it builds.

    Attributes:
        seed: seed of a simulated backend's random draws (ignored by real ones).
        state_dir: the lab's folder on this machine: the simulated lab's cell
            shelf, a real backend's own files.
    """

    seed: int = 0
    state_dir: Path = Path("labweave-lab")


class Backend:
    """The async interface every backend of an instrument implements.

    Subclasses add the instrument's own primitives (``dispense``,
    ``cycle``, ``fire_pulses``...). ``setup`` and ``stop`` bracket a session.
    A backend registered by name (:mod:`labweave.drivers.registry`) is built
    with :meth:`from_settings`.
    """

    #: The options this backend takes, validated before it is built.
    settings_model: ClassVar[type[BackendSettings]] = BackendSettings
    #: What :meth:`stop` leaves the instrument in, as the lab says it (shown to the operator on an
    #: emergency stop and written into the failure of the work it interrupted).
    safe_state: ClassVar[str] = "stopped"
    #: True for a backend whose work is a pure computation it hands to :attr:`executor`
    #: (:mod:`labweave.drivers.compute`); such an instrument runs as many requests at once as the
    #: executor has slots (and :meth:`concurrency` allows).
    offloads: ClassVar[bool] = False
    #: Worker resources its computations prefer on a cluster (``{"GPU": 1}`` for an MLIP).
    resources: ClassVar[dict[str, float]] = {}
    #: Where its computations run; the tenant daemon sets a cluster's executor here.
    executor: Executor = IN_PROCESS

    def concurrency(self) -> int:
        """How many operations the instrument itself can run at once (a cycler's channels)."""
        return 1

    def warmups(self) -> tuple[Callable[[], object], ...]:
        """Loads its computations need once per process (a cluster runs them on each worker as it joins)."""
        return ()

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        """The backend for validated ``settings`` (an instance of :attr:`settings_model`)."""
        return cls()

    async def setup(self) -> None:
        """Connect to the instrument (or build the model)."""

    async def stop(self) -> None:
        """Bring the instrument to its safe state (:attr:`safe_state`) at once; must be idempotent."""

    def in_safe_state(self) -> bool:
        """Whether the instrument is in its safe state now, as read from the hardware (or the model)."""
        return True

    def physical_limits(self, method: str) -> tuple[PhysicalLimit, ...]:
        """The hardware's limits on the parameters of ``method``, with their units (none by default)."""
        return ()


def _limitation_of(schema: dict, defs: dict) -> Any:
    """The FINALES limitation mirroring one JSON-schema node, or None if free."""
    if "$ref" in schema:
        return _limitation_of(defs[schema["$ref"].split("/")[-1]], defs)
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) == 1:
            return _limitation_of(options[0], defs)
        return None
    kind = schema.get("type")
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is None and high is None:
            return None
        bound: dict[str, Any] = {}
        if low is not None:
            bound["min"] = low
        if high is not None:
            bound["max"] = high
        if kind == "integer":
            bound["step"] = 1
        return [bound]
    if kind == "object" and "properties" in schema:
        out = {}
        for name, sub in schema["properties"].items():
            limit = _limitation_of(sub, defs)
            if limit is not None:
                out[name] = limit
        return out or None
    if kind == "array" and "items" in schema:
        limit = _limitation_of(schema["items"], defs)
        if isinstance(limit, list):
            return [limit]
        if isinstance(limit, dict):
            return [[limit]]
    return None


def limitations_from_model(model: type[BaseModel]) -> dict:
    """FINALES limitations derived from a parameter model's bounds and choices."""
    schema = model.model_json_schema()
    return _limitation_of(schema, schema.get("$defs", {})) or {}


def capability_from_models(quantity: str, method: str, parameters: type[BaseModel], result: type[BaseModel]) -> dict:
    """A FINALES capability definition with schemas generated from the models."""
    return {
        "quantity": quantity,
        "method": method,
        "json_schema_specifications": parameters.model_json_schema(),
        "json_schema_result_output": result.model_json_schema(),
        "is_active": True,
    }


class Instrument:
    """Frontend of an instrument: operations, validation, state, safe stop.

    Subclasses set ``name`` and ``operations`` and implement one coroutine
    per operation, named by :attr:`Operation.run`.
    """

    name: ClassVar[str] = "instrument"
    operations: ClassVar[tuple[Operation, ...]] = ()
    #: The kind of backend the frontend drives (a registered backend must be one).
    backend_type: ClassVar[type[Backend]] = Backend

    def __init__(self, backend: Backend):
        self.backend = backend
        self.state = InstrumentState.IDLE
        self._ready = False

    # -- publication ---------------------------------------------------
    def operation(self, quantity: str, method: str) -> Operation:
        for op in self.operations:
            if op.key == (quantity, method):
                return op
        raise ParameterError("method", f"{self.name} does not offer {quantity}/{method}")

    def capabilities(self) -> list[dict]:
        """FINALES capability definitions of every operation.

        Raises:
            ValueError: a definition the server would refuse (a unit pint cannot
                read), naming the operation and the field.
        """
        out = []
        for op in self.operations:
            if op.capability_file is not None:
                definition = dict(op.capability_file)
            else:
                definition = capability_from_models(op.quantity, op.method, op.parameters, op.result)
            try:
                Capability.model_validate(definition)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{self.name} {op.quantity}/{op.method}: {where}: {first['msg']}") from None
            out.append(definition)
        return out

    def limitations(self) -> list[dict]:
        """FINALES limitations, ``[{quantity, method, limitations}]``: the parameter model's bounds and
        choices narrowed by the backend's physical limits (converted to each parameter's unit)."""
        out = []
        for op in self.operations:
            limits = limitations_from_model(op.parameters)
            for limit in self.backend.physical_limits(op.method):
                if limit.quantity not in (None, op.quantity):
                    continue
                _narrow(limits, limit.field.split("."), limit.bounds(field_unit(op.parameters, limit.field)))
            out.append({"quantity": op.quantity, "method": op.method, "limitations": limits})
        return out

    # -- policy --------------------------------------------------------
    def validate(self, quantity: str, method: str, parameters: dict) -> BaseModel:
        """Check parameters against the instrument's limits before anything runs.

        Raises:
            ParameterError: naming the first offending field.
        """
        op = self.operation(quantity, method)
        try:
            return op.parameters.model_validate(parameters)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "parameters"
            raise ParameterError(field, first["msg"]) from None

    def admit(self, quantity: str, method: str, parameters: dict) -> BaseModel:
        """The one gate of every operation: the parameters checked against this instrument's own limits.

        Independent of the server's check (a misbehaving server or a direct
        caller cannot get past it): the parameter model and the frontend's own
        rules (:meth:`validate`), then each physical limit of the backend with
        its unit, then everything the instrument publishes as its limitations
        (the same rule the server applies, to what this instrument declares).

        Raises:
            ParameterError: naming the first offending field and the limit it breaks.
        """
        params = self.validate(quantity, method, parameters)
        op = self.operation(quantity, method)
        values = params.model_dump(mode="json")
        for limit in self.backend.physical_limits(method):
            if limit.quantity not in (None, quantity):
                continue
            value = _at(values, limit.field.split("."))
            if value is None:
                continue
            unit = field_unit(op.parameters, limit.field)
            low, high = limit.bounds(unit)
            shown = f"{value} {unit}" if unit != "dimensionless" else f"{value}"
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ParameterError(limit.field, f"{value!r} is not a finite number")
            if low is not None and value < low:
                raise ParameterError(limit.field, f"{shown} is below the limit of {limit.what}, {limit.low} ({low} {unit})")
            if high is not None and value > high:
                raise ParameterError(limit.field, f"{shown} is above the limit of {limit.what}, {limit.high} ({high} {unit})")
        published = next(e["limitations"] for e in self.limitations() if (e["quantity"], e["method"]) == op.key)
        broken = violations(published, values, "parameters")
        if broken:
            where, _, message = broken[0].partition(": ")
            raise ParameterError(where.removeprefix("parameters.") or "parameters", f"{message} (limits of {self.name})")
        return params

    async def perform(self, quantity: str, method: str, parameters: dict, progress: Progress | None = None) -> dict:
        """Admit (:meth:`admit`), run and return the result as JSON-ready data."""
        params = self.admit(quantity, method, parameters)
        if self.state is InstrumentState.STOPPED:
            raise InstrumentStopped(f"{self.name} is stopped")
        if not self._ready:
            await self.backend.setup()
            self._ready = True
        op = self.operation(quantity, method)
        self.state = InstrumentState.BUSY
        log.info("%s: %s/%s started", self.name, quantity, method)
        try:
            result = await getattr(self, op.run)(params, progress or _no_progress)
        except DriverError:
            self.state = InstrumentState.IDLE if self.state is InstrumentState.BUSY else self.state
            raise
        except Exception as exc:  # a backend bug or solver crash is a fault, not a crash of the daemon
            self.state = InstrumentState.FAULT
            raise InstrumentFault(f"{type(exc).__name__}: {exc}") from exc
        if self.state is InstrumentState.BUSY:
            self.state = InstrumentState.IDLE
        log.info("%s: %s/%s done", self.name, quantity, method)
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        return op.result.model_validate(result).model_dump(mode="json")

    async def safe_stop(self) -> None:
        """Stop the instrument safely; the running operation raises InstrumentStopped.

        The backend is set up again before the next operation (once :meth:`resume` allows one), as
        a real instrument is re-armed after an emergency stop: a stop ends what runs, not the
        instrument's working life.
        """
        self.state = InstrumentState.STOPPED
        self._ready = False
        await self.backend.stop()

    def resume(self) -> None:
        if self.state in (InstrumentState.STOPPED, InstrumentState.FAULT):
            self.state = InstrumentState.IDLE


async def _no_progress(fraction: float, message: str) -> None:
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (through ``X | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def field_unit(model: type[BaseModel], path: str) -> str:
    """The ``unit`` annotation of a parameter (a dotted path through nested models).

    Raises:
        ValueError: no such field, or it has no unit (a physical limit needs one).
    """
    current: type[BaseModel] | None = model
    parts = path.split(".")
    for i, name in enumerate(parts):
        info = current.model_fields.get(name) if current is not None else None
        if info is None:
            raise ValueError(f"{model.__name__} has no parameter {path!r}")
        if i == len(parts) - 1:
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            unit = extra.get("unit")
            if not isinstance(unit, str):
                raise ValueError(f"{model.__name__}.{path} has no unit to check a physical limit in")
            return unit
        current = _model_of(info.annotation)
    raise ValueError(f"{model.__name__} has no parameter {path!r}")


def _at(values: Any, parts: list[str]) -> Any:
    for name in parts:
        if not isinstance(values, dict):
            return None
        values = values.get(name)
    return values


def _narrow(limits: dict, parts: list[str], bounds: tuple[float | None, float | None]) -> None:
    """Intersect the range of one field of a limitation document with ``bounds``."""
    for name in parts[:-1]:
        limits = limits.setdefault(name, {})
    low, high = bounds
    existing = limits.get(parts[-1])
    rng: dict[str, Any] = dict(existing[0]) if isinstance(existing, list) and len(existing) == 1 \
        and isinstance(existing[0], dict) else {}
    if low is not None:
        rng["min"] = max(low, rng.get("min", low))
    if high is not None:
        rng["max"] = min(high, rng.get("max", high))
    limits[parts[-1]] = [rng]
