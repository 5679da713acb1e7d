"""FINALES limitations and the check of a parameter set against them.

A limitation mirrors the shape of a method's input parameters:

- an object limits the fields it names (fields it does not name are free);
- a list is a set of alternatives: the value must match one of them. An
  empty list leaves the field free (FINALES2's tenants write ``[]`` so);
- a range ``{"min": a, "max": b}`` (or ``minimum``/``maximum``), optionally
  with ``step``, admits numbers in ``[a, b]`` on the step grid from ``a``;
- ``{"anyOf": [...]}`` lists alternative limitations for the whole object;
- any other value admits only itself.

Where the value is a list (a formulation is a list of components), every
element must match one of the alternatives; where the alternatives are
themselves lists, the value must fit inside one of them element by element.

:func:`admits` answers yes or no; :func:`violations` returns what a value
breaks, each message starting with the path of the field, so that a refusal
can name it. Both follow the same rule below: :func:`admits` is the hot path of
every request (it builds no message), so it is a check compiled once per
limitation (:func:`compile_limit`: the limitation is walked when it is
compiled, not per value); :func:`violations` is asked only once the answer is
no, and is empty exactly when :func:`admits` is true.
"""

from __future__ import annotations

import math
import operator
from functools import partial
from typing import Any, Callable

_RANGE_KEYS = {"min", "max", "minimum", "maximum", "step"}


