"""Campaign definitions: what to request, over which search space, towards which objectives.

A campaign is written as a TOML file and checked by these models; see
``optimizer/campaigns/`` for examples and ``labweave.optimizer.campaign`` for
loading (with readable errors) and for running a campaign's bookkeeping.

Parameters and linear constraints are defined here (the wire contract) so that
the server can store and show campaigns without importing the optimizer;
``labweave.optimizer.space.SearchSpace`` turns them into tensors.
"""

from __future__ import annotations

import math
import re
import statistics
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labweave.schemas.units import UnitText

#: Parameter and objective names: identifiers, so they can be used as placeholders.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Campaign names: slugs, usable in URLs and file names.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
#: A dotted path into result data: keys separated by dots, list indices as integers (``cycles.-1.capacity``).
PATH_PATTERN = r"^[^.\s]+(\.[^.\s]+)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContinuousParameter(_Strict):
    """A real-valued parameter on ``[lower, upper]``.

    Args:
        name: identifier used in templates and constraints.
        lower: lower bound (inclusive).
        upper: upper bound (inclusive), greater than ``lower``.
        log_scale: search in ``log(value)`` (needs ``lower > 0``); for quantities
            spanning decades such as pressures or rates.
        unit: unit of the value, for display (pint's syntax: ``"K"``, ``"J / cm ** 2"``).
        description: free text.
    """

    kind: Literal["continuous"] = "continuous"
    name: str = Field(pattern=NAME_PATTERN)
    lower: float
    upper: float
    log_scale: bool = False
    unit: UnitText | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check_bounds(self) -> ContinuousParameter:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError(f"bounds of {self.name!r} must be finite")
        if self.upper <= self.lower:
            raise ValueError(f"upper ({self.upper}) must exceed lower ({self.lower}) for {self.name!r}")
        if self.log_scale and self.lower <= 0:
            raise ValueError(f"log_scale needs lower > 0 for {self.name!r}")
        return self


class IntegerParameter(_Strict):
    """An integer parameter on ``lower..upper`` (inclusive).

    Args:
        name: identifier used in templates and constraints.
        lower: smallest allowed value.
        upper: largest allowed value, greater than ``lower``.
        unit: unit of the value, for display (pint's syntax: ``"K"``, ``"J / cm ** 2"``).
        description: free text.
    """

    kind: Literal["integer"] = "integer"
    name: str = Field(pattern=NAME_PATTERN)
    lower: int
    upper: int
    unit: UnitText | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check_bounds(self) -> IntegerParameter:
        if self.upper <= self.lower:
            raise ValueError(f"upper ({self.upper}) must exceed lower ({self.lower}) for {self.name!r}")
        return self


class CategoricalParameter(_Strict):
    """A parameter taking one of a few unordered values.

    Args:
        name: identifier used in templates.
        choices: the allowed values (at least two, distinct).
        description: free text.
    """

    kind: Literal["categorical"] = "categorical"
    name: str = Field(pattern=NAME_PATTERN)
    choices: list[str | int | float] = Field(min_length=2)
    description: str = ""

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: list[str | int | float]) -> list[str | int | float]:
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError("choices must be distinct")
        return choices


ParameterSpec = Annotated[
    ContinuousParameter | IntegerParameter | CategoricalParameter, Field(discriminator="kind")
]


class LinearConstraint(_Strict):
    """``sum(coefficients[p] * value(p)) relation rhs`` over numeric parameters.

    Fractions of a formulation summing to one are
    ``coefficients = {ec = 1, emc = 1, lipf6 = 1}, relation = "==", rhs = 1``.

    Args:
        coefficients: parameter name to coefficient (non-empty, non-zero).
        relation: ``"=="``, ``"<="`` or ``">="``.
        rhs: right-hand side.
        description: free text.
    """

    coefficients: dict[str, float] = Field(min_length=1)
    relation: Literal["==", "<=", ">="]
    rhs: float
    description: str = ""

    @field_validator("coefficients")
    @classmethod
    def _nonzero(cls, coefficients: dict[str, float]) -> dict[str, float]:
        for name, value in coefficients.items():
            if value == 0 or not math.isfinite(value):
                raise ValueError(f"coefficient of {name!r} must be finite and non-zero")
        return coefficients

    def describe(self) -> str:
        """Return the constraint as a readable inequality, e.g. ``ec + emc <= 0.9``."""
        terms = " + ".join(f"{c:g}*{n}" if c != 1 else n for n, c in self.coefficients.items())
        return f"{terms} {self.relation} {self.rhs:g}"


