"""A tomato device's limits: its attributes (type, units, bounds, allowed values) as labweave limits.

A tomato driver describes each attribute of a component with an ``Attr`` (``tomato.driverinterface_2_1``):
its type, whether a task may set it (``rw``), its units, a minimum and maximum (numbers, or pint
quantities), and a set of allowed values. The attributes a task may set are what a request's
``task_params`` may carry; their bounds and options become the tenant's published limitations, and the
frontend checks them before anything is submitted (tomato's driver checks them again when the job is
validated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labweave.schemas.units import registry


def _magnitude(bound: Any, units: str | None) -> float | None:
    """A bound as a number in the attribute's units (a pint quantity converted, a number kept)."""
    if bound is None:
        return None
    if hasattr(bound, "magnitude") and hasattr(bound, "units"):
        quantity = registry().Quantity(float(bound.magnitude), str(bound.units))
        return float(quantity.to(units).magnitude) if units else float(quantity.magnitude)
    return float(bound)


@dataclass(frozen=True)
class AttrLimit:
    """What a task may set one attribute to.

    Attributes:
        name: the attribute.
        kind: ``number``, ``text`` or ``flag``.
        units: its units (pint's spelling), or None.
        minimum, maximum: bounds, in ``units``.
        options: the allowed values, or None for any.
    """

    name: str
    kind: str
    units: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[Any, ...] | None = None

    def limitation(self) -> list[Any] | None:
        """The FINALES limitation: the options, or one ``{min, max}`` range; None where anything goes."""
        if self.options is not None:
            return list(self.options)
        if self.minimum is None and self.maximum is None:
            return None
        bound: dict[str, Any] = {}
        if self.minimum is not None:
            bound["min"] = self.minimum
        if self.maximum is not None:
            bound["max"] = self.maximum
        return [bound]

    def refusal(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None."""
        if self.options is not None:
            return None if value in self.options else f"{value!r} is not one of {list(self.options)}"
        if self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{value!r} is not a number" + (f" (in {self.units})" if self.units else "")
            unit = f" {self.units}" if self.units else ""
            if self.minimum is not None and value < self.minimum:
                return f"{value:g}{unit} is below the device's minimum {self.minimum:g}{unit}"
            if self.maximum is not None and value > self.maximum:
                return f"{value:g}{unit} is above the device's maximum {self.maximum:g}{unit}"
        if self.kind == "flag" and not isinstance(value, bool):
            return f"{value!r} is not true or false"
        return None


def attr_limits(attrs: dict[str, Any]) -> dict[str, AttrLimit]:
    """The limits of the attributes a task may set (``rw``), by name."""
    out = {}
    for name, attr in sorted(attrs.items()):
        if not getattr(attr, "rw", False):
            continue
        kind_of = getattr(attr, "type", None)
        units = getattr(attr, "units", None)
        if kind_of is bool:
            kind = "flag"
        elif kind_of in (int, float) or (isinstance(kind_of, type) and kind_of.__name__ == "Quantity"):
            kind = "number"
        else:
            kind = "text"
        options = getattr(attr, "options", None)
        out[name] = AttrLimit(
            name=name, kind=kind, units=str(units) if units else None,
            minimum=_magnitude(getattr(attr, "minimum", None), units),
            maximum=_magnitude(getattr(attr, "maximum", None), units),
            options=tuple(sorted(options, key=repr)) if options is not None else None,
        )
    return out