def _is_range(limit: dict) -> bool:
    return bool(limit) and set(limit) <= _RANGE_KEYS and bool(set(limit) - {"step"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(limit: dict, value: Any, path: str) -> list[str]:
    if not _is_number(value) or not math.isfinite(value):
        return [f"{path}: expected a finite number, got {value!r}"]
    low = limit.get("min", limit.get("minimum"))
    high = limit.get("max", limit.get("maximum"))
    tol = 1e-9 * max(1.0, abs(value))
    if low is not None and value < low - tol:
        return [f"{path}: {value} is below the minimum {low}"]
    if high is not None and value > high + tol:
        return [f"{path}: {value} is above the maximum {high}"]
    step = limit.get("step")
    if step:
        origin = low if low is not None else 0.0
        k = (value - origin) / step
        if abs(k - round(k)) > 1e-6:
            return [f"{path}: {value} is not on the step grid {origin} + n*{step}"]
    return []


def _equal(limit: Any, value: Any) -> bool:
    if _is_number(limit) and _is_number(value):
        return math.isclose(limit, value, rel_tol=1e-9, abs_tol=1e-12)
    return limit == value


#: A limitation compiled by :func:`compile_limit`: whether a value fits it.
Predicate = Callable[[Any], bool]


def _free(value: Any) -> bool:
    return True


def compile_limit(limit: Any) -> Predicate:
    """``limit`` as a yes/no check, decided once: which branch of the rule each part takes (object,
    alternatives, list of lists, range, value) is settled here, so the check only compares values.

    :func:`admits` is this check; a caller checking many values against one limitation (the
    server's catalogue, per tenant) compiles it once. The limitation must not change afterwards.

    Args:
        limit: a FINALES limitation (object, list of alternatives, range, value).

    Returns:
        A function of the value, true exactly when :func:`violations` finds nothing.
    """
    if limit is None:
        return _free
    if isinstance(limit, list):
        return _compile_list(limit)
    if isinstance(limit, dict):
        if "anyOf" in limit and len(limit) == 1:
            return _one_of(_flat(limit["anyOf"]))
        if _is_range(limit):
            return _compile_range(limit)
        return _compile_object(limit)
    if _is_number(limit):
        return partial(_equal, limit)
    return partial(operator.eq, limit)


def _one_of(alternatives: list[Any]) -> Predicate:
    """Whether one of ``alternatives`` admits the value, in their order; any value when there are none."""
    if not alternatives:
        return _free
    if len(alternatives) > 1 and all(isinstance(alt, str) for alt in alternatives):
        names = frozenset(alternatives)  # a string equals only a string
        return lambda value: isinstance(value, str) and value in names
    checks = [compile_limit(alt) for alt in alternatives]
    if len(checks) == 1:
        return checks[0]

    def one_of(value: Any) -> bool:
        for check in checks:
            if check(value):
                return True
        return False
    return one_of


def _compile_list(limit: list[Any]) -> Predicate:
    if not limit:
        return _free
    if any(isinstance(alt, list) for alt in limit):
        options = [_one_of(alt if isinstance(alt, list) else [alt]) for alt in limit]

        def fits_one_list(value: Any) -> bool:  # every element fits one alternative of the same list
            if not isinstance(value, list):
                return False
            for option in options:
                for item in value:
                    if not option(item):
                        break
                else:
                    return True
            return False
        return fits_one_list
    one = _one_of(limit)

    def each_fits(value: Any) -> bool:  # a list value: each element fits one alternative
        if isinstance(value, list):
            for item in value:
                if not one(item):
                    return False
            return True
        return one(value)
    return each_fits


def _compile_object(limit: dict[str, Any]) -> Predicate:
    fields = [(key, check) for key, check in ((k, compile_limit(sub)) for k, sub in limit.items())
              if check is not _free]

    def fits_fields(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for key, check in fields:
            given = value.get(key)
            if given is not None and not check(given):  # a field left out (or null) takes the method's default
                return False
        return True
    return fits_fields


def _compile_range(limit: dict[str, Any]) -> Predicate:
    """:func:`_check_range` without its messages."""
    low = limit.get("min", limit.get("minimum"))
    high = limit.get("max", limit.get("maximum"))
    step = limit.get("step")
    on_grid = bool(step)
    origin = low if low is not None else 0.0

    def in_range(value: Any) -> bool:
        if not _is_number(value) or not math.isfinite(value):
            return False
        tol = 1e-9 * max(1.0, abs(value))
        if (low is not None and value < low - tol) or (high is not None and value > high + tol):
            return False
        if on_grid:
            k = (value - origin) / step
            return abs(k - round(k)) <= 1e-6
        return True
    return in_range


def _flat(alternatives: Any) -> list[Any]:
    flat: list[Any] = []
    for alt in alternatives if isinstance(alternatives, list) else [alternatives]:
        flat.extend(alt if isinstance(alt, list) else [alt])
    return flat


def admits(limit: Any, value: Any) -> bool:
    """Whether ``value`` fits ``limit``: ``violations(limit, value) == []``, without building messages.

    Args:
        limit: a FINALES limitation (object, list of alternatives, range, value).
        value: the parameters (or one field of them) to check.
    """
    return compile_limit(limit)(value)


def _best(alternatives: list[Any], value: Any, path: str) -> list[str]:
    """No violations if one alternative admits ``value``, else the closest one's."""
    best: list[str] | None = None
    for alt in alternatives:
        found = _violations(alt, value, path)
        if not found:
            return []
        if best is None or len(found) < len(best):
            best = found
    return best or []


def _check_list(limit: list, value: Any, path: str) -> list[str]:
    if not limit:
        return []
    if any(isinstance(alt, list) for alt in limit):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        found: list[str] | None = None
        for alt in limit:
            options = alt if isinstance(alt, list) else [alt]
            errors = [e for i, item in enumerate(value) for e in _best(options, item, f"{path}[{i}]")]
            if not errors:
                return []
            if found is None or len(errors) < len(found):
                found = errors
        return found or []
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _best(limit, item, f"{path}[{i}]")]
    errors = _best(limit, value, path)
    if errors and all(not isinstance(a, (dict, list)) for a in limit):
        return [f"{path}: {value!r} is not one of {limit}"]
    return errors


def violations(limit: Any, value: Any, path: str = "parameters") -> list[str]:
    """What ``value`` breaks of ``limit``; an empty list when it is admitted.

    Args:
        limit: a FINALES limitation (object, list of alternatives, range, value).
        value: the parameters (or one field of them) to check.
        path: the field's path, used as the prefix of each message.

    Returns:
        One message per broken limit, each starting with the field's path.
    """
    return [] if admits(limit, value) else _violations(limit, value, path)


def _violations(limit: Any, value: Any, path: str) -> list[str]:
    """The walk that names what is broken. It never asks :func:`admits`, so that the two walks
    check each other (tests/server/test_limitation_admits.py); :func:`violations` runs it only once :func:`admits` says no."""
    if limit is None:
        return []
    if isinstance(limit, list):
        return _check_list(limit, value, path)
    if isinstance(limit, dict):
        if "anyOf" in limit and len(limit) == 1:
            flat = _flat(limit["anyOf"])
            return _best(flat, value, path) if flat else []
        if _is_range(limit):
            return _check_range(limit, value, path)
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        out: list[str] = []
        for key, sub in limit.items():
            if value.get(key) is not None:  # a field left out (or null) takes the method's default
                out.extend(_violations(sub, value[key], f"{path}.{key}"))
        return out
    if not _equal(limit, value):
        return [f"{path}: {value!r} is not {limit!r}"]
    return []


def malformed(limit: Any, path: str = "limitations") -> list[str]:
    """What is wrong with the shape of a limitation document; empty when it is well formed.

    The schema of limitations, checked when a tenant publishes them, so that a
    stored limitation can never make the check of someone's request fail: a
    range's bounds and step are finite numbers (``min <= max``, ``step > 0``),
    ``anyOf`` holds a list, and no number anywhere is NaN or infinite.

    Args:
        limit: a FINALES limitation as :func:`violations` takes it.
        path: the document's path, used as the prefix of each message.

    Returns:
        One message per fault, each starting with the path of the field.
    """
    if isinstance(limit, bool) or limit is None or isinstance(limit, str | int):
        return []
    if isinstance(limit, float):
        return [] if math.isfinite(limit) else [f"{path}: {limit} is not a finite number"]
    if isinstance(limit, list):
        return [e for i, alt in enumerate(limit) for e in malformed(alt, f"{path}[{i}]")]
    if not isinstance(limit, dict):
        return [f"{path}: {type(limit).__name__} is not a limitation"]
    if "anyOf" in limit and len(limit) == 1:
        if not isinstance(limit["anyOf"], list):
            return [f"{path}.anyOf: expected a list of alternatives, got {limit['anyOf']!r}"]
        return malformed(limit["anyOf"], f"{path}.anyOf")
    if not _is_range(limit):
        return [e for key, sub in limit.items() for e in malformed(sub, f"{path}.{key}")]
    errors = []
    for key, value in limit.items():
        if value is None:
            continue
        if not _is_number(value) or not math.isfinite(value):
            errors.append(f"{path}.{key}: expected a finite number, got {value!r}")
    if errors:
        return errors
    low = limit.get("min", limit.get("minimum"))
    high = limit.get("max", limit.get("maximum"))
    if low is not None and high is not None and low > high:
        errors.append(f"{path}: the minimum {low} is above the maximum {high}")
    if limit.get("step") is not None and not limit["step"] > 0:
        errors.append(f"{path}.step: {limit['step']} is not a positive step")
    return errors


def alternatives_of(limitations: Any) -> list[Any]:
    """A tenant's limitation for one method as a flat list of alternatives."""
    if isinstance(limitations, list):
        return list(limitations) if limitations else [{}]
    if isinstance(limitations, dict) and "anyOf" in limitations and len(limitations) == 1:
        items = limitations["anyOf"]
        flat: list[Any] = []
        for alt in items if isinstance(items, list) else [items]:
            flat.extend(alt if isinstance(alt, list) else [alt])
        return flat or [{}]
    return [limitations]
