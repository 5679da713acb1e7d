"""The SISSO operator set: how each operator acts on values, units and text.

Operator keys and their unit rules follow SISSO++ (Purcell et al., J. Chem.
Phys. 159, 114110 (2023); Ouyang et al., Phys. Rev. Mater. 2, 083802 (2018)):

* binary ``add``, ``sub``, ``abs_diff`` only between features of equal unit;
  ``mult`` and ``div`` between any two features (units multiply/divide);
* unary ``exp``, ``neg_exp``, ``log``, ``sin``, ``cos`` only on dimensionless
  features (a transcendental function of a dimensioned quantity has no unit);
* unary ``abs``, ``inv``, ``sq``, ``cb``, ``six_pow``, ``sqrt``, ``cbrt`` on any
  feature, raising its unit to the power 1, -1, 2, 3, 6, 1/2, 1/3.

Values outside an operator's domain (``log`` of a non-positive number,
``sqrt`` of a negative one, division by zero) come out as NaN or inf; the
feature space drops such features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from labweave.optimizer.sisso.units import Unit

__all__ = [
    "Operator",
    "OPERATORS",
    "BINARY_OPERATORS",
    "UNARY_OPERATORS",
    "DEFAULT_OPERATORS",
    "resolve_operators",
]


@dataclass(frozen=True)
class Operator:
    """One mathematical operator of the feature-construction set.

    Attributes:
        key: the SISSO++ name (``"add"``, ``"div"``, ``"six_pow"``, ...).
        arity: 1 for unary, 2 for binary operators.
        commutative: whether swapping the operands gives the same feature.
        sign_symmetric: for non-commutative binary operators, whether the
            swapped form is the negative of this one (``a - b`` vs ``b - a``),
            so only one orientation needs generating (a linear model absorbs
            the sign).
        apply: the value function, acting elementwise on numpy arrays.
        unit: the result unit for the operand units, or ``None`` when the
            operator is not allowed on them.
        render: the text of the result from the operand texts.
        barred_operands: keys of operators whose results may not be operands
            (SISSO++ never multiplies or divides by ``1/x``: ``a * (1/x)`` is
            ``a / x`` and ``(1/x) / a`` is ``1/(x*a)``, a rung higher).
        like_units: whether the operands must have equal units.
    """

    key: str
    arity: int
    commutative: bool
    sign_symmetric: bool
    apply: Callable[..., np.ndarray]
    unit: Callable[..., Unit | None]
    render: Callable[..., str]
    barred_operands: frozenset[str] = frozenset()
    like_units: bool = False


def _same_unit(a: Unit, b: Unit) -> Unit | None:
    return a if a == b else None


def _dimensionless_only(a: Unit) -> Unit | None:
    return a if a.is_dimensionless else None


def _power(p: int | Fraction) -> Callable[[Unit], Unit]:
    return lambda a: a**p


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.where(x > 0, x, np.nan))


def _sqrt(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.where(x >= 0, x, np.nan))


_BINARY = (
    Operator("add", 2, True, False, lambda a, b: a + b, _same_unit, lambda a, b: f"({a} + {b})", like_units=True),
    Operator("sub", 2, False, True, lambda a, b: a - b, _same_unit, lambda a, b: f"({a} - {b})", like_units=True),
    Operator(
        "abs_diff",
        2,
        True,
        False,
        lambda a, b: np.abs(a - b),
        _same_unit,
        lambda a, b: f"(|{a} - {b}|)",
        like_units=True,
    ),
    Operator(
        "mult", 2, True, False, lambda a, b: a * b, lambda a, b: a * b, lambda a, b: f"({a} * {b})", frozenset({"inv"})
    ),
    Operator(
        "div", 2, False, False, lambda a, b: a / b, lambda a, b: a / b, lambda a, b: f"({a} / {b})", frozenset({"inv"})
    ),
)

_UNARY = (
    Operator("exp", 1, True, False, np.exp, _dimensionless_only, lambda a: f"exp({a})"),
    Operator("neg_exp", 1, True, False, lambda a: np.exp(-a), _dimensionless_only, lambda a: f"exp(-{a})"),
    Operator("log", 1, True, False, _log, _dimensionless_only, lambda a: f"log({a})"),
    Operator("sin", 1, True, False, np.sin, _dimensionless_only, lambda a: f"sin({a})"),
    Operator("cos", 1, True, False, np.cos, _dimensionless_only, lambda a: f"cos({a})"),
    Operator("abs", 1, True, False, np.abs, _power(1), lambda a: f"(|{a}|)"),
    Operator("inv", 1, True, False, lambda a: 1.0 / a, _power(-1), lambda a: f"(1 / {a})"),
    Operator("sq", 1, True, False, np.square, _power(2), lambda a: f"({a}^2)"),
    Operator("cb", 1, True, False, lambda a: a * a * a, _power(3), lambda a: f"({a}^3)"),
    Operator("six_pow", 1, True, False, lambda a: np.square(a * a * a), _power(6), lambda a: f"({a}^6)"),
    Operator("sqrt", 1, True, False, _sqrt, _power(Fraction(1, 2)), lambda a: f"sqrt({a})"),
    Operator("cbrt", 1, True, False, np.cbrt, _power(Fraction(1, 3)), lambda a: f"cbrt({a})"),
)

#: every operator by key
OPERATORS: dict[str, Operator] = {op.key: op for op in _BINARY + _UNARY}
BINARY_OPERATORS = tuple(op.key for op in _BINARY)
UNARY_OPERATORS = tuple(op.key for op in _UNARY)

#: the operator set of the SISSO++ tutorials: + - |-| * / and the usual unary set
DEFAULT_OPERATORS: tuple[str, ...] = (
    "add",
    "sub",
    "abs_diff",
    "mult",
    "div",
    "inv",
    "abs",
    "exp",
    "log",
    "sin",
    "cos",
    "sq",
    "cb",
    "six_pow",
    "sqrt",
    "cbrt",
    "neg_exp",
)

_ALIASES = {
    "+": "add",
    "-": "sub",
    "|-|": "abs_diff",
    "*": "mult",
    "/": "div",
    "exp-": "neg_exp",
    "^-1": "inv",
    "^2": "sq",
    "^3": "cb",
    "^6": "six_pow",
}


def resolve_operators(keys: Iterable[str]) -> tuple[Operator, ...]:
    """Look up operators by SISSO++ key (or the SISSO symbols ``+ - |-| * /``).

    Args:
        keys: operator keys.

    Returns:
        The operators, in the order given, without repeats.

    Raises:
        ValueError: naming the ``operators`` field if a key is unknown.
    """
    resolved: list[Operator] = []
    for key in keys:
        name = _ALIASES.get(key, key)
        if name not in OPERATORS:
            raise ValueError(f"operators: unknown operator {key!r}; known: {sorted(OPERATORS)}")
        if OPERATORS[name] not in resolved:
            resolved.append(OPERATORS[name])
    return tuple(resolved)
