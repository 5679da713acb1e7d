"""The formulas a campaign's strategy reports (a symbolic model such as SISSO), as lines of text.

The optimizer daemon keeps them in the campaign's state under ``formulas``:
one formula as text, a list of them (each text, or an object with a
``formula`` or ``expression`` and its figures), or an object naming each.


A strategy that proposes from a symbolic model (``sisso``) also writes its
leading formulas into each proposal's provenance (``formulas``: objects with
``formula``, ``descriptor``, ``members`` and ``of``); :func:`formula_history`
reads from the campaign's requests how the leading formula changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labweave.schemas.api import RequestDetail

#: Keys that hold a formula's text in a formula object.
TEXT_KEYS = ("formula", "expression")


def _figure(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    text = next((item[k] for k in TEXT_KEYS if item.get(k)), None)
    if text is None:
        return json.dumps(item, sort_keys=True, default=str)
    extra = ", ".join(f"{k} {_figure(v)}" for k, v in item.items()
                      if k not in TEXT_KEYS and isinstance(v, (int, float, str)) and not isinstance(v, bool))
    return f"{text}" + (f"  ({extra})" if extra else "")


def formula_lines(found: Any) -> list[str]:
    """The reported formulas, one line each (empty if there are none)."""
    if not found:
        return []
    if isinstance(found, str):
        return [found]
    if isinstance(found, Mapping):
        return [f"{k}: {v}" for k, v in found.items()]
    if isinstance(found, list):
        return [_line(item) for item in found]
    return [str(found)]


@dataclass(frozen=True)
class FormulaStep:
    """The leading formula from one request of a campaign on, until it changed.

    Attributes:
        n: the request's number in the campaign (1 for its first request).
        request_uuid: that request.
        formula: the equation, with its coefficients then.
        descriptor: the descriptor features (what changes when the model changes its mind).
        agreement: how many ensemble members chose it (``"9/16 members"``), or empty.
        requests: how many requests in a row carried it.
    """

    n: int
    request_uuid: str
    formula: str
    descriptor: str
    agreement: str
    requests: int


def formula_history(requests: Sequence[RequestDetail]) -> list[FormulaStep]:
    """How a campaign's leading formula changed, from its requests' provenance (oldest first).

    A new step starts where the leading descriptor changes (new coefficients of the same
    descriptor are the same model refitted). Requests without formulas (design points,
    other strategies) and malformed entries are passed over.

    Args:
        requests: the campaign's requests in the order they were made.

    Returns:
        The steps; the last is the current formula.
    """
    steps: list[FormulaStep] = []
    for n, request in enumerate(requests, start=1):
        found = request.provenance.get("formulas") if isinstance(request.provenance, Mapping) else None
        if not isinstance(found, list) or not found or not isinstance(found[0], Mapping):
            continue
        lead = found[0]
        formula = lead.get("formula")
        if not isinstance(formula, str) or not formula:
            continue
        descriptor = str(lead.get("descriptor") or formula)
        members, of = lead.get("members"), lead.get("of")
        agreement = f"{members}/{of} members" if isinstance(members, int) and isinstance(of, int) else ""
        if steps and steps[-1].descriptor == descriptor:
            last = steps[-1]
            steps[-1] = FormulaStep(last.n, last.request_uuid, formula, descriptor, agreement, last.requests + 1)
            continue
        steps.append(FormulaStep(n, request.uuid, formula, descriptor, agreement, 1))
    return steps
