"""Features as expression trees, and the SISSO feature space built from them.

A :class:`Feature` is a primary feature (a named column with a unit) or an
operator applied to one or two features. It prints as a readable formula,
knows its unit and rung, and evaluates itself on any table of primary values.

A :class:`FeatureSpace` applies the operator set recursively (Ouyang et al.,
Phys. Rev. Mater. 2, 083802 (2018)): rung ``r`` holds every unary operator
applied to a rung ``r-1`` feature and every binary operator applied to a pair
of distinct features of rung ``<= r-1`` of which at least one has rung
``r-1``. Features whose values are non-finite or constant are dropped; so are
duplicates of an earlier feature up to an affine map (``a - b`` and ``b - a``,
``abs(x)`` of a positive ``x``, ``log(x^2)`` and ``log(x)``), which a linear
model cannot tell apart. Only features whose largest absolute value lies in
``[min_abs_value, max_abs_value]`` are offered to screening, as in SISSO++
(Purcell et al., J. Chem. Phys. 159, 114110 (2023)); out-of-range features
of the lower rungs stay available as building blocks (``Z_B^6`` is too large
to screen, ``(Z_A / r_d_A) / (Z_B^6)`` is not), which reproduces the SISSO++
octet82 feature space. As in SISSO++, ``1/x`` is never an operand of a
product or quotient (see :mod:`.operators`).

The rungs below ``max_rung`` are built and kept (values as a numpy array).
The top rung is usually far larger (about two million features for the 20
octet primary features at rung 2) and is never stored: :meth:`FeatureSpace.
candidate_blocks` generates it block by block for screening, and only the few
selected features are built as trees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from labweave.optimizer.sisso.operators import DEFAULT_OPERATORS, OPERATORS, Operator, resolve_operators
from labweave.optimizer.sisso.units import Unit, parse_units

__all__ = ["Feature", "FeatureSpace", "FeatureSpaceEstimate", "CandidateBlock", "estimate_feature_space", "standardize_rows"]

logger = logging.getLogger(__name__)


class Feature:
    """A node of a SISSO expression tree.

    Build primaries with :meth:`primary` and composites with :meth:`combine`.

    Attributes:
        op: the operator, ``None`` for a primary feature.
        children: the operand features (empty for a primary feature).
        name: the column name of a primary feature, ``None`` otherwise.
        unit: the unit of the feature's values.
        rung: 0 for primaries, otherwise one more than the deepest operand.
        expr: the formula, e.g. ``((E_HOMO_B / r_p_A) / (r_sigma + r_p_B))``.
        complexity: the number of operators in the tree.
        size: the number of nodes (operators and leaves) in the tree.
    """

    __slots__ = ("op", "children", "name", "unit", "rung", "expr", "complexity", "size")

    def __init__(self, op: Operator | None, children: tuple[Feature, ...], name: str | None, unit: Unit) -> None:
        self.op = op
        self.children = children
        self.name = name
        self.unit = unit
        if op is None:
            if name is None:
                raise ValueError("a primary feature needs a name")
            self.rung = 0
            self.expr = name
            self.complexity = 0
            self.size = 1
        else:
            self.rung = 1 + max(child.rung for child in children)
            self.expr = op.render(*(child.expr for child in children))
            self.complexity = 1 + sum(child.complexity for child in children)
            self.size = 1 + sum(child.size for child in children)

    @classmethod
    def primary(cls, name: str, unit: Unit) -> Feature:
        """A primary feature: a named input column.

        Args:
            name: the column name.
            unit: its unit.

        Returns:
            The leaf feature.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"feature_names: a primary feature needs a non-empty name, got {name!r}")
        return cls(None, (), name, unit)

    @classmethod
    def combine(cls, op: Operator | str, *children: Feature) -> Feature:
        """Apply an operator to operand features.

        Args:
            op: the operator or its key.
            children: one operand for unary, two for binary operators.

        Returns:
            The new feature.

        Raises:
            ValueError: if the number of operands is wrong or the operator is
                not allowed on the operand units (e.g. adding eV to angstrom).
        """
        if isinstance(op, str):
            op = resolve_operators([op])[0]
        if len(children) != op.arity:
            raise ValueError(f"operator {op.key!r} takes {op.arity} operand(s), got {len(children)}")
        unit = op.unit(*(child.unit for child in children))
        if unit is None:
            units = ", ".join(repr(str(child.unit)) for child in children)
            raise ValueError(f"operator {op.key!r} is not allowed on units {units}")
        return cls(op, tuple(children), None, unit)

    def _column(self) -> str:
        """The column name of a primary feature."""
        if self.name is None:
            raise TypeError(f"{self.expr} is a composite feature, not an input column")
        return self.name

    @property
    def primary_names(self) -> frozenset[str]:
        """The names of the primary features this feature depends on."""
        if self.op is None:
            return frozenset((self._column(),))
        return frozenset().union(*(child.primary_names for child in self.children))

    @property
    def canonical(self) -> str:
        """A key equal for trees that differ only in the order of commutative operands."""
        if self.op is None:
            return self._column()
        keys = [child.canonical for child in self.children]
        if self.op.commutative and len(keys) > 1:
            keys.sort()
        return f"{self.op.key}({','.join(keys)})"

    @property
    def postfix(self) -> str:
        """The tree in postfix (reverse Polish) notation, SISSO++ style: ``a|b|div``."""
        if self.op is None:
            return self._column()
        return "|".join([child.postfix for child in self.children] + [self.op.key])

    @classmethod
    def from_postfix(cls, text: str, units: Mapping[str, Unit | str | None]) -> Feature:
        """Rebuild a feature from its :attr:`postfix` text.

        Args:
            text: the postfix expression, tokens separated by ``|``.
            units: the unit of every primary feature named in ``text``.

        Returns:
            The feature.

        Raises:
            ValueError: if the text is malformed or names an unknown feature.
        """
        names = list(units)
        unit_of = dict(zip(names, parse_units(units, names)))
        stack: list[Feature] = []
        for token in text.split("|"):
            if token in OPERATORS:
                op = OPERATORS[token]
                if len(stack) < op.arity:
                    raise ValueError(f"postfix: operator {token!r} lacks operands in {text!r}")
                operands = stack[-op.arity :]
                del stack[-op.arity :]
                stack.append(cls.combine(op, *operands))
            elif token in unit_of:
                stack.append(cls.primary(token, unit_of[token]))
            else:
                raise ValueError(f"postfix: unknown token {token!r} in {text!r}")
        if len(stack) != 1:
            raise ValueError(f"postfix: {text!r} does not reduce to one feature")
        return stack[0]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Compute the feature's values.

        Args:
            columns: values of (at least) the primary features this feature
                uses, by name; each an array of shape ``(n_samples,)``.

        Returns:
            The values, shape ``(n_samples,)``; NaN where an operator leaves
            its domain.

        Raises:
            KeyError: naming a primary feature missing from ``columns``.
        """
        if self.op is None:
            name = self._column()
            if name not in columns:
                raise KeyError(f"feature_names: primary feature {name!r} is missing")
            return np.asarray(columns[name], dtype=float)
        with np.errstate(all="ignore"):
            return self.op.apply(*(child.evaluate(columns) for child in self.children))

    def __str__(self) -> str:
        return self.expr

    def __repr__(self) -> str:
        return f"Feature({self.expr!r}, unit={str(self.unit)!r}, rung={self.rung})"


def standardize_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre each row and scale it to unit Euclidean norm.

    Args:
        values: array of shape ``(m, n)``.

    Returns:
        The standardized rows ``(m, n)`` (zero rows stay zero) and the norms of
        the centred rows ``(m,)``.
    """
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    safe = np.where(norms > 0, norms, 1.0)
    return centred / safe[:, None], norms


