"""Campaign files: loading with readable errors, and a campaign's bookkeeping.

A campaign is a TOML file (see ``optimizer/campaigns/``) checked by
:class:`~labweave.schemas.campaign.CampaignSpec` and by its strategy's settings
model. :func:`load_campaign` turns every problem into a :class:`CampaignFileError`
whose lines read ``file:line: field.path: message`` (the line where the TOML
says it, or where the field or its closest enclosing table is written).

:class:`Campaign` holds the pure logic the optimizer daemon needs each turn:
how many proposals to ask for, how to turn a proposal into a request, how to
read objective values from a result, and when to stop. Its state (the
observations and requests in flight) is passed in, because it lives in the
server's database.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labweave.optimizer.space import ParameterError, SearchSpace
from labweave.optimizer.strategies import Observation, Strategy, get_strategy, settings_model
from labweave.schemas.campaign import CampaignSpec, Objective, OutcomeConstraint, read_quantity, satisfies

logger = logging.getLogger(__name__)

#: Folder of the example campaigns shipped with labweave.
EXAMPLES = Path(__file__).resolve().parent / "campaigns"

_UNION_TAGS = {"continuous", "integer", "categorical"}


@dataclass(frozen=True)
class CampaignProblem:
    """One problem found in a campaign file.

    Args:
        field: dotted field path (``space.parameters[1].upper``), empty for syntax errors.
        message: what is wrong.
        line: 1-based line in the file, if known.
    """

    field: str
    message: str
    line: int | None = None


class CampaignFileError(ValueError):
    """A campaign file is invalid.

    Args:
        source: the file name (or ``<string>``).
        problems: every problem found.
    """

    def __init__(self, source: str, problems: Sequence[CampaignProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = []
        for p in self.problems:
            where = f"{source}:{p.line}" if p.line is not None else source
            lines.append(f"{where}: {p.field}: {p.message}" if p.field else f"{where}: {p.message}")
        super().__init__("invalid campaign\n" + "\n".join(lines))


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and check a campaign TOML file.

    Args:
        path: the file.

    Returns:
        The validated campaign; its strategy settings have been checked against
        the strategy's settings model and include ``initial_design``.

    Raises:
        CampaignFileError: naming the line and the field of each problem.
        OSError: if the file cannot be read.
    """
    path = Path(path)
    return parse_campaign(path.read_text(encoding="utf-8"), source=path.name, folder=path.parent)


