"""Database work of a route, on the event loop when it cannot wait, else in a worker thread.

A short SQLite write (a new request, a claim) costs tens of microseconds of
SQLite; handing it to a worker thread costs more than that in thread switches
and in the GIL passing back and forth between the worker and the event loop
on each SQLite call (on a loaded two-core machine, creating a request took
2.2 ms of CPU through the thread pool and 1.0 ms in place). So on SQLite the
work runs in place when the write lock is free at once, and in a worker
thread (where waiting for the lock harms no one) when it is not: another
writer of this process holds it, or another process holds SQLite's lock.
Nothing was written when the first attempt gives way (the transaction had not
begun), so running the work again is safe.

On PostgreSQL every statement is a network round trip: the work always runs
in a worker thread, in one hop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from .engine import Database, WouldWait

T = TypeVar("T")


async def run_write(db: Database, work: Callable[[], T]) -> T:
    """``work()``, which makes one write transaction on ``db``: in place when it need not wait, else in a
    worker thread. ``work`` must not write anything before its transaction begins."""
    if db.is_sqlite:
        try:
            with db.no_waiting():
                return work()
        except WouldWait:
            pass
    return await run_in_threadpool(work)