@dataclass
class CandidateBlock:
    """A block of features offered to screening.

    Attributes:
        values: feature values, shape ``(b, n_samples)``.
        valid: which rows are finite, non-constant and within the value bounds.
        start: generation index of the first row (for deterministic ties).
        build: makes the :class:`Feature` of a row on demand.
    """

    values: np.ndarray
    valid: np.ndarray
    start: int
    build: Callable[[int], Feature] = field(repr=False)


class FeatureSpace:
    """The SISSO feature space of one data set up to ``max_rung``.

    Args:
        data: primary feature values, shape ``(n_samples, n_primary)``.
        names: the primary feature names.
        units: one unit per primary feature (strings or :class:`Unit`), a
            mapping name -> unit, or ``None`` for all dimensionless.
        max_rung: the highest rung (number of nested operator layers).
        operators: operator keys (see :mod:`.operators`).
        min_abs_value: features whose largest absolute value is below this
            are not screened.
        max_abs_value: features whose largest absolute value is above this
            are not screened.
        block_size: rows per generated block of the top rung.

    Raises:
        ValueError: on inconsistent shapes, non-finite data, or bad settings,
            naming the offending field.
    """

    def __init__(
        self,
        data: np.ndarray,
        names: Sequence[str],
        units: Sequence[Unit | str | None] | Mapping[str, Unit | str | None] | None = None,
        *,
        max_rung: int = 2,
        operators: Sequence[str] = DEFAULT_OPERATORS,
        min_abs_value: float = 1e-5,
        max_abs_value: float = 1e8,
        block_size: int = 8192,
    ) -> None:
        data = np.asarray(data, dtype=float)
        if data.ndim != 2:
            raise ValueError(f"X: expected a 2-D array (samples x features), got shape {data.shape}")
        names = list(names)
        if len(names) != data.shape[1]:
            raise ValueError(f"feature_names: {len(names)} names for {data.shape[1]} columns of X")
        if len(set(names)) != len(names):
            raise ValueError("feature_names: names must be unique")
        if not np.all(np.isfinite(data)):
            bad = [names[j] for j in np.flatnonzero(~np.all(np.isfinite(data), axis=0))]
            raise ValueError(f"X: non-finite values in columns {bad}")
        if data.shape[0] < 3:
            raise ValueError(f"X: need at least 3 samples, got {data.shape[0]}")
        if not isinstance(max_rung, int) or max_rung < 0:
            raise ValueError(f"max_rung: must be a non-negative integer, got {max_rung!r}")
        if not 0 <= min_abs_value < max_abs_value:
            raise ValueError(f"min_abs_value/max_abs_value: need 0 <= min < max, got {min_abs_value}, {max_abs_value}")
        if block_size < 1:
            raise ValueError(f"block_size: must be positive, got {block_size}")

        self.names = names
        self.units = parse_units(units, names)
        self.max_rung = max_rung
        self.operators = resolve_operators(operators)
        self.unary = tuple(op for op in self.operators if op.arity == 1)
        self.binary = tuple(op for op in self.operators if op.arity == 2)
        self.min_abs_value = float(min_abs_value)
        self.max_abs_value = float(max_abs_value)
        self.block_size = int(block_size)
        self.n_samples = data.shape[0]

        self.stored: list[Feature] = []
        self._stored_rows: list[np.ndarray] = []
        self._seen: set[bytes] = set()
        self._rung_start: list[int] = []
        self._unit_index: dict[Unit, int] = {}
        self._top_plan: list[tuple[Operator, tuple[np.ndarray, ...]]] | None = None
        self._build_stored(data)
        self.stored_values = np.array(self._stored_rows).reshape(len(self.stored), self.n_samples)
        del self._stored_rows
        self.stored_valid = self.valid_rows(self.stored_values)
        logger.debug("feature space: %d stored features up to rung %d", len(self.stored), self._stored_top_rung)

    # ------------------------------------------------------------------ checks
    def valid_rows(self, values: np.ndarray) -> np.ndarray:
        """Which rows may be screened: finite, non-constant, within the value bounds.

        Args:
            values: feature values, shape ``(b, n_samples)``.

        Returns:
            Boolean mask, shape ``(b,)``.
        """
        with np.errstate(invalid="ignore", over="ignore"):
            high = np.max(values, axis=1)
            low = np.min(values, axis=1)
            max_abs = np.maximum(np.abs(high), np.abs(low))
            return (
                np.isfinite(high)
                & np.isfinite(low)
                & (max_abs >= self.min_abs_value)
                & (max_abs <= self.max_abs_value)
                & (high - low > 1e-10 * max_abs)
            )

    def _buildable_rows(self, values: np.ndarray) -> np.ndarray:
        """Rows usable as building blocks of higher rungs: finite and non-constant."""
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(values).all(axis=1)
            max_abs = np.max(np.abs(values), axis=1)
            spread = np.max(values, axis=1) - np.min(values, axis=1)
            return finite & (spread > 1e-10 * max_abs) & (max_abs > 0)

    @staticmethod
    def _fingerprints(values: np.ndarray) -> list[bytes]:
        """Hashable keys equal for rows that are affine images of each other."""
        z, _ = standardize_rows(values)
        # fix the sign by the first clearly non-zero entry
        pivot = np.argmax(np.abs(z) > 1e-3, axis=1)
        signs = np.sign(z[np.arange(len(z)), pivot])
        signs[signs == 0] = 1.0
        z = np.round(z * signs[:, None], 8) + 0.0  # +0.0 turns -0.0 into 0.0
        return [row.tobytes() for row in z]

    # ---------------------------------------------------------------- building
    @property
    def _stored_top_rung(self) -> int:
        return max(0, self.max_rung - 1)

    def _accept(self, values: np.ndarray, make: Callable[[int], Feature]) -> int:
        """Keep the new, buildable, non-duplicate rows of a block; return how many."""
        if len(values) == 0:
            return 0
        usable = self._buildable_rows(values)
        rows = np.flatnonzero(usable)
        kept = 0
        for row, key in zip(rows, self._fingerprints(values[rows])):
            if key in self._seen:
                continue
            self._seen.add(key)
            self.stored.append(make(int(row)))
            self._stored_rows.append(values[row])
            kept += 1
        return kept

    def _build_stored(self, data: np.ndarray) -> None:
        primaries = [Feature.primary(name, unit) for name, unit in zip(self.names, self.units)]
        self._rung_start.append(0)
        kept = self._accept(data.T.copy(), lambda row: primaries[row])
        if kept < len(primaries):
            logger.info(
                "feature space: %d of %d primary features are constant or duplicates",
                len(primaries) - kept,
                len(primaries),
            )
        for _ in range(1, self._stored_top_rung + 1):
            start = len(self.stored)
            self._rung_start.append(start)
            values = np.array(self._stored_rows)
            for block in self._generate(values, self._plan(self._rung_start[-2], start)):
                self._accept(block.values, block.build)

    def _plan(self, lo: int, hi: int) -> list[tuple[Operator, tuple[np.ndarray, ...]]]:
        """Which operator acts on which stored features to make the rung above ``[lo, hi)``.

        Unary operators act on each feature in ``[lo, hi)`` (the current top
        rung); binary operators on each pair ``(i, j)`` with ``lo <= i < hi``
        and ``j < i``, a feature never being paired with itself. Unit rules
        and barred operands are applied here.

        Returns:
            ``(operator, operand index arrays)`` in generation order; a
            non-commutative, non-sign-symmetric operator (``div``) appears
            twice, once per orientation.
        """
        features = self.stored[:hi]
        unit_ids = np.array(
            [self._unit_index.setdefault(f.unit, len(self._unit_index)) for f in features], dtype=np.int64
        )
        op_keys = np.array([f.op.key if f.op is not None else "" for f in features], dtype=object)
        top = np.arange(lo, hi)
        plan: list[tuple[Operator, tuple[np.ndarray, ...]]] = []
        for op in self.unary:
            allowed = np.array(
                [op.unit(features[i].unit) is not None and op_keys[i] not in op.barred_operands for i in top],
                dtype=bool,
            ).reshape(len(top))
            plan.append((op, (top[allowed],)))
        i_all = np.repeat(top, top)  # feature i paired with every j < i
        j_all = np.concatenate([np.arange(i) for i in top]) if len(top) else top
        for op in self.binary:
            usable = np.ones(len(i_all), dtype=bool)
            if op.like_units:
                usable &= unit_ids[i_all] == unit_ids[j_all]
            if op.barred_operands:
                barred = np.isin(op_keys, list(op.barred_operands))
                usable &= ~barred[i_all] & ~barred[j_all]
            i_op, j_op = i_all[usable], j_all[usable]
            plan.append((op, (i_op, j_op)))
            if not op.commutative and not op.sign_symmetric:
                plan.append((op, (j_op, i_op)))
        return plan

    def _generate(
        self, values: np.ndarray, plan: list[tuple[Operator, tuple[np.ndarray, ...]]]
    ) -> Iterator[CandidateBlock]:
        """Evaluate a :meth:`_plan` block by block."""
        features = self.stored
        order = 0
        with np.errstate(all="ignore"):
            for op, operands in plan:
                for s in range(0, len(operands[0]), self.block_size):
                    chunk = tuple(idx[s : s + self.block_size] for idx in operands)
                    block_values = op.apply(*(values[idx] for idx in chunk))
                    yield CandidateBlock(
                        block_values,
                        self.valid_rows(block_values),
                        order,
                        _builder(op, features, chunk),
                    )
                    order += len(chunk[0])

    # ----------------------------------------------------------------- access
    def candidate_blocks(self) -> Iterator[CandidateBlock]:
        """All features up to ``max_rung``, block by block, for screening.

        Yields:
            First the stored rungs (as one block), then the top rung generated
            on the fly (when ``max_rung >= 1``). Each block's ``start`` is a
            running generation index.
        """
        stored = list(self.stored)
        yield CandidateBlock(self.stored_values, self.stored_valid, 0, lambda row: stored[row])
        if self.max_rung == 0:
            return
        offset = len(self.stored)
        if self._top_plan is None:
            self._top_plan = self._plan(self._rung_start[-1], len(self.stored))
        for block in self._generate(self.stored_values, self._top_plan):
            block.start += offset
            yield block

    def columns(self, data: np.ndarray) -> dict[str, np.ndarray]:
        """Map primary feature names to the columns of a data array.

        Args:
            data: shape ``(n, n_primary)`` in the order of :attr:`names`.

        Returns:
            name -> column.
        """
        data = np.asarray(data, dtype=float)
        if data.ndim != 2 or data.shape[1] != len(self.names):
            raise ValueError(f"X: expected shape (n, {len(self.names)}), got {data.shape}")
        return {name: data[:, j] for j, name in enumerate(self.names)}


