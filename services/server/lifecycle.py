"""The request lifecycle: statuses, who may move a request between them.

One table, checked in one place (:func:`check`), in the manner of bluesky's
RunEngine state machine. FINALES2's statuses come first; labweave adds
``failed`` and ``proposed`` and the late-result path.
"""

from __future__ import annotations

import enum

from labweave.schemas.core import RequestStatus as S

from .errors import Conflict, Forbidden


class Actor(str, enum.Enum):
    REQUESTER = "requester"  # who posted the request (or any requester-role user for new ones)
    TENANT = "tenant"  # a tenant able to serve the request
    OWNER = "owner"  # the tenant holding the request's lease
    LATE_OWNER = "late_owner"  # the last holder, whose lease ran out, while nobody else holds it
    OPERATOR = "operator"
    SYSTEM = "system"  # the lease sweeper


TRANSITIONS: dict[tuple[S | None, S], frozenset[Actor]] = {
    (None, S.PENDING): frozenset({Actor.REQUESTER, Actor.TENANT, Actor.OPERATOR}),
    (None, S.PROPOSED): frozenset({Actor.REQUESTER, Actor.OPERATOR}),
    (None, S.UNSOLICITED): frozenset({Actor.TENANT, Actor.OPERATOR}),
    (S.PENDING, S.RESERVED): frozenset({Actor.TENANT}),
    (S.RESERVED, S.RESOLVED): frozenset({Actor.OWNER}),
    (S.PENDING, S.RESOLVED): frozenset({Actor.LATE_OWNER}),
    (S.FAILED, S.RESOLVED): frozenset({Actor.LATE_OWNER}),
    (S.RESERVED, S.PENDING): frozenset({Actor.OWNER, Actor.OPERATOR, Actor.SYSTEM}),
    (S.PENDING, S.RETRACTED): frozenset({Actor.REQUESTER, Actor.OPERATOR}),
    (S.RESERVED, S.RETRACTED): frozenset({Actor.REQUESTER, Actor.OPERATOR}),
    (S.PROPOSED, S.RETRACTED): frozenset({Actor.REQUESTER, Actor.OPERATOR}),
    (S.RESERVED, S.FAILED): frozenset({Actor.OWNER, Actor.OPERATOR, Actor.SYSTEM}),
    (S.PENDING, S.FAILED): frozenset({Actor.OPERATOR, Actor.SYSTEM}),
    (S.PROPOSED, S.PENDING): frozenset({Actor.OPERATOR}),
}


def check(current: S | None, new: S, actors: set[Actor]) -> None:
    """Allow the transition or raise.

    Raises:
        Conflict: no such transition exists from the current status (409).
        Forbidden: the transition exists, but not for these actors (403).
    """
    allowed = TRANSITIONS.get((current, new))
    if allowed is None:
        where = current.value if current else "(new)"
        raise Conflict(f"a {where} request cannot become {new.value}")
    if not allowed & actors:
        names = ", ".join(sorted(a.value for a in allowed))
        raise Forbidden(f"only {names} may move a {current.value if current else 'new'} request to {new.value}")