class SearchSpaceSpec(_Strict):
    """The parameters a campaign varies and the linear constraints between them.

    Args:
        parameters: at least one parameter; names unique.
        constraints: linear constraints over continuous or integer parameters on a linear scale.
    """

    parameters: list[ParameterSpec] = Field(min_length=1)
    constraints: list[LinearConstraint] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        """A parameter written without ``kind`` is continuous."""
        if isinstance(data, dict) and isinstance(data.get("parameters"), list):
            data = dict(data)
            data["parameters"] = [
                {"kind": "continuous", **p} if isinstance(p, dict) and "kind" not in p else p for p in data["parameters"]
            ]
        return data

    @model_validator(mode="after")
    def _check_names(self) -> SearchSpaceSpec:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameters: duplicate names {duplicates}")
        by_name = {p.name: p for p in self.parameters}
        for i, constraint in enumerate(self.constraints):
            for name in constraint.coefficients:
                parameter = by_name.get(name)
                if parameter is None:
                    raise ValueError(f"constraints[{i}].coefficients: names unknown parameter {name!r}")
                if isinstance(parameter, CategoricalParameter):
                    raise ValueError(f"constraints[{i}].coefficients: categorical parameter {name!r} cannot enter a linear constraint")
                if isinstance(parameter, ContinuousParameter) and parameter.log_scale:
                    raise ValueError(f"constraints[{i}].coefficients: log-scale parameter {name!r} cannot enter a linear constraint")
        return self


#: How the values a ``*`` path segment collects (one per cell, per sample) become one number.
Aggregate = Literal["mean", "median", "min", "max"]
AGGREGATES: dict[Aggregate, Callable[[list[float]], float]] = {
    "mean": statistics.fmean, "median": statistics.median, "min": min, "max": max,
}


class _ResultQuantity(_Strict):
    """Where a number is read in each result, and how several entries are combined.

    A path may hold one ``*`` segment standing for every entry of a list (every
    cell of a ``degradationEOL`` result, say); ``aggregate`` then says how their
    values become one: a lab that builds cells in triplicate reads the median,
    which one leaky cell cannot drag down. Entries whose ``meta.success`` is
    false (FINALES's mark of a failed measurement) are left out.
    """

    name: str = Field(pattern=NAME_PATTERN)
    path: str = Field(pattern=PATH_PATTERN)
    aggregate: Aggregate | None = None

    @model_validator(mode="after")
    def _check_aggregate(self) -> _ResultQuantity:
        stars = self.path.split(".").count("*")
        if stars > 1:
            raise ValueError(f"path: {self.path!r} has {stars} '*' segments; at most one is allowed")
        if stars and self.aggregate is None:
            raise ValueError(f"aggregate: path {self.path!r} collects a list ('*'); say how to combine it "
                             "(mean, median, min or max)")
        if self.aggregate is not None and not stars:
            raise ValueError(f"aggregate: {self.aggregate!r} needs a '*' segment in path {self.path!r}")
        return self


class Objective(_ResultQuantity):
    """A quantity to maximise or minimise, read from each result.

    Args:
        name: identifier of the objective.
        path: dotted path into the result's ``data`` (``degradationEOL.0.end_of_life``);
            integer segments index lists, negative ones from the end; one ``*``
            segment collects every entry of a list.
        aggregate: how a ``*`` path's values become one (``mean``, ``median``,
            ``min``, ``max``); required with ``*``, refused without.
        direction: ``"maximize"`` or ``"minimize"``.
        threshold: worst acceptable value; the reference point for hypervolume with
            several objectives (optional).
        target: value at which this objective counts as reached, for stopping (optional).
    """

    direction: Literal["maximize", "minimize"] = "maximize"
    threshold: float | None = None
    target: float | None = None


class OutcomeConstraint(_ResultQuantity):
    """A measured quantity that must stay on one side of a bound.

    Args:
        name: identifier.
        path: dotted path into the result's ``data`` (``*`` as for :class:`Objective`).
        aggregate: how a ``*`` path's values become one.
        relation: ``"<="`` or ``">="``.
        bound: the bound.
    """

    relation: Literal["<=", ">="]
    bound: float


