"""The yes/no limitation check agrees with the walk that names what is broken.

``admits`` is what every request pays, as a check compiled once per limitation
(``compile_limit``, which the server's catalogue keeps per tenant); ``_violations`` builds the
messages of a refusal and is run only once ``admits`` says no. They are two forms of one rule, so
each case here asks both: ``admits`` and the compiled check are true exactly when ``_violations``
finds nothing, and a compiled check gives the same answers however many values it is asked about.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labweave.schemas.limitation import _violations, admits, alternatives_of, compile_limit, violations

from ..conftest import load, shared_files

KEYS = st.sampled_from(["volume", "temperature", "SMILES", "fraction", "chemical", "formulation"])
SCALARS = st.one_of(
    st.integers(-5, 5), st.floats(-10, 10, allow_nan=False), st.sampled_from([0.5, 1.0, 2, "Li", "EC", "molar", True, None]),
)


def _range() -> st.SearchStrategy:
    bound = st.one_of(st.none(), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))
    return st.builds(
        lambda low, high, step, names: {k: v for k, v in zip(names, (low, high, step)) if v is not None} or {"min": 0},
        bound, bound, st.one_of(st.none(), st.sampled_from([0.5, 1, 0.25])),
        st.sampled_from([("min", "max", "step"), ("minimum", "maximum", "step")]),
    )


LIMITS = st.recursive(
    st.one_of(SCALARS, _range()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(KEYS, inner, max_size=3),
        st.builds(lambda alts: {"anyOf": alts}, st.lists(inner, max_size=3)),
    ),
    max_leaves=8,
)
VALUES = st.recursive(
    SCALARS | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def agree(limit, value, check=None) -> None:
    """``check``: the limit compiled once beforehand (and asked about other values too)."""
    found = _violations(limit, value, "parameters")
    assert admits(limit, value) == (found == []), (limit, value, found)
    assert (check or compile_limit(limit))(value) == (found == []), (limit, value, found)
    assert violations(limit, value) == found


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LIMITS, VALUES)
def test_admits_agrees_with_violations_on_generated_cases(limit, value):
    agree(limit, value)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LIMITS, st.data())
def test_admits_agrees_on_values_drawn_near_the_limit(limit, data):
    """Values built from the limit's own pieces, so that admitted cases are common too; one
    compiled check of the limit answers for all of them."""
    check = compile_limit(limit)
    for value in data.draw(st.lists(_near(limit), min_size=1, max_size=4)):
        agree(limit, value, check)


def _near(limit) -> st.SearchStrategy:
    if isinstance(limit, list):
        pieces = [_near(alt) for alt in limit] or [VALUES]
        return st.one_of(*pieces, st.lists(st.one_of(*pieces), max_size=3))
    if isinstance(limit, dict):
        if set(limit) == {"anyOf"}:
            alts = limit["anyOf"] if isinstance(limit["anyOf"], list) else [limit["anyOf"]]
            return st.one_of(*[_near(a) for a in alts]) if alts else VALUES
        if limit and set(limit) <= {"min", "max", "minimum", "maximum", "step"}:
            numbers = [v for v in limit.values() if isinstance(v, (int, float))]
            step = limit.get("step") or 1
            # on a bound or a grid point, or just off it: inside the tolerances, or just outside
            offsets = st.sampled_from([0.0, 1e-12, -1e-12, 1e-8, -1e-8, 1e-3, -1e-3, 0.05, -0.05])
            edges = st.builds(lambda n, k, off: n + k * step + off,
                              st.sampled_from(numbers or [0]), st.integers(-3, 3), offsets)
            return st.one_of(st.sampled_from(numbers or [0]), edges, st.floats(-6, 6), st.integers(-6, 6))
        return st.fixed_dictionaries({}, optional={k: _near(v) for k, v in limit.items()})
    return st.one_of(st.just(limit), SCALARS)


def finales2_cases() -> list[tuple[object, object]]:
    """Each example request's parameters against every published limitation of its method."""
    limits: dict[tuple[str, str], list] = {}
    for folder in (("finales2", "examples", "limitations"), ("finales2", "examples", "tenants")):
        for path in shared_files(*folder):
            doc = load(path)
            entries = doc.get("limitations", []) if isinstance(doc, dict) and "name" in doc else doc
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict) and "quantity" in entry and "method" in entry:
                    limits.setdefault((entry["quantity"], entry["method"]), []).extend(
                        alternatives_of(entry.get("limitations")))
    cases = []
    for path in shared_files("finales2", "examples", "requests"):
        request = load(path)
        for method in request["methods"]:
            for alt in limits.get((request["quantity"], method), []):
                cases.append((alt, request["parameters"][method]))
    return cases


def test_admits_agrees_on_finales2_examples():
    cases = finales2_cases()
    verdicts = [admits(limit, value) for limit, value in cases]
    assert len(cases) >= 10 and any(verdicts) and not all(verdicts), (len(cases), verdicts)
    checks = [compile_limit(limit) for limit, _ in cases]
    for (limit, _), check in zip(cases, checks):  # each compiled check against every example's value
        for _, value in cases:
            agree(limit, value, check)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_admits_agrees_on_values_near_finales2_limitations(data):
    limit, value = data.draw(st.sampled_from(finales2_cases()))
    agree(limit, data.draw(st.one_of(st.just(value), _near(limit))))