def _builder(op: Operator, features: list[Feature], operands: tuple[np.ndarray, ...]) -> Callable[[int], Feature]:
    return lambda row: Feature.combine(op, *(features[int(idx[row])] for idx in operands))


@dataclass(frozen=True)
class FeatureSpaceEstimate:
    """An upper bound on the size of a feature space, known before building it.

    Attributes:
        per_rung: features per rung (rung 0 is the primaries), before unit rules and
            duplicate removal thin them out.
        stored_bytes: memory of the stored rungs (all but the top) for ``n_samples`` rows.
        screened: features screening has to score (every rung, the top one streamed).
    """

    per_rung: tuple[int, ...]
    stored_bytes: int
    screened: int


def estimate_feature_space(
    n_primary: int, operators: Sequence[str], max_rung: int, n_samples: int
) -> FeatureSpaceEstimate:
    """Bound the size of a :class:`FeatureSpace` without building it.

    Counts as :meth:`FeatureSpace._plan` does (every unary operator on each feature of
    the rung below; every binary operator on each pair with at least one operand
    there, ``div`` in both orientations), ignoring unit rules, value bounds and
    duplicates, which only remove features: the true space is smaller.

    Args:
        n_primary: number of primary features.
        operators: operator keys.
        max_rung: the highest rung.
        n_samples: rows the features are evaluated on.

    Returns:
        The estimate.
    """
    ops = resolve_operators(operators)
    unary = sum(1 for op in ops if op.arity == 1)
    binary = sum(1 if op.commutative or op.sign_symmetric else 2 for op in ops if op.arity == 2)
    per_rung = [int(n_primary)]
    below = 0  # features of the rungs under the last one
    for _ in range(max_rung):
        top = per_rung[-1]
        per_rung.append(unary * top + binary * (top * (top - 1) // 2 + top * below))
        below += top
    stored = sum(per_rung[:-1]) if max_rung > 0 else per_rung[0]
    return FeatureSpaceEstimate(tuple(per_rung), stored * int(n_samples) * 8, sum(per_rung))