def parse_campaign(text: str, source: str = "<string>", folder: Path | None = None) -> CampaignSpec:
    """Check a campaign given as TOML text (see :func:`load_campaign`).

    Args:
        text: TOML text.
        source: name used in error messages.
        folder: where files the campaign names (``cost_records``) are; the
            current folder if not given.

    Returns:
        The validated campaign.

    Raises:
        CampaignFileError: naming the line and the field of each problem.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(match.group(1)) if match else None)
        raise CampaignFileError(source, [CampaignProblem("", f"TOML syntax: {exc}", line)]) from None
    lines = _toml_key_lines(text)
    raw_settings = data.get("strategy", {}).get("settings")
    measured = isinstance(raw_settings, dict) and "cost_records" in raw_settings
    data = _measured_costs(data, folder or Path("."), source, lines)
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignFileError(source, _problems_from(exc, lines)) from None
    return _check_mlip_learning(_check_strategy(spec, source, lines), source, lines, measured)


def _measured_costs(data: dict[str, Any], folder: Path, source: str,
                    lines: dict[tuple[Any, ...], int]) -> dict[str, Any]:
    """Fill in each fidelity's cost from measured CPU seconds, when the strategy names its records.

    ``strategy.settings.cost_records`` names a JSON list of
    :class:`~labweave.optimizer.costs.CostRecord` (relative to the campaign
    file), and ``cost_atoms`` the atoms of the campaign's cells; a fidelity
    without a ``cost`` then costs what :class:`~labweave.optimizer.costs.CostModel`,
    fitted to those records, predicts for a cell of that size (at the median
    k-points its method was measured with on cells of that size), in CPU seconds. Both keys are
    removed before the strategy's settings are checked.
    """
    settings = data.get("strategy", {}).get("settings")
    if not isinstance(settings, dict) or "cost_records" not in settings:
        return data
    from labweave.optimizer.costs import CostModel, CostRecord

    where = ("strategy", "settings", "cost_records")
    settings = dict(settings)
    name = settings.pop("cost_records")
    atoms = settings.pop("cost_atoms", 1)
    try:
        records = [CostRecord.model_validate(r) for r in json.loads((folder / str(name)).read_text())]
        model = CostModel(records)
        fidelities = []
        for fidelity in settings.get("fidelities", []):
            if isinstance(fidelity, dict) and "cost" not in fidelity:
                method = str(fidelity.get("method"))
                measured = [r for r in records if r.method == method]
                kpoints = [r.kpoints for r in measured if r.n_atoms == int(atoms)] or [r.kpoints for r in measured]
                k = int(statistics.median(kpoints)) if kpoints else 1
                fidelity = {**fidelity, "cost": round(model.seconds(method, int(atoms), k), 3)}
            fidelities.append(fidelity)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = CampaignProblem("strategy.settings.cost_records", f"{name}: {exc}", _line_of(where, lines))
        raise CampaignFileError(source, [problem]) from None
    settings["fidelities"] = fidelities
    logger.info("fidelity costs measured (%s): %s", name, {f.get("method"): f.get("cost") for f in fidelities})
    return {**data, "strategy": {**data["strategy"], "settings": settings}}


def _check_strategy(spec: CampaignSpec, source: str, lines: dict[tuple[Any, ...], int]) -> CampaignSpec:
    """Validate the strategy name and settings; fold ``initial_design`` into the settings."""
    try:
        model = settings_model(spec.strategy.name)
    except KeyError as exc:
        loc: tuple[str, ...] = ("strategy", "name")
        raise CampaignFileError(source, [CampaignProblem("strategy.name", exc.args[0], _line_of(loc, lines))]) from None
    settings = dict(spec.strategy.settings)
    if "initial_design" in settings and settings["initial_design"] != spec.initial_design:
        loc = ("strategy", "settings", "initial_design")
        problem = CampaignProblem(
            "strategy.settings.initial_design",
            f"conflicts with initial_design = {spec.initial_design}; set it in one place",
            _line_of(loc, lines),
        )
        raise CampaignFileError(source, [problem])
    settings["initial_design"] = spec.initial_design
    try:
        checked = model.model_validate(settings)
    except ValidationError as exc:
        raise CampaignFileError(source, _problems_from(exc, lines, prefix=("strategy", "settings"))) from None
    try:
        SearchSpace(spec.space)
    except ParameterError as exc:
        loc = ("space", "constraints")
        raise CampaignFileError(source, [CampaignProblem("space.constraints", str(exc), _line_of(loc, lines))]) from None
    strategy = spec.strategy.model_copy(update={"settings": checked.model_dump(mode="json")})
    return spec.model_copy(update={"strategy": strategy})


def _check_mlip_learning(spec: CampaignSpec, source: str, lines: dict[tuple[Any, ...], int],
                         measured_costs: bool) -> CampaignSpec:
    """Check ``[mlip_learning]`` against the rest of the campaign; hand the committee's variance to the strategy.

    The campaign must have a fidelity ladder with the MLIP (``chgnet``) below its target, its
    target's cells must be small enough to learn from, and a cost budget must say what a
    fine-tuning costs unless it is in CPU seconds (``cost_records``). With the co-kriging model,
    the strategy's ``noise_value`` is set to :data:`~labweave.optimizer.mlip_learning.NOISE_VALUE`,
    the value the optimizer daemon puts each screen's committee variance under.
    """
    learning = spec.mlip_learning
    if learning is None:
        return spec
    from labweave.optimizer import mlip_learning as ml

    settings = dict(spec.strategy.settings)

    def problem(field: str, message: str) -> CampaignFileError:
        loc = tuple(_parse_loc(field))
        return CampaignFileError(source, [CampaignProblem(field, message, _line_of(loc, lines))])

    ladder = [f.get("method") for f in settings.get("fidelities") or [] if isinstance(f, Mapping)]
    if ml.MLIP_METHOD not in ladder:
        raise problem("mlip_learning", f"needs a fidelity ladder with the MLIP (method {ml.MLIP_METHOD!r}) in "
                      "strategy.settings.fidelities (the multifidelity strategy)")
    target = ladder[-1]
    if target == ml.MLIP_METHOD:
        raise problem("mlip_learning", f"the MLIP ({ml.MLIP_METHOD!r}) is the target fidelity; it learns from the "
                      "results of a dearer target above it in strategy.settings.fidelities")
    for method in (ml.MLIP_METHOD, target):
        if method not in spec.request.methods:
            raise problem("request.methods", f"must include {method!r} (mlip_learning)")
    try:
        for point in SearchSpace(spec.space).sample_points(3, seed=0):
            point[settings.get("fidelity_parameter", "method")] = target
            ml.check_small_cell(Campaign(spec).build_request(point)["parameters"].get(target, {}))
    except ValueError as exc:
        raise problem(f"request.parameters.{target}", f"mlip_learning learns from the target's cells, and {exc}") \
            from None
    if settings.get("budget") is not None and learning.cost is None and not measured_costs:
        raise problem("mlip_learning.cost", "the cost budget is in the fidelities' cost units, not in CPU seconds "
                      "(no cost_records): say what one fine-tuning costs in those units")
    path = spec.objectives[0].path
    if path in ml.STD_OF:
        if settings.get("model", "cokriging") != "cokriging":
            raise problem("strategy.settings.model", "mlip_learning hands the committee's variance to the "
                          "co-kriging model only; use model = 'cokriging'")
        if settings.get("noise_value") not in (None, ml.NOISE_VALUE):
            raise problem("strategy.settings.noise_value", f"with mlip_learning the screens' noise is the MLIP "
                          f"committee's variance ({ml.NOISE_VALUE!r}); leave it unset")
        settings["noise_value"] = ml.NOISE_VALUE
    strategy = spec.strategy.model_copy(update={"settings": settings})
    return spec.model_copy(update={"strategy": strategy})


def _problems_from(
    exc: ValidationError, lines: dict[tuple[Any, ...], int], prefix: tuple[Any, ...] = ()
) -> list[CampaignProblem]:
    problems = []
    for error in exc.errors():
        loc = prefix + _clean_loc(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        named = re.match(r"^([A-Za-z_][A-Za-z0-9_.\[\]]*): (.*)$", message, re.DOTALL)
        if named and error["type"] == "value_error":
            # A model-level check names the field it is about at the start of its message.
            loc = loc + _parse_loc(named.group(1))
            message = named.group(2)
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field missing"
        problems.append(CampaignProblem(_format_loc(loc), message, _line_of(loc, lines)))
    return problems


def _parse_loc(text: str) -> tuple[Any, ...]:
    """``constraints[1].coefficients`` -> ``("constraints", 1, "coefficients")``."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+", text))


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop discriminated-union tags (``parameters.0.continuous.upper`` -> ``parameters.0.upper``)."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        if part in _UNION_TAGS and i > 0 and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(campaign)"


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    """Line of the longest prefix of ``loc`` that the file writes explicitly."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", key)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _toml_key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map field paths to the line that writes them, for error messages.

    Tables (``[a.b]``), arrays of tables (``[[a.b]]``, indexed in order) and
    ``key = value`` lines are recorded; values spread over several lines
    (multi-line arrays and strings) are attributed to their key's line.

    Args:
        text: TOML text (already known to parse).

    Returns:
        ``{(segment, ...): line}`` with integer segments for array-of-table indices.
    """
    lines: dict[tuple[Any, ...], int] = {}
    counters: dict[tuple[Any, ...], int] = {}
    current: tuple[Any, ...] = ()
    depth = 0  # open brackets/braces of a value spanning lines
    in_multiline_string: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_multiline_string is not None:
            if in_multiline_string in line:
                in_multiline_string = None
            continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        header = _HEADER.match(line)
        if header:
            path = _split_key(header.group(2))
            if header.group(1) == "[[":
                base = _resolve_arrays(path[:-1], counters) + path[-1:]
                counters[base] = counters.get(base, -1) + 1
                current = base + (counters[base],)
            else:
                current = _resolve_arrays(path, counters)
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            full = current + _split_key(key.group(1))
            lines.setdefault(full, number)
            value = line[key.end() :]
            for quote in ('"""', "'''"):
                if value.count(quote) == 1:
                    in_multiline_string = quote
            if in_multiline_string is None:
                depth = max(0, _bracket_balance(value))
    return lines


