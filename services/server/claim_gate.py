"""The gate of a claim: what must hold when a tenant takes work, read in the claim's first statement.

A claim is refused if its user was disabled or its token revoked, if its
tenant was deactivated or emergency-stopped, and while an operator has the
lab paused. Each rule lives with its subject (:func:`.auth.admitted`,
:func:`.registry.check_serving`, :func:`.lab_pause.refuse_if_paused`); here
the rows they judge (the user's, the tenant's and ``lab_state``) are read in
the same statement as the first candidates for the claim, in the claim's own
transaction. On PostgreSQL that is one round trip instead of one short
transaction per check, and every replica judges the state as of the claim
itself, not as of a cache: an emergency stop or a pause made through another
replica holds for the very next claim.

The statement always gives at least one row: the gate's columns, joined to
the candidates (none: the candidate columns are NULL).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, literal_column, select, true

from .auth import ACCOUNT_COLUMNS
from .db.tables import LabState, Tenant, User, table_of

STATE = table_of(LabState)
TENANT = table_of(Tenant)
USER = table_of(User)

#: (label, column): the user's account (in :data:`.auth.ACCOUNT_COLUMNS`' order), its tenant, the lab's pause.
_ACCOUNT = [(f"gate_user_{n}", USER.c[n]) for n in ACCOUNT_COLUMNS]
_TENANT = [(f"gate_tenant_{n}", TENANT.c[n]) for n in ("uuid", "name", "is_active", "stop_requested")]
_LAB = [(f"gate_lab_{n}", STATE.c[n]) for n in ("paused", "release_running", "reason", "changed_by", "changed")]
NOT_PAUSED = LabState()
COLUMNS = [column.label(label) for label, column in _ACCOUNT + _TENANT + _LAB]


def gated(candidates: Select | None = None) -> Select:
    """The gate's columns for user ``g_username`` and tenant ``g_tenant``, with ``candidates``' rows (if given)."""
    anchor = select(literal_column("1").label("one")).subquery("anchor")
    joined = (anchor.outerjoin(USER, USER.c.username == bindparam("g_username"))
              .outerjoin(TENANT, TENANT.c.uuid == bindparam("g_tenant"))
              .outerjoin(STATE, STATE.c.id == 1))
    if candidates is None:
        return select(*COLUMNS).select_from(joined)
    found = candidates.subquery("candidate")
    return select(*COLUMNS, *found.c).select_from(joined.outerjoin(found, true()))


def params(username: str, tenant_uuid: str) -> dict[str, Any]:
    return {"g_username": username, "g_tenant": tenant_uuid}


@dataclass(frozen=True)
class Gate:
    """The gate's columns of one row of :func:`gated`."""

    row: Any

    def account(self) -> tuple[Any, ...] | None:
        """The user's ``(role, tenant_uuid, is_active, token_generation)``; None if no such user."""
        values = tuple(getattr(self.row, label) for label, _ in _ACCOUNT)
        return None if values[0] is None else values

    def tenant(self) -> SimpleNamespace | None:
        """The tenant's ``name``, ``is_active`` and ``stop_requested``; None if it is not registered."""
        if getattr(self.row, "gate_tenant_uuid") is None:
            return None
        return SimpleNamespace(**{label.removeprefix("gate_tenant_"): getattr(self.row, label) for label, _ in _TENANT})

    def lab(self) -> LabState:
        """The lab's pause as ``lab_state`` holds it (not paused if the row was never written)."""
        if not getattr(self.row, "gate_lab_paused"):
            return NOT_PAUSED
        return LabState(**{label.removeprefix("gate_lab_"): getattr(self.row, label) for label, _ in _LAB})
