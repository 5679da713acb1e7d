"""Units: one syntax (pint's), one registry for the whole lab.

Every unit labweave reads or writes is a pint expression: the units of the
drivers' parameter and result models (the ``unit`` annotation of each field in
a capability's JSON schemas), the units of a campaign's parameters, and the
units SISSO's feature algebra works with. FINALES2 writes its units the same
way (``"milliampere_hour / centimeter ** 2"``), so its capability files
register unchanged.

labweave's own capability definitions spell each unit in pint's default
format (:func:`canonical_unit`: full names, ``" ** "`` for powers); what
others register is accepted in any pint spelling (``"K"``, ``"J/cm**2"``) and
kept as written. A string pint cannot read (``"J/cm2"``, ``"unit cells"``) is
refused with the field named.

The registry is pint's default one plus a few counting units of the lab
(:data:`LAB_DEFINITIONS`). It is built on first use, not on import. A data set
with kinds of quantity of its own (an energy on another reference, kept apart
from ``eV``) adds them with :func:`define_units`.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

if TYPE_CHECKING:
    import pint

__all__ = [
    "LAB_DEFINITIONS",
    "UnitError",
    "UnitText",
    "canonical_unit",
    "check_schema_units",
    "check_unit",
    "define_units",
    "parse_unit",
    "registry",
    "schema_units",
]

#: Units the lab counts in, beyond pint's own: energies per atom (``electron_volt / atom``,
#: an amount of substance like pint's ``particle``), film thickness in unit cells and growth
#: per laser pulse (dimensionless counts).
LAB_DEFINITIONS = (
    "atom = particle",
    "unit_cell = count",
    "pulse = count",
)

#: A digit glued to a unit name (``cm2``, ``um2``): another dialect's power.
_GLUED_POWER = re.compile(r"[A-Za-z]\d")
#: The longest unit text read.
MAX_LENGTH = 200
_NAME = re.compile(r"[^\W\d]\w*")
_POWER = r"(?:\*\*|\^)\s*(?:[+-]?\d{1,3}(?:\.\d{1,6})?|\(\s*[+-]?\d{1,3}(?:\.\d{1,6})?(?:\s*/\s*\d{1,3})?\s*\))"
_POWERS = re.compile(_POWER)
_POWER_OF_POWER = re.compile(_POWER + r"\s*(?:\*\*|\^)")
_ONE = re.compile(r"(?<![\w.])1(?![\w.])")


class UnitError(ValueError):
    """A unit string pint cannot read; the message names the string and why."""


_registry: pint.UnitRegistry | None = None
_registry_lock = threading.Lock()


def registry() -> pint.UnitRegistry:
    """The lab's one unit registry (pint's default definitions and :data:`LAB_DEFINITIONS`), built once."""
    global _registry
    with _registry_lock:
        if _registry is None:
            import pint

            ureg: pint.UnitRegistry = pint.UnitRegistry()
            for definition in LAB_DEFINITIONS:
                ureg.define(definition)
            _registry = ureg
        return _registry


def define_units(*definitions: str) -> None:
    """Add units to the lab's registry, in pint's definition syntax (``"eV_IP = [ionisation_energy]"``).

    A name the registry already knows is left as it is, so a data set's loader
    may call this every time it loads.
    """
    ureg = registry()
    with _registry_lock:
        for definition in definitions:
            name = definition.split("=", 1)[0].strip()
            if name not in ureg:
                ureg.define(definition)


def parse_unit(text: str) -> pint.Unit:
    """Read a unit in pint's syntax (``"kelvin"``, ``"K"``, ``"joule / centimeter ** 2"``).

    Raises:
        UnitError: the text is not a unit pint knows.
    """
    if not isinstance(text, str):
        raise UnitError(f"a unit is a string, not {type(text).__name__}")
    return _parse(text)


def _arithmetic_refused(text: str) -> str | None:
    """Why a text is not handed to pint, or None.

    pint evaluates the numbers in a unit expression as Python does, so
    ``9**9**9`` would keep a process busy for hours. A unit's numbers are its
    powers (``cm ** 2``, ``s^-1``, ``m ** (1/2)``, three digits at most) and the
    1 of ``1 / hour``; a power of a power is refused too.
    """
    if len(text) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    names = _NAME.sub("x", text)
    if _POWER_OF_POWER.search(names):
        return "a power of a power (write the one power)"
    if any(c.isdigit() for c in _ONE.sub("", _POWERS.sub("", names))):
        return "a unit's only numbers are powers ('cm ** 2', 'm ** (1/2)') and the 1 of '1 / hour'"
    return None


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> pint.Unit:
    refused = _arithmetic_refused(text)
    if refused is not None:
        raise UnitError(f"{text[:MAX_LENGTH]!r} is not a unit in pint's syntax: {refused}")
    try:
        return registry().parse_units(text)
    except Exception as exc:  # pint raises UndefinedUnitError, DefinitionSyntaxError, TokenError, ...
        hint = " (write powers as 'cm ** 2')" if _GLUED_POWER.search(text) else ""
        raise UnitError(f"{text!r} is not a unit in pint's syntax{hint}: {exc}") from None


def canonical_unit(text: str) -> str:
    """A unit in pint's default format: ``"J/cm**2"`` gives ``"joule / centimeter ** 2"``."""
    return str(parse_unit(text))


def check_unit(text: str) -> str:
    """The text unchanged, if pint can read it.

    Raises:
        UnitError: it cannot.
    """
    parse_unit(text)
    return text


#: A unit field of a model: any string pint can read, kept as written.
UnitText = Annotated[str, AfterValidator(check_unit)]


def schema_units(schema: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every ``unit`` annotation of a JSON schema, with the field it annotates.

    Yields:
        ``(field, unit)``: the field as a dotted path without the schema's
        ``properties`` keywords (``"temperature"``, ``"$defs.CellInfo.diameter"``),
        and the annotation as written.
    """
    if isinstance(schema, dict):
        unit = schema.get("unit")
        if unit is not None and not isinstance(unit, dict):
            yield ".".join(path) or "(root)", unit
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from schema_units(sub, (*path, name))
            elif key != "unit":
                yield from schema_units(value, (*path, key))
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from schema_units(item, (*path, str(i)))


def check_schema_units(schema: Any) -> None:
    """Refuse a JSON schema with a ``unit`` annotation pint cannot read.

    Raises:
        UnitError: naming the field and the unit.
    """
    for field, unit in schema_units(schema):
        try:
            parse_unit(unit)
        except UnitError as exc:
            raise UnitError(f"{field}: unit {exc}") from None