def _resolve_arrays(path: tuple[str, ...], counters: dict[tuple[Any, ...], int]) -> tuple[Any, ...]:
    """Insert the current index after each prefix that is an array of tables."""
    out: tuple[Any, ...] = ()
    for part in path:
        out = out + (part,)
        if out in counters:
            out = out + (counters[out],)
    return out


def _bracket_balance(text: str) -> int:
    """Open minus closed brackets and braces outside strings and comments."""
    balance, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            balance += 1
        elif ch in "]}":
            balance -= 1
    return balance


# --------------------------------------------------------------------- running
class Campaign:
    """A loaded campaign: its space, strategy, request template and stopping rule.

    Args:
        spec: the validated campaign (from :func:`load_campaign`).
    """

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        self.space = SearchSpace(spec.space)

    @classmethod
    def from_file(cls, path: str | Path) -> Campaign:
        """Load a campaign file (see :func:`load_campaign`)."""
        return cls(load_campaign(path))

    def make_strategy(self) -> Strategy:
        """Build the campaign's strategy from the registry."""
        settings = {**self.spec.strategy.settings, "initial_design": self.spec.initial_design}
        return get_strategy(
            self.spec.strategy.name,
            settings,
            space=self.space,
            objectives=self.spec.objectives,
            outcome_constraints=self.spec.outcome_constraints,
        )

    def proposals_wanted(self, requests_made: int, in_flight: int) -> int:
        """How many proposals to ask for now.

        Args:
            requests_made: requests the campaign has made so far (any status).
            in_flight: of those, the ones not yet resolved.

        Returns:
            ``min(batch_size - in_flight, budget - requests_made)``, at least 0.
        """
        return max(0, min(self.spec.batch_size - in_flight, self.spec.budget - requests_made))

    def build_request(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Fill the request template with a proposal's parameters.

        Args:
            parameters: the proposal's parameters (validated against the space).

        Returns:
            ``{"quantity", "methods", "parameters"}`` for the intention server.

        Raises:
            ParameterError: if the parameters do not fit the space.
        """
        values = self.space.validate(parameters)
        template = self.spec.request
        return {
            "quantity": template.quantity,
            "methods": list(template.methods),
            "parameters": _fill(template.parameters, values),
        }

    def read_values(self, result_data: Mapping[str, Any]) -> dict[str, float]:
        """Read objectives and outcome constraints from a result's data.

        Args:
            result_data: the result's ``data`` object.

        Returns:
            ``{name: value}`` for every objective and outcome constraint.

        Raises:
            ValueError: naming the objective and the path that could not be read.
        """
        measured: list[Objective | OutcomeConstraint] = [*self.spec.objectives, *self.spec.outcome_constraints]
        return {item.name: read_quantity(result_data, item) for item in measured}

    def feasible(self, values: Mapping[str, float]) -> bool:
        """Whether an observation satisfies the outcome constraints (a missing value does not)."""
        return satisfies(self.spec.outcome_constraints, values)

    def target_fidelity(self) -> tuple[str, str] | None:
        """``(parameter, method)`` naming the target fidelity (the ladder's last, dearest rung) where the
        strategy has a fidelity ladder; ``None`` where every result counts alike."""
        settings = self.spec.strategy.settings
        ladder = settings.get("fidelities")
        if not ladder:
            return None
        return settings.get("fidelity_parameter", "method"), ladder[-1]["method"]

    def at_target(self, point: Mapping[str, Any] | None) -> bool:
        """Whether a result at ``point`` counts for the best value: every result, or with a fidelity
        ladder only those of the target fidelity (a cheap screen is a hint, not a finding)."""
        target = self.target_fidelity()
        if target is None:
            return True
        name, method = target
        return point is not None and point.get(name) == method

    def stop_reason(self, observations: Sequence[Observation], requests_made: int) -> str | None:
        """Why the campaign should stop now, or ``None`` to go on.

        Args:
            observations: ``(parameters, values)`` in the order the results arrived.
            requests_made: requests made so far.

        Returns:
            A sentence, or ``None``.
        """
        spec = self.spec
        if requests_made >= spec.budget:
            return f"budget of {spec.budget} requests spent"
        observations = [o for o in observations if self.at_target(o[0])]
        feasible = [values for _, values in observations if self.feasible(values)]
        targets = [(o.name, o.target, o.direction) for o in spec.objectives if o.target is not None]
        if spec.stopping.stop_on_targets and targets and feasible:
            for values in feasible:
                if all(_reached(values[name], target, direction) for name, target, direction in targets):
                    names = ", ".join(f"{name} {target:g}" for name, target, _ in targets)
                    return f"target reached ({names})"
        window = spec.stopping.no_improvement_in
        if window is not None and len(observations) > window:
            last = self._last_improvement(observations)
            if len(observations) - 1 - last >= window:
                return f"no improvement in the last {window} results"
        return None

    def _last_improvement(self, observations: Sequence[Observation]) -> int:
        """Index of the last observation that improved the best (or the Pareto front)."""
        objectives = self.spec.objectives
        tol = self.spec.stopping.min_improvement
        last = -1
        front: list[list[float]] = []
        best: float | None = None
        for i, (_, values) in enumerate(observations):
            if not self.feasible(values):
                continue
            signed = [values[o.name] * (1 if o.direction == "maximize" else -1) for o in objectives]
            if len(objectives) == 1:
                if best is None or signed[0] > best + tol:
                    best, last = signed[0], i
                continue
            if not any(all(f[k] >= signed[k] - tol for k in range(len(signed))) for f in front):
                front = [f for f in front if not all(signed[k] >= f[k] for k in range(len(signed)))] + [signed]
                last = i
        return last


def _reached(value: float, target: float, direction: str) -> bool:
    return value >= target if direction == "maximize" else value <= target


def _fill(node: Any, values: Mapping[str, Any]) -> Any:
    """Replace ``{name}`` placeholders in a template, keeping types for whole-string placeholders."""
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, str):
        parsed = list(string.Formatter().parse(node))
        if len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1] is not None and not parsed[0][2]:
            return values[parsed[0][1]]
        return node.format_map(values)
    return node
