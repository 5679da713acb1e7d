"""The event log as a server-sent event stream: one feed for ``/api/v1/events/stream`` and the dashboard.

A feed reads the ``event`` table by increasing id (so it works across
replicas sharing one database), sends each row as ``id:``/``data:`` lines
and a comment every :data:`KEEPALIVE_SECONDS` when nothing happens. A client
reconnecting with ``Last-Event-ID`` (or ``?after=``) misses nothing.

Event ids are handed out when a row is inserted, not when its transaction
commits: on PostgreSQL (and so across replicas) an event with a smaller id
can become visible after one with a larger id has been read. A reader that
moved past it would never send it. The hub therefore reads only up to the
first missing id, and waits for it up to :data:`GAP_SECONDS` (a transaction
still committing) before passing over it (a transaction rolled back: its id
is never used).

The table is read once per tick for the whole server process, not once per
stream: an :class:`EventHub` polls it while anyone listens and keeps the
newest events in memory, and each feed takes its events (filtered by kind)
from there. A lab with a dozen tenants and daemons each holding a stream
then costs one query every :data:`POLL_SECONDS`, not a dozen. A feed whose
cursor lies before what the hub holds (a client catching up) reads the table
itself until it is level.

A stream opened with a bearer token ends (its last line a comment saying
why) when the token expires, and within :data:`TOKEN_RECHECK_SECONDS` when
it stops being accepted (the user disabled, the password changed): it cannot
outlive its token. The client logs in again and reconnects from the last id
it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from . import convert
from .auth import Principal
from .errors import Unauthorized
from .events import last_id, since
from .visibility import Viewer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
#: A quiet feed looks again (is its client still there?) at least this often.
WAKE_SECONDS = 1.0
#: Rows read from the table per query.
PAGE = 500
#: Events the hub keeps in memory for feeds that fall a little behind.
KEPT = 2000
#: How long the hub waits for a missing event id (a transaction not yet committed) before passing over it.
GAP_SECONDS = 2.0
#: How often a stream opened with a token asks whether the token is still accepted.
TOKEN_RECHECK_SECONDS = 5.0


def page(lab, after: int, limit: int = PAGE, kinds: list[str] | None = None,
         principal: Principal | None = None) -> list[dict[str, Any]]:
    """Events after id ``after``, oldest first, as the API shows them (JSON-ready): those ``principal`` may see
    (``None``: every event, for the server's own readers such as the hub)."""
    viewer = None if principal is None else Viewer.of(principal, lab.registry.catalogue())
    with Session(lab.db.read) as s:
        return [convert.event(e).model_dump(mode="json") for e in since(s, after, limit, kinds, viewer=viewer)]


def visible(lab, principal: Principal, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``items`` (read by the hub for everyone) that ``principal`` may see."""
    with lab.db.read.connect() as conn:
        return Viewer.of(principal, lab.registry.catalogue()).visible_events(conn, items)


def newest_id(lab) -> int:
    """The id of the newest event (0 for none)."""
    with Session(lab.db.read) as s:
        return last_id(s)


class EventHub:
    """One reader of the event table per server process, shared by every stream.

    It polls while at least one feed is subscribed (and stops when the last one
    leaves), keeps the newest :data:`KEPT` events, and wakes the waiting feeds
    when new ones arrive.

    Args:
        lab: the server's parts (its database).
        poll_seconds: how often the table is read.
        kept: events held in memory.
    """

    def __init__(self, lab, poll_seconds: float = POLL_SECONDS, kept: int = KEPT, gap_seconds: float = GAP_SECONDS):
        self.lab = lab
        self.poll_seconds = poll_seconds
        self.gap_seconds = gap_seconds
        self._gap: tuple[int, float] | None = None  # the missing id waited for, and since when
        self._events: deque[dict[str, Any]] = deque(maxlen=kept)
        self._floor = 0  # every event with a larger id (up to the newest read) is held
        self._newest = 0
        self._subscribers = 0
        self._task: asyncio.Task | None = None
        # replaced by fresh ones each time the poller starts (asyncio.Event binds no loop until used)
        self._arrived = asyncio.Event()
        self._ready = asyncio.Event()

    @property
    def newest(self) -> int:
        """The largest event id read so far."""
        return self._newest

    @property
    def floor(self) -> int:
        """Every event after this id (up to :attr:`newest`) is held."""
        return self._floor

    @contextlib.asynccontextmanager
    async def subscription(self) -> AsyncIterator["EventHub"]:
        """Hold the hub's poller running for the duration of the block (first reading done)."""
        self._subscribers += 1
        if self._task is None or self._task.done():
            self._arrived, self._ready = asyncio.Event(), asyncio.Event()
            self._task = asyncio.create_task(self._poll(), name="event hub")
        try:
            await self._ready.wait()
            yield self
        finally:
            self._subscribers -= 1
            if self._subscribers == 0 and self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
                self._task = None

    async def _poll(self) -> None:
        try:
            if not self._events and self._newest == 0:
                self._floor = self._newest = await run_in_threadpool(newest_id, self.lab)
        except Exception as exc:  # the table is read from the start instead
            log.warning("event hub: cannot read the newest event id: %s", exc)
        finally:
            self._ready.set()
        while True:
            try:
                items = await run_in_threadpool(page, self.lab, self._newest, PAGE)
            except Exception as exc:  # the database is away for a moment: the streams wait, then go on
                log.warning("event hub: reading the event table failed: %s", exc)
                await asyncio.sleep(4 * self.poll_seconds)
                continue
            items = self._committed(items)
            if items:
                for item in items:
                    if len(self._events) == self._events.maxlen:
                        self._floor = self._events[0]["id"]  # the oldest held is about to go
                    self._events.append(item)
                self._newest = items[-1]["id"]
                arrived, self._arrived = self._arrived, asyncio.Event()
                arrived.set()
                if len(items) == PAGE:
                    continue  # more are waiting
            await asyncio.sleep(self.poll_seconds)

    def _committed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events of ``items`` (read after :attr:`newest`) that can be passed on: those before the
        first missing id, unless that id has been missing for :attr:`gap_seconds`."""
        expected = self._newest + 1
        for i, item in enumerate(items):
            if item["id"] == expected:
                expected += 1
                continue
            now = time.monotonic()
            if self._gap is None or self._gap[0] != expected:
                self._gap = (expected, now)
            if now - self._gap[1] < self.gap_seconds:
                return items[:i]  # wait: the transaction holding that id may still commit
            log.debug("event hub: ids %d..%d never committed; passing over them", expected, item["id"] - 1)
            self._gap = None
            expected = item["id"] + 1
        return items

    def after(self, cursor: int, kinds: list[str] | None = None,
              limit: int = PAGE) -> tuple[list[dict[str, Any]], int] | None:
        """Held events after ``cursor`` (of ``kinds``, at most ``limit``) and the id read up to;
        ``None`` if the hub no longer holds all events after ``cursor`` (read the table)."""
        if cursor < self._floor:
            return None
        newer = []
        for item in reversed(self._events):  # a feed is usually near the newest: walk back to it
            if item["id"] <= cursor:
                break
            newer.append(item)
        newer.reverse()
        out: list[dict[str, Any]] = []
        upto = max(cursor, self._newest)
        for item in newer:
            if kinds and item["kind"] not in kinds:
                continue
            out.append(item)
            if len(out) == limit:
                upto = item["id"]
                break
        return out, upto

    async def wait(self, timeout: float) -> None:
        """Until new events arrive, or ``timeout`` seconds."""
        arrived = self._arrived
        if arrived is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(arrived.wait(), timeout)


def hub_of(lab) -> EventHub:
    """The lab's event hub for the running event loop, made on first use (a server has one loop;
    a test client may run the same app on another)."""
    hubs = lab.event_hubs
    loop = asyncio.get_running_loop()
    hub = hubs.get(loop)
    if hub is None:
        hub = hubs[loop] = EventHub(lab)
    return hub


async def start_cursor(lab, after: int | None, last_event_id: str | None) -> int:
    """Where a stream starts: ``after``, else ``Last-Event-ID``, else the newest event (from now on)."""
    if after is None and last_event_id and last_event_id.isdigit() and len(last_event_id) <= 18:
        after = int(last_event_id)  # a longer id cannot be one of ours: the stream starts from now
    if after is None:
        after = await run_in_threadpool(newest_id, lab)
    return after


def token_problem(lab, token: str) -> str | None:
    """Why ``token`` is no longer accepted (expired, revoked, its user disabled), or None."""
    try:
        lab.auth.principal(token)
    except Unauthorized as exc:
        return exc.message
    return None


def token_expiry(lab, token: str) -> float:
    """When ``token`` expires (now, if it is no longer accepted)."""
    try:
        return lab.auth.claims(token).expires
    except Unauthorized:
        return 0.0


async def feed(request: Request, lab, cursor: int, *, principal: Principal, greeting: str,
               kinds: list[str] | None = None, named: bool = True, ended_because: Callable[[], str | None] | None = None,
               recheck_seconds: float = 30.0, token: str | None = None) -> AsyncIterator[str]:
    """The stream's text, until the client goes away: the events ``principal`` may see.

    ``named`` adds an ``event:`` line with the event's kind (the API's stream;
    the dashboard's script listens to plain messages). ``ended_because`` is
    called every ``recheck_seconds`` and says why the stream must end (an
    expired session), or ``None``; on a reason the stream sends
    ``session-ended`` and stops. A stream given the bearer ``token`` it was
    opened with ends (a last comment says why) when the token expires, and
    within :data:`TOKEN_RECHECK_SECONDS` when the token stops being accepted.
    """
    quiet = 0.0
    checked = token_checked = time.monotonic()
    expires = token_expiry(lab, token) if token is not None else None
    yield greeting
    async with hub_of(lab).subscription() as hub:
        while not await request.is_disconnected():
            reason = None
            if expires is not None and time.time() >= expires:
                reason = "token expired; log in again"
            elif token is not None and time.monotonic() - token_checked > TOKEN_RECHECK_SECONDS:
                token_checked = time.monotonic()
                reason = await run_in_threadpool(token_problem, lab, token)
            if reason is not None:  # a comment: every client reads the end of the stream, none an event
                log.info("an event stream ends: %s", reason)
                yield f": stream ended: {reason}\n\n"
                return
            if ended_because is not None and time.monotonic() - checked > recheck_seconds:
                checked = time.monotonic()
                if ended_because() is not None:
                    yield "event: session-ended\ndata: {}\n\n"
                    return
            held = hub.after(cursor, kinds)
            if held is None:  # behind what the hub holds: catch up from the table
                floor = hub.floor
                items = await run_in_threadpool(page, lab, cursor, PAGE, kinds, principal)
                full = len(items) == PAGE
                items = [i for i in items if i["id"] <= hub.newest]  # beyond it the hub waits for a gap
                upto = max([cursor, *(i["id"] for i in items)])
                if not full:  # every event of these kinds up to the floor was in the page
                    upto = max(upto, floor)
            else:
                items, upto = held
                if items and not principal.is_operator:
                    items = await run_in_threadpool(visible, lab, principal, items)
            for item in items:
                name = f"event: {item['kind']}\n" if named else ""
                yield f"id: {item['id']}\n{name}data: {json.dumps(item)}\n\n"
            cursor = upto
            if items:
                quiet = 0.0
                continue
            started = time.monotonic()
            wake = WAKE_SECONDS if expires is None else max(0.0, min(WAKE_SECONDS, expires - time.time()))
            await hub.wait(wake)  # woken early by new events; a gone client is noticed within this
            quiet += time.monotonic() - started
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"
