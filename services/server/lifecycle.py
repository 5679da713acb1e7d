"""The lifecycles of requests, campaigns and results: their statuses, and who may move them.

One table per kind of thing, in the manner of bluesky's RunEngine state
machine, says which status changes exist and which actors may make each.
Every change is made here, by :func:`open_request`/:func:`move_request`,
:func:`open_campaign`/:func:`move_campaign` and :func:`move_result`: each
checks its table, writes the status and records the event (the event log is
the history of every request, campaign and result) in the caller's
transaction. Nothing else in the server assigns a status.

An actor is a relationship to the thing being changed, worked out by
:func:`request_actors` (and its siblings); a principal may play several.
A status change that does not exist is refused with 409, naming both
statuses; one that exists, but not for these actors, with 403.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, String, bindparam, cast, exists, func, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from labweave.schemas.api import CampaignStatus
from labweave.schemas.core import RequestStatus as S
from labweave.schemas.core import ResultStatus as R

from .auth import Principal
from .db.driver import DriverQuery, DriverStatement
from .db.tables import Campaign, Event, Request, RequestMethod, Result, as_row, table_of
from .errors import Conflict, Forbidden, Invalid
from .events import INSERT_EVENT, event_values, record
from .registry import Catalogue


class Actor(str, enum.Enum):
    REQUESTER = "requester"  # who posted the request or created the campaign (its optimizer runs as them)
    TENANT = "tenant"  # an active tenant able to serve the request within its limits
    OWNER = "owner"  # the tenant holding the request's lease; for a result, the tenant that posted it
    LATE_OWNER = "late_owner"  # the last holder, whose lease ran out, while nobody else holds it
    OPERATOR = "operator"
    SYSTEM = "system"  # the server itself: the lease sweeper


_ANYONE_WHO_POSTS = frozenset({Actor.REQUESTER, Actor.TENANT, Actor.OPERATOR})
_CREATOR_OR_OPERATOR = frozenset({Actor.REQUESTER, Actor.OPERATOR})
_HOLDER_OR_STAFF = frozenset({Actor.OWNER, Actor.OPERATOR, Actor.SYSTEM})

#: (from, to) -> who may make the change; ``None`` is "not yet stored".
REQUEST_MOVES: dict[tuple[str | None, str], frozenset[Actor]] = {
    (None, S.PENDING): _ANYONE_WHO_POSTS,
    (None, S.PROPOSED): _CREATOR_OR_OPERATOR,
    (None, S.UNSOLICITED): frozenset({Actor.TENANT, Actor.OPERATOR}),
    (S.PENDING, S.RESERVED): frozenset({Actor.TENANT}),  # a claim, or FINALES2's reservation
    (S.RESERVED, S.RESOLVED): frozenset({Actor.OWNER}),  # its result arrives
    (S.PENDING, S.RESOLVED): frozenset({Actor.LATE_OWNER}),  # a late result, its lease expired
    (S.FAILED, S.RESOLVED): frozenset({Actor.LATE_OWNER}),
    (S.RESERVED, S.PENDING): _HOLDER_OR_STAFF,  # released, a retryable failure, or its lease expired
    (S.RESERVED, S.FAILED): _HOLDER_OR_STAFF,
    (S.PENDING, S.FAILED): frozenset({Actor.OPERATOR, Actor.SYSTEM}),
    (S.PENDING, S.RETRACTED): _CREATOR_OR_OPERATOR,
    (S.RESERVED, S.RETRACTED): _CREATOR_OR_OPERATOR,
    (S.PROPOSED, S.RETRACTED): _CREATOR_OR_OPERATOR,  # withdrawn, or rejected by an operator
    (S.PROPOSED, S.PENDING): frozenset({Actor.OPERATOR}),  # approved
}


C = CampaignStatus
CAMPAIGN_MOVES: dict[tuple[str | None, str], frozenset[Actor]] = {
    (None, C.RUNNING): _CREATOR_OR_OPERATOR,
    (None, C.PAUSED): _CREATOR_OR_OPERATOR,
    (C.RUNNING, C.PAUSED): _CREATOR_OR_OPERATOR,
    (C.PAUSED, C.RUNNING): _CREATOR_OR_OPERATOR,
    (C.RUNNING, C.FINISHED): frozenset({Actor.REQUESTER}),
    (C.PAUSED, C.FINISHED): frozenset({Actor.REQUESTER}),
    (C.RUNNING, C.STOPPED): _CREATOR_OR_OPERATOR,
    (C.PAUSED, C.STOPPED): _CREATOR_OR_OPERATOR,
}

RESULT_MOVES: dict[tuple[str | None, str], frozenset[Actor]] = {
    (R.ORIGINAL, R.AMENDED): frozenset({Actor.OWNER, Actor.OPERATOR}),
    (R.ORIGINAL, R.DELETED): frozenset({Actor.OWNER, Actor.OPERATOR}),
    (R.AMENDED, R.DELETED): frozenset({Actor.OWNER, Actor.OPERATOR}),
}


def _name(status: str | enum.Enum) -> str:
    """A status as its plain string (an enum member's value)."""
    return str(status.value) if isinstance(status, enum.Enum) else status


def _value(status: str | enum.Enum | None) -> str | None:
    return None if status is None else _name(status)


@dataclass(frozen=True)
class Table:
    """The status changes of one kind of thing and who may make each."""

    noun: str
    moves: Mapping[tuple[str | None, str], frozenset[Actor]]

    def __post_init__(self):  # keyed by plain strings: an enum member's hash is its name's, not its value's
        object.__setattr__(self, "moves", {(_value(a), _name(b)): who for (a, b), who in self.moves.items()})

    def next_statuses(self, current: str | None) -> list[str]:
        return sorted(_name(new) for old, new in self.moves if _value(old) == current)

    def who(self, current: str | enum.Enum | None, new: str | enum.Enum) -> frozenset[Actor] | None:
        """The actors allowed to make this change, or ``None`` if no such change exists."""
        return self.moves.get((_value(current), _name(new)))

    def check(self, current: str | enum.Enum | None, new: str | enum.Enum, actors: set[Actor],
              subject: str = "") -> None:
        """Allow the change or raise.

        Raises:
            Conflict: no such change exists from the current status (409).
            Forbidden: the change exists, but not for these actors (403).
        """
        old, to = _value(current), _name(new)
        this = f"{self.noun} {subject}".strip()
        if old == to:
            raise Conflict(f"{this} is already {to}")
        allowed = self.who(old, to)
        if allowed is None:
            where = old or "(new)"
            options = ", ".join(self.next_statuses(old)) or "nothing: it is final"
            raise Conflict(f"{this}: no change from {where} to {to} (a {where} {self.noun} may become {options})")
        if not allowed & actors:
            names = " or ".join(sorted(a.value for a in allowed))
            raise Forbidden(f"{this}: only the {names} may move a {old or 'new'} {self.noun} to {to}")


REQUEST = Table("request", REQUEST_MOVES)
CAMPAIGN = Table("campaign", CAMPAIGN_MOVES)
RESULT = Table("result", RESULT_MOVES)


# -- who is acting -------------------------------------------------------------
def request_actors(p: Principal, row: Any | None, cat: Catalogue) -> set[Actor]:
    """Every role the principal plays towards this request (None: a new one)."""
    actors: set[Actor] = set()
    if p.is_operator:
        actors.add(Actor.OPERATOR)
    if row is None:
        if p.role == "requester":
            actors.add(Actor.REQUESTER)
        if p.role == "tenant":
            actors.update({Actor.REQUESTER, Actor.TENANT})
        return actors
    if row.created_by == p.username:
        actors.add(Actor.REQUESTER)
    t = p.tenant_uuid
    if t:
        if row.status == S.RESERVED and row.owner_tenant_uuid == t:
            actors.add(Actor.OWNER)
        if row.owner_tenant_uuid is None and row.last_owner_uuid == t:
            actors.add(Actor.LATE_OWNER)
        tenant = cat.tenants.get(t)
        if tenant is not None and tenant.is_active and cat.can_serve(t, row.quantity, row.methods, row.parameters):
            actors.add(Actor.TENANT)
    return actors


def campaign_actors(p: Principal, row: Campaign | None) -> set[Actor]:
    """The principal's roles towards a campaign (None: a new one; tenants do not run campaigns)."""
    actors: set[Actor] = set()
    if p.is_operator:
        actors.add(Actor.OPERATOR)
    if row is None:
        if p.role != "tenant":
            actors.add(Actor.REQUESTER)
    elif row.created_by and row.created_by == p.username:
        actors.add(Actor.REQUESTER)
    return actors


def result_actors(p: Principal, row: Result) -> set[Actor]:
    actors: set[Actor] = set()
    if p.is_operator:
        actors.add(Actor.OPERATOR)
    if p.tenant_uuid and row.tenant_uuid == p.tenant_uuid:
        actors.add(Actor.OWNER)
    return actors


# -- requests (SQLAlchemy Core: the claim and result paths are hot) ---------------
REQ = table_of(Request)
METHODS = table_of(RequestMethod)
INSERT_REQUEST = DriverStatement(insert(REQ).returning(REQ.c.id), returning=True)
INSERT_METHOD = DriverStatement(insert(METHODS))
#: Compare-and-set updates, by the columns changed with the status: built once, then run with parameters.
_REQUEST_UPDATES: dict[tuple[str, ...], Any] = {}


def _request_update(columns: tuple[str, ...]):
    stmt = _REQUEST_UPDATES.get(columns)
    if stmt is None:
        unknown = [c for c in columns if c not in REQ.c or c in ("id", "uuid", "status", "updated")]
        if unknown:
            raise ValueError(f"a status change cannot set {unknown}")
        stmt = (
            update(REQ)
            .where(REQ.c.id == bindparam("b_id"), REQ.c.status == bindparam("b_from"))
            .values(status=bindparam("b_to"), updated=bindparam("b_now"),
                    **{c: bindparam(f"b_{c}") for c in columns})
            .returning(*REQ.c)
        )
        _REQUEST_UPDATES[columns] = stmt
    return stmt


#: The statements :func:`move_request` runs, compiled once for the database's driver, by the columns changed.
_DRIVER_MOVES: dict[tuple[str, tuple[str, ...]], DriverQuery] = {}


def _move_query(dialect: str, columns: tuple[str, ...]) -> DriverQuery:
    """PostgreSQL: the update with its event (:func:`_request_move`); elsewhere the update alone."""
    query = _DRIVER_MOVES.get((dialect, columns))
    if query is None:
        stmt = _request_move(columns) if dialect == "postgresql" else _request_update(columns)
        query = _DRIVER_MOVES[(dialect, columns)] = DriverQuery(stmt)
    return query


EVENT = table_of(Event)
_EVENT_COLUMNS = ("time", "kind", "subject", "from_status", "to_status", "actor", "message", "data")
_REQUEST_MOVES: dict[tuple[str, ...], Any] = {}


def _event_of(cte):
    """PostgreSQL: the insert of an event (``e_`` parameters) once per row of ``cte``: no row, no event."""
    return insert(EVENT).from_select(
        list(_EVENT_COLUMNS),
        select(*[bindparam(f"e_{n}", type_=EVENT.c[n].type) for n in _EVENT_COLUMNS]).select_from(cte),
    ).cte("logged")


def _request_move(columns: tuple[str, ...]):
    """PostgreSQL: the compare-and-set update and its event in one statement (one round trip, not two).

    The event is inserted from the updated row (``INSERT ... SELECT ... FROM moved``): no row moved, no event.
    """
    stmt = _REQUEST_MOVES.get(columns)
    if stmt is None:
        moved = _request_update(columns).cte("moved")
        stmt = select(moved).add_cte(_event_of(moved))
        _REQUEST_MOVES[columns] = stmt
    return stmt


_NEW_COLUMNS = tuple(c.name for c in REQ.c if c.name != "id")


def _request_open(parent: bool):
    """PostgreSQL: a new request, its event and its method rows in one statement, answering the request's id.

    The request's columns are ``r_`` parameters, the event's ``e_``, its methods an array (``methods``);
    with ``parent`` the request is inserted only if the request named ``parent_uuid`` exists, and the
    event and the methods are inserted from the inserted row: no parent, nothing stored and no row.
    """
    def value(name: str):
        column = REQ.c[name]
        param = bindparam(f"r_{name}", type_=column.type)
        # SQLAlchemy types the other parameters (``::VARCHAR``, ``::JSON``...), not a float, which the driver
        # types by its value: a None would reach the SELECT untyped, read as text, which no float column takes
        return cast(param, column.type) if isinstance(column.type, Float) else param

    values = select(*[value(n) for n in _NEW_COLUMNS])
    if parent:
        named = REQ.alias("parent")
        values = values.where(exists().where(named.c.uuid == bindparam("r_parent_uuid", type_=named.c.uuid.type)))
    opened = insert(REQ).from_select(list(_NEW_COLUMNS), values).returning(REQ.c.id).cte("opened")
    method = func.unnest(bindparam("methods", type_=ARRAY(String()))).table_valued("method").render_derived(name="m")
    listed = insert(METHODS).from_select(
        ["request_id", "method", "quantity"],
        select(opened.c.id, method.c.method, bindparam("r_quantity", type_=METHODS.c.quantity.type))
        .select_from(opened.join(method, literal_column("true"))),
    ).cte("listed")
    return select(opened.c.id).add_cte(_event_of(opened)).add_cte(listed)


#: PostgreSQL's statement of :func:`open_request`, compiled once, with and without a parent to check.
_DRIVER_OPENS = {parent: DriverQuery(_request_open(parent)) for parent in (False, True)}


class Moved(Conflict):
    """The request changed status since it was read (another claimer won it)."""


def open_request(conn, values: dict[str, Any], actors: set[Actor], by: str, message: str = "",
                 data: dict[str, Any] | None = None) -> int:
    """Store a new request in its first status (``values["status"]``) with its event and a row per method; its id.

    ``values`` are every column but the id (see ``requests.new_request``). A request naming a parent
    (``parent_uuid``) is stored only if that request exists. On PostgreSQL all of it is one statement
    (:func:`_request_open`), atomic in itself, so that a caller may run it in autocommit; elsewhere a
    check of the parent and three inserts in the caller's transaction.

    Raises:
        Conflict, Forbidden: the table refuses (see :meth:`Table.check`).
        Invalid: the parent request does not exist (nothing is stored).
    """
    REQUEST.check(None, values["status"], actors)
    event = event_values("request.status", values["uuid"], by, to_status=values["status"], message=message,
                         now=values["updated"], data=data, campaign=values.get("campaign"))
    parent = values.get("parent_uuid")
    if conn.dialect.name == "postgresql":
        params = {f"r_{n}": values[n] for n in _NEW_COLUMNS}
        params.update({f"e_{n}": event[n] for n in _EVENT_COLUMNS})
        params["methods"] = list(values["methods"])
        found = _DRIVER_OPENS[bool(parent)].rows(conn, params)
        if not found:
            raise Invalid(f"parent_uuid: unknown request {parent}")
        request_id: int = found[0].id
        return request_id
    if parent and conn.execute(select(REQ.c.id).where(REQ.c.uuid == parent)).first() is None:
        raise Invalid(f"parent_uuid: unknown request {parent}")
    request_id = INSERT_REQUEST.execute(conn, values)
    INSERT_EVENT.execute(conn, event)
    INSERT_METHOD.execute_many(conn, [{"request_id": request_id, "method": m, "quantity": values["quantity"]}
                                      for m in values["methods"]])
    return request_id


def move_request(conn, row: Any, new: S, actors: set[Actor], by: str, message: str = "", *,
                 now: float | None = None, data: dict[str, Any] | None = None, **changes: Any) -> Request:
    """Move a request row to ``new`` with its event, in the transaction of ``conn`` (a Core connection).

    ``row`` needs ``id``, ``uuid``, ``status`` and ``campaign`` (which never changes); ``changes``
    are other columns set with the status (the lease, the failure reason...). The update applies
    only if the row is still in ``row.status``. On PostgreSQL the update and the event are one
    statement (:func:`_request_move`); elsewhere two, in the same transaction.

    Returns:
        The request as stored now.

    Raises:
        Conflict, Forbidden: the table refuses (see :meth:`Table.check`).
        Moved: the request left ``row.status`` meanwhile.
    """
    REQUEST.check(row.status, new, actors, row.uuid)
    now = time.time() if now is None else now
    columns = tuple(sorted(changes))
    params = {"b_id": row.id, "b_from": row.status, "b_to": new.value, "b_now": now}
    params.update({f"b_{c}": changes[c] for c in columns})
    event = event_values("request.status", row.uuid, by, from_status=row.status, to_status=new.value,
                         message=message, now=now, data=data, campaign=row.campaign)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        params.update({f"e_{n}": event[n] for n in _EVENT_COLUMNS})
    found = _move_query(dialect, columns).rows(conn, params)
    if not found:
        raise Moved(f"request {row.uuid} is no longer {row.status}")
    if dialect != "postgresql":
        INSERT_EVENT.execute(conn, event)
    return as_row(found[0]._asdict(), Request)


# -- campaigns and results (ORM sessions) -----------------------------------------
def open_campaign(s: Session, row: Campaign, actors: set[Actor], by: str) -> None:
    """Add a new campaign in its first status, with its event."""
    CAMPAIGN.check(None, row.status, actors, row.name)
    s.add(row)
    record(s, "campaign.created", row.name, by, to_status=row.status, now=row.created)


def move_campaign(s: Session, row: Campaign, new: str, actors: set[Actor], by: str, message: str = "",
                  now: float | None = None) -> None:
    """Move a campaign (read in ``s``) to ``new``, with its event."""
    CAMPAIGN.check(row.status, new, actors, row.name)
    old = row.status
    row.status = _name(new)
    row.updated = time.time() if now is None else now
    s.add(row)
    record(s, "campaign.status", row.name, by, from_status=old, to_status=row.status, message=message,
           now=row.updated)


def move_result(s: Session, row: Result, new: R, actors: set[Actor], by: str, message: str = "") -> None:
    """Mark a result (read in ``s``) amended or deleted, with its event."""
    RESULT.check(row.status, new, actors, row.uuid)
    old = row.status
    row.status = new.value
    s.add(row)
    record(s, "result.status", row.uuid, by, from_status=old, to_status=new.value, message=message)
