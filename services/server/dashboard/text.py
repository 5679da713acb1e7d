"""How the dashboard writes lab values as short text: numbers, ages, leases, parameters, limitations."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Iterator

#: Longest text a summary gets before it is cut (the full value stays available in a ``<details>``).
SUMMARY_CHARS = 240


def number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; other values as text; ``None`` as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def as_float(value: Any) -> float | None:
    """The value as a finite float, or None if it is not a number (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def arrow(direction: str) -> str:
    """``↑`` for an objective to maximise, ``↓`` for one to minimise."""
    return "↑" if direction == "maximize" else "↓"


def prediction(mean: Any, std: Any = None) -> str:
    """A model's prediction as ``mean ± std``; per objective when given as ``{objective: value}`` dicts.

    Args:
        mean: a number, or a dict of numbers by objective (as the optimizer's proposals carry them).
        std: the standard deviation in the same form, or None.

    Returns:
        ``3.3 ± 0.4``, ``volume 3.3 ± 0.4, cost 2.1 ± 0.2``, or an en dash when there is no number.
    """
    if isinstance(mean, dict):
        spreads = std if isinstance(std, dict) else {}
        parts = [f"{name} {prediction(value, spreads.get(name))}" for name, value in mean.items()
                 if as_float(value) is not None]
        return ", ".join(parts) or "–"
    m = as_float(mean)
    if m is None:
        return "–"
    s = as_float(std)
    return number(m) + (f" ± {number(abs(s), 2)}" if s is not None else "")


def short(uuid: str | None, n: int = 8) -> str:
    """The first characters of a UUID, enough to tell requests apart on one page."""
    return (uuid or "")[:n]


def iso(t: float | None) -> str:
    """An epoch time as ISO 8601 in UTC, to the second."""
    if t is None:
        return ""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """A duration as the two largest units: ``45 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {m} min" if m else f"{hours} h"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h" if h else f"{days} d"


def ago(t: float | None, now: float | None = None) -> str:
    """How long ago an epoch time was: ``12 s ago``; ``never`` for None."""
    if t is None:
        return "never"
    now = time.time() if now is None else now
    if t > now + 1:
        return "in " + duration(t - now)
    return duration(now - t) + " ago"


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar inside nested dicts and lists, with its dotted path (list items as ``[i]``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _tail(path: str, parts: int = 2) -> str:
    """The last ``parts`` segments of a dotted path: enough to read, short enough to fit."""
    segments = [seg for seg in path.replace("[", ".[").split(".") if seg and not seg.startswith("[")]
    return ".".join(segments[-parts:])


def parameters_summary(parameters: dict[str, Any], limit: int = 5) -> str:
    """The scalar values of a request's parameters as ``name value`` pairs (identifiers left out)."""
    pairs = []
    for path, value in leaves(parameters):
        if path.endswith("InChIKey"):
            continue
        if path.endswith("SMILES"):
            pairs.append(str(value))
            continue
        pairs.append(f"{_tail(path)} {number(value)}")
    text = ", ".join(pairs[:limit]) + (f", … (+{len(pairs) - limit})" if len(pairs) > limit else "")
    return cut(text)


def numbers_summary(data: dict[str, Any], limit: int = 3) -> str:
    """The shallowest numeric values of result data, as ``name = value``."""
    found = [(path.count(".") + path.count("["), path, v) for path, v in leaves(data) if as_float(v) is not None]
    found.sort(key=lambda item: item[0])
    return cut(", ".join(f"{_tail(path)} = {number(v)}" for _, path, v in found[:limit])) or "(no numbers)"


def cut(text: str, chars: int = SUMMARY_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def limits(value: Any, depth: int = 0) -> str:
    """A tenant's limitations as readable text.

    Follows the conventions of FINALES2 limitations (see the README): an
    object limits the fields it names; a list is a set of alternatives (an
    empty one allows anything); ``{"min", "max"}`` (or ``minimum``/``maximum``,
    with an optional ``step``) is a range; ``{"anyOf": [...]}`` gives
    alternatives for a whole object; a chemical is written by its SMILES.

    Args:
        value: one method's limitations.
        depth: nesting depth (recursion guard).

    Returns:
        The text, cut at :data:`SUMMARY_CHARS`.
    """
    return cut(_limits(value, depth))


def _limits(value: Any, depth: int) -> str:
    if depth > 12:
        return "…"
    if isinstance(value, dict):
        lo = value.get("min", value.get("minimum"))
        hi = value.get("max", value.get("maximum"))
        if (lo is not None or hi is not None) and set(value) <= {"min", "max", "minimum", "maximum", "step"}:
            if lo is not None and hi is not None and lo == hi:
                text = number(lo, 6)
            else:
                text = f"{number(lo, 6) if lo is not None else '−∞'}–{number(hi, 6) if hi is not None else '∞'}"
            return text + (f" step {number(value['step'], 6)}" if "step" in value else "")
        if "anyOf" in value and len(value) == 1 and isinstance(value["anyOf"], list):
            return " or ".join(f"({_limits(v, depth + 1)})" for v in value["anyOf"])
        if "SMILES" in value:
            return str(value["SMILES"])
        if "chemical" in value:  # a component of a formulation: "SMILES fraction unit"
            rest = [_limits(v, depth + 1) for k, v in value.items() if k != "chemical"]
            return " ".join([_limits(value["chemical"], depth + 1), *rest])
        if not value:
            return "any"
        return "; ".join(f"{k}: {_limits(v, depth + 1)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "any"
        if len(value) == 1:
            return _limits(value[0], depth + 1)
        if all(isinstance(v, dict) for v in value) and depth > 0:  # each element one of these
            return "{" + "; ".join(_limits(v, depth + 1) for v in value) + "}"
        return " | ".join(_limits(v, depth + 1) for v in value)
    return number(value, 6)
