"""The formulas a campaign's strategy reports (a symbolic model such as SISSO), as lines of text.

The optimizer daemon keeps them in the campaign's state under ``formulas``:
one formula as text, a list of them (each text, or an object with a
``formula`` or ``expression`` and its figures), or an object naming each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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