class RequestTemplate(_Strict):
    """How a proposal becomes a request to the intention server.

    String values in ``parameters`` may hold placeholders ``{name}`` naming campaign
    parameters; a string that is exactly one placeholder is replaced by the value with
    its type (a float stays a float), otherwise by its text.

    Args:
        quantity: the quantity to request (``degradationEOL``).
        methods: the methods that may serve it (at least one).
        parameters: the request's ``parameters`` object, with placeholders.
        priority: request priority, higher first.
    """

    quantity: str = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0

    def placeholders(self) -> set[str]:
        """Return the parameter names that the template refers to."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, str):
                for _, field, _, _ in string.Formatter().parse(node):
                    if field is not None:
                        found.add(field)
            elif isinstance(node, dict):
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.parameters)
        return found


class StrategyChoice(_Strict):
    """Which strategy proposes experiments, by registry name, and its settings.

    Args:
        name: a name in ``labweave.optimizer.strategies`` (``bayesian``, ``random``).
        settings: the strategy's settings; checked against its settings model when
            the campaign is loaded.
    """

    name: str = "bayesian"
    settings: dict[str, Any] = Field(default_factory=dict)


class StoppingRule(_Strict):
    """When a campaign stops before its budget is spent.

    Args:
        no_improvement_in: stop after this many results without improving the best
            value (of the single objective, or of the Pareto front with several).
        min_improvement: an improvement smaller than this does not count.
        stop_on_targets: stop once every objective with a ``target`` has reached it.
    """

    no_improvement_in: int | None = Field(default=None, ge=1)
    min_improvement: float = Field(default=0.0, ge=0.0)
    stop_on_targets: bool = True


class MlipLearning(_Strict):
    """How a multi-fidelity campaign teaches its machine-learned potential (the ``chgnet`` fidelity).

    It lives beside the strategy, not in its settings: the fine-tunings are
    requests the campaign makes (a quantity of their own, ``mlip_fine_tuning``),
    not points the strategy proposes; the strategy only sees their effect (the
    model that computes its screens, and the committee's variance as those
    screens' noise). ``labweave.optimizer.mlip_learning`` reads it.

    Args:
        every: new target-fidelity results between two fine-tunings (the first after ``every``).
        epochs: passes over the training cells of each fine-tuning.
        committee: models trained (their spread is each screen's uncertainty; 1: none).
        eos_points: volumes of each example's equation of state given as training energies besides V0.
        seed: seed of the first committee member.
        cost: what one fine-tuning is charged to the strategy's cost budget, in its units; ``None``:
            the CPU seconds its result records (only where the budget is in CPU seconds, the
            fidelities' costs measured with ``cost_records``).
    """

    every: int = Field(default=5, ge=1)
    epochs: int = Field(default=10, ge=1, le=50)
    committee: int = Field(default=3, ge=1, le=5)
    eos_points: int = Field(default=4, ge=0, le=6, multiple_of=2)
    seed: int = Field(default=0, ge=0)
    cost: float | None = Field(default=None, ge=0)


class CampaignSpec(_Strict):
    """A campaign as written in its TOML file.

    Args:
        name: slug naming the campaign.
        description: free text.
        request: what to request and how parameters enter the request.
        space: the search space.
        objectives: one or several objectives; names unique.
        outcome_constraints: measured quantities that must respect bounds.
        strategy: the strategy and its settings.
        batch_size: proposals requested per turn (requests in flight at most).
        initial_design: number of space-filling points before the model takes over.
        budget: maximum number of requests the campaign makes.
        stopping: early-stopping rule.
        requires_approval: proposals wait as ``proposed`` for an operator's approval.
        mlip_learning: fine-tune the campaign's MLIP on its target-fidelity results (multi-fidelity
            campaigns with a ``chgnet`` fidelity).
    """

    name: str = Field(pattern=SLUG_PATTERN)
    description: str = ""
    request: RequestTemplate
    space: SearchSpaceSpec
    objectives: list[Objective] = Field(min_length=1)
    outcome_constraints: list[OutcomeConstraint] = Field(default_factory=list)
    strategy: StrategyChoice = Field(default_factory=StrategyChoice)
    batch_size: int = Field(default=1, ge=1, le=64)
    initial_design: int = Field(default=3, ge=0)
    budget: int = Field(ge=1)
    stopping: StoppingRule = Field(default_factory=StoppingRule)
    requires_approval: bool = False
    mlip_learning: MlipLearning | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> CampaignSpec:
        names = [o.name for o in self.objectives] + [c.name for c in self.outcome_constraints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"objectives: objective and outcome-constraint names must be unique: {duplicates}")
        parameter_names = {p.name for p in self.space.parameters}
        unknown = sorted(self.request.placeholders() - parameter_names)
        if unknown:
            raise ValueError(f"request.parameters: placeholders name unknown parameters: {unknown}")
        if self.initial_design > self.budget:
            raise ValueError(f"initial_design: {self.initial_design} exceeds the budget of {self.budget}")
        return self


def resolve_path(data: Any, path: str) -> Any:
    """Follow a dotted path into nested dicts and lists.

    Args:
        data: the result data.
        path: dotted path; integer segments index lists (negative from the end).

    Returns:
        The value found.

    Raises:
        KeyError: naming the segment that is missing.
    """
    node = data
    walked: list[str] = []
    for segment in path.split("."):
        walked.append(segment)
        if isinstance(node, dict):
            if segment not in node:
                raise KeyError(f"{'.'.join(walked)}: no key {segment!r}")
            node = node[segment]
        elif isinstance(node, list) and re.fullmatch(r"-?\d+", segment):
            index = int(segment)
            if not -len(node) <= index < len(node):
                raise KeyError(f"{'.'.join(walked)}: index {index} out of range for a list of {len(node)}")
            node = node[index]
        else:
            raise KeyError(f"{'.'.join(walked)}: cannot index {type(node).__name__} with {segment!r}")
    return node


def _failed(entry: Any) -> bool:
    meta = entry.get("meta") if isinstance(entry, dict) else None
    return isinstance(meta, dict) and meta.get("success") is False


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"{where} holds {raw!r}, not a number")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where} holds {raw!r}, not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{where} holds a non-finite value {number}")
    return number


def read_quantity(data: Any, quantity: Objective | OutcomeConstraint) -> float:
    """Read an objective's or outcome constraint's value from a result's data.

    Args:
        data: the result's ``data`` object.
        quantity: what to read (its ``path`` and, for a ``*`` path, its ``aggregate``).

    Returns:
        The number (for a ``*`` path, the aggregate over the entries not marked failed).

    Raises:
        ValueError: naming the quantity, its path and what could not be read.
    """
    where = f"{quantity.name}: path {quantity.path!r}"
    if "*" not in quantity.path.split("."):
        try:
            raw = resolve_path(data, quantity.path)
        except KeyError as exc:
            raise ValueError(f"{where}: {exc.args[0]}") from None
        return _number(raw, where)
    head, _, tail = f".{quantity.path}.".partition(".*.")
    head, tail = head.strip("."), tail.strip(".")
    try:
        entries = resolve_path(data, head) if head else data
    except KeyError as exc:
        raise ValueError(f"{where}: {exc.args[0]}") from None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: '*' needs a list at {head or 'the top'}, found {type(entries).__name__}")
    values = []
    for i, entry in enumerate(entries):
        if _failed(entry):
            continue
        try:
            raw = resolve_path(entry, tail) if tail else entry
        except KeyError as exc:
            raise ValueError(f"{where}: entry {i}: {exc.args[0]}") from None
        values.append(_number(raw, f"{where}: entry {i}"))
    if not values:
        raise ValueError(f"{where}: none of the {len(entries)} entries is a successful measurement")
    if quantity.aggregate is None:  # a model built without validation
        raise ValueError(f"{where}: a '*' path needs an aggregate (mean, median, min or max)")
    return float(AGGREGATES[quantity.aggregate](values))


def satisfies(constraints: Sequence[OutcomeConstraint], values: Mapping[str, float]) -> bool:
    """Whether measured values satisfy every outcome constraint (a missing value does not)."""
    for c in constraints:
        if c.name not in values:
            return False
        value = float(values[c.name])
        if (c.relation == "<=" and value > c.bound) or (c.relation == ">=" and value < c.bound):
            return False
    return True
