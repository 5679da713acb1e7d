"""New requests and results that reach the server together are stored in one SQLite transaction (group commit).

On SQLite a create's own rows (the request and its indexes, its event, its
methods) cost about 150 microseconds of SQLite, most of it the COMMIT that
writes their pages to the log, and SQLAlchemy's BEGIN and COMMIT about 90
more. With k creates in one transaction both are paid once and the index pages
they share are written once: measured on the server's schema, 147
microseconds of SQLite per create alone, 83 in fours, 71 in eights.

How: a route hands its plan to :meth:`GroupCommit.run`: the plan makes the
checks that need no transaction and returns the write (a function of the
transaction's connection). The first write of a turn of the event loop schedules
the flush for the next turn, so every create that reached its write in this
turn joins it (under load, those whose bodies arrived together). The flush
runs the writes in one transaction, on the event loop as :mod:`.on_loop` does,
each inside its own ``SAVEPOINT``: a write that raises (an unknown parent
request) is rolled back alone and its caller gets the exception; the others
are kept. Callers are answered only after the COMMIT has returned, so nothing
is acknowledged that is not stored, exactly as with a transaction of its own.
If the BEGIN or the COMMIT fails (a full disk), every write of the batch gets
that error: none was stored.

When the write lock is not free at once (another writer of this process in a
worker thread, or another process), nothing has been written: the batch then
runs in a worker thread, where waiting for the lock is harmless, still in one
transaction. On PostgreSQL each write runs alone in a worker thread (each
statement is a round trip; see :mod:`.on_loop`), in a transaction of its own,
except a :class:`OneStatement` (a create): that one statement is atomic by
itself and runs in autocommit, without the BEGIN and COMMIT round trips.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from .driver import run_sql
from .engine import Database, WouldWait

T = TypeVar("T")

Work = Callable[[Connection], Any]

#: At most this many writes share a transaction: the event loop does nothing else while it runs.
BATCH_LIMIT = 64


class OneStatement(Generic[T]):
    """A write that makes exactly one statement on PostgreSQL (elsewhere perhaps several).

    A single statement is atomic by itself: :class:`GroupCommit` runs it on PostgreSQL in autocommit,
    one round trip where a transaction around it would add a BEGIN and a COMMIT. On SQLite it is a
    write like any other.
    """

    def __init__(self, work: Callable[[Connection], T]):
        self.work = work

    def __call__(self, conn: Connection) -> T:
        return self.work(conn)


class GroupCommit:
    """Runs writes handed to it on the event loop, those of one turn of the loop in one transaction."""

    def __init__(self, db: Database, limit: int = BATCH_LIMIT):
        self.db = db
        self.limit = limit
        #: Each event loop's batch still open to writes (a server has one loop; tests may run several).
        self._open: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[tuple[Work, asyncio.Future]]] = \
            weakref.WeakKeyDictionary()
        self._threads: set[asyncio.Task] = set()  # fallbacks in worker threads, kept until they end

    async def run(self, plan: Callable[[], Callable[[Connection], T]]) -> T:
        """``plan()`` (the checks, which raise before anything is written), then the write it returns, ``work(conn)``,
        in a write transaction (a :class:`OneStatement` on PostgreSQL: in autocommit); the write's value once the
        transaction has committed.

        On SQLite the plan runs on the event loop (its reads do not wait for writers) and the write joins this
        turn's batch; ``work`` may run again in a transaction of its own, so it must only read and write through
        ``conn``. On PostgreSQL, where every read is a round trip, both run in one worker thread.
        """
        if not self.db.is_sqlite:
            return await run_in_threadpool(lambda: self._alone(plan()))
        work = plan()
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        batch = self._open.get(loop)
        if batch is None or len(batch) >= self.limit:
            batch = self._open[loop] = []
            loop.call_soon(self._flush, loop, batch)
        batch.append((work, future))
        value: T = await future
        return value

    def _alone(self, work: Callable[[Connection], T]) -> T:
        if isinstance(work, OneStatement) and self.db.is_postgres:
            with self.db.write.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return work(conn)
        with self.db.write.begin() as conn:
            return work(conn)

    def _flush(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Work, asyncio.Future]]) -> None:
        if self._open.get(loop) is batch:
            del self._open[loop]
        try:
            with self.db.no_waiting():
                outcomes = self._together([work for work, _ in batch])
        except WouldWait:  # nothing written: the same batch, in a worker thread that waits for the lock
            task = asyncio.ensure_future(self._in_thread(batch))
            self._threads.add(task)
            task.add_done_callback(self._threads.discard)
            return
        except BaseException as exc:
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        _answer(batch, outcomes)

    def _together(self, works: list[Work]) -> list[tuple[bool, Any]]:
        """Each work's ``(stored, value or exception)``, all in one transaction."""
        outcomes: list[tuple[bool, Any]] = []
        with self.db.writing() as conn:
            if len(works) == 1:  # alone: its exception rolls the transaction back (no savepoint needed)
                return [(True, works[0](conn))]
            for work in works:
                run_sql(conn, "SAVEPOINT one_write")
                try:
                    value = work(conn)
                except Exception as exc:
                    try:
                        run_sql(conn, "ROLLBACK TO one_write")
                        run_sql(conn, "RELEASE one_write")
                    except Exception:
                        raise exc from None  # SQLite ended the transaction itself (a full disk): the batch fails
                    outcomes.append((False, exc))
                else:
                    run_sql(conn, "RELEASE one_write")
                    outcomes.append((True, value))
        return outcomes

    async def _in_thread(self, batch: list[tuple[Work, asyncio.Future]]) -> None:
        try:
            outcomes = await run_in_threadpool(self._together, [work for work, _ in batch])
        except Exception as exc:
            _fail(batch, exc)
        else:
            _answer(batch, outcomes)


def _answer(batch: list[tuple[Work, asyncio.Future]], outcomes: list[tuple[bool, Any]]) -> None:
    """Each caller its write's value or exception, the transaction having committed."""
    for (_, future), (stored, value) in zip(batch, outcomes):
        if not future.done():  # a caller that went away (its task cancelled) gets nothing; its write stays
            if stored:
                future.set_result(value)
            else:
                future.set_exception(value)


def _fail(batch: list[tuple[Work, asyncio.Future]], exc: BaseException) -> None:
    """Every caller the error that stored nothing of the batch (the BEGIN, a savepoint or the COMMIT failed)."""
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
