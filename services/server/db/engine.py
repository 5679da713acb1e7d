"""Database engines: SQLite (WAL, one file) by default, PostgreSQL for a real lab.

On SQLite, writes go through an engine whose transactions start with
``BEGIN IMMEDIATE``: the write lock is taken before the first read, so a
read-then-write transaction never fails halfway on a stale snapshot, and
concurrent writers queue on the busy timeout instead. Reads use a second
engine with ordinary deferred transactions, so they never wait for writers
(WAL readers see the last committed state).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError

log = logging.getLogger(__name__)


#: A pooled PostgreSQL connection idle for longer than this is pinged before it is used (see ``_ping_when_idle``).
PING_IDLE_SECONDS = 1.0

#: With background checkpoints, SQLite checkpoints by itself only past this many log pages (4 KB each):
#: a bound on the log should the background checkpoints stop.
FALLBACK_CHECKPOINT_PAGES = 50_000


class DatabaseBusy(Exception):
    """A writer waited its whole busy timeout for the database's write lock."""


class WouldWait(Exception):
    """In :meth:`Database.no_waiting`, a write transaction found the write lock taken (nothing was written)."""


@dataclass
class Database:
    """The engines of one database: ``write`` for changes, ``read`` for queries."""

    url: str
    write: Engine
    read: Engine
    #: Set per thread by :meth:`no_waiting` (read by the SQLite write engine's ``begin`` hook), with the
    #: connection :meth:`writing` keeps for that thread's in-place writes.
    waiting: threading.local = field(default_factory=threading.local)
    _kept: weakref.WeakSet = field(default_factory=weakref.WeakSet)

    @property
    def is_sqlite(self) -> bool:
        return self.write.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.write.dialect.name == "postgresql"

    @contextmanager
    def no_waiting(self) -> Iterator[None]:
        """Within this block (in this thread), a SQLite write transaction that cannot take the write
        lock at once raises :class:`WouldWait` instead of waiting for it.

        What the event loop runs in place (see :mod:`.on_loop`) must never wait for another
        writer; the caller runs it in a worker thread instead, where waiting is harmless.
        """
        before = getattr(self.waiting, "off", False)
        self.waiting.off = True
        try:
            yield
        finally:
            self.waiting.off = before

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on ``write``; the connection, committed at the end of the block.

        In :meth:`no_waiting` (the event loop's writes in place, one at a time) the thread keeps its
        connection from one transaction to the next: taking one from the pool and handing it back costs more
        than a short SQLite transaction. A connection whose transaction failed in the database is closed, not
        kept. Elsewhere (worker threads, PostgreSQL) this is ``write.begin()``.
        """
        if not getattr(self.waiting, "off", False):
            with self.write.begin() as fresh:
                yield fresh
            return
        conn: Connection | None = getattr(self.waiting, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.waiting.conn = self.write.connect()
            self._kept.add(conn)
        try:
            with conn.begin():
                yield conn
        except (SQLAlchemyError, WouldWait):  # a begin refused leaves SQLAlchemy's connection half begun: not kept
            self.waiting.conn = None
            conn.close()
            raise

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file, without waiting for readers or writers
        (``PASSIVE``); nothing on PostgreSQL.

        Run in a background thread when the database was opened with ``background_checkpoints``:
        a checkpoint syncs the file to disk, which may take tens of milliseconds on a busy disk,
        and a commit that triggered it (SQLite's default, every 1,000 pages) would hold the
        event loop that long (see :mod:`.on_loop`). A checkpoint in the log's way (a reader on
        an old snapshot) simply copies less; the next one carries on.
        """
        if not self.is_sqlite:
            return
        raw = self.read.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
            finally:
                cursor.close()
        finally:
            raw.close()

    def dispose(self) -> None:
        for conn in list(self._kept):  # the in-place writers' connections (see ``writing``)
            conn.close()
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


def _sqlite_engine(url: str, immediate: bool, busy_seconds: float, waiting: threading.local | None = None,
                   background_checkpoints: bool = False) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_seconds},
        pool_size=8,
        max_overflow=24,
        pool_reset_on_return=None,  # every use ends in an explicit commit or rollback
        pool_use_lifo=True,  # the connection used last: its page cache is warm (SQLite keeps one per connection)
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        if background_checkpoints:  # SQLite's own checkpoint only as a bound on the log (see Database.checkpoint)
            cur.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
        cur.close()

    if not immediate:

        @event.listens_for(engine, "begin")
        def _on_begin_read(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN")

        return engine

    # Writers of this process queue on a lock rather than in SQLite's busy
    # handler, whose back-off sleeps (up to 100 ms each) would dominate under load.
    # The queue is bounded by the same busy timeout: while another process holds
    # the database, every writer gives up after it rather than waiting in line.
    gate = threading.Lock()

    busy_ms = int(busy_seconds * 1000)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        at_once = waiting is not None and getattr(waiting, "off", False)
        if not (gate.acquire(blocking=False) if at_once else gate.acquire(timeout=busy_seconds)):
            if at_once:
                raise WouldWait("another writer of this process holds the write lock")
            raise DatabaseBusy(f"no write lock within {busy_seconds:g} s")
        conn.info["gate"] = True
        try:
            if not at_once:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            # another process may hold SQLite's lock: ask for it without the busy timeout's wait (on the driver's
            # connection: these three statements cost SQLite microseconds, SQLAlchemy's execution tens)
            raw = conn.connection.dbapi_connection
            raw.execute("PRAGMA busy_timeout=0")
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise WouldWait(f"another process holds the write lock ({exc})") from None
                raise OperationalError("BEGIN IMMEDIATE", (), exc) from exc  # as SQLAlchemy raises it (storage_faults)
            finally:
                raw.execute(f"PRAGMA busy_timeout={busy_ms}")
        except BaseException:
            # a failed BEGIN may already have run the rollback hook, which let go of the gate
            if conn.info.pop("gate", False):
                gate.release()
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):  # noqa: ANN001
        if conn.info.pop("gate", False):
            gate.release()

    return engine


def postgres_url(url: str) -> str:
    """Use psycopg 3 for a plain ``postgresql://`` URL."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file ``path`` readable by its owner only (0600; SQLite gives its ``-wal`` and
    ``-shm`` files the same mode); an existing file readable by others is reported, not changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("the database %s can be read by other users (mode %04o): chmod 600 %s", path, mode, path)


def open_database(url: str, busy_seconds: float = 5.0, background_checkpoints: bool = False) -> Database:
    """Engines for ``url``; a SQLite file (and its folder) is created if missing, readable by its owner only.

    ``busy_seconds`` bounds how long a writer waits for a locked database
    before the request is answered 503 (see ``storage_faults``).
    ``background_checkpoints``: the owner calls :meth:`Database.checkpoint` every second or so (the
    server's scheduler does), so that no commit has to copy the log into the database file itself.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            private_sqlite_file(Path(parsed.database))
        waiting = threading.local()
        return Database(url, _sqlite_engine(url, True, busy_seconds, waiting, background_checkpoints),
                        _sqlite_engine(url, False, busy_seconds, None, background_checkpoints), waiting)
    # lock_timeout: a row or table lock held elsewhere fails the statement after busy_seconds
    # instead of hanging the request; connect_timeout likewise for an unreachable server.
    engine = create_engine(
        postgres_url(url), pool_size=16, max_overflow=16, pool_timeout=busy_seconds,
        connect_args={"connect_timeout": max(1, int(busy_seconds)),
                      "options": f"-c lock_timeout={int(busy_seconds * 1000)}"},
    )
    _ping_when_idle(engine, PING_IDLE_SECONDS)
    return Database(url, engine, engine)


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before it is used again only if it sat idle for ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one round trip to the server per
    request (with psycopg two, as the ping begins the transaction), a fifth of a claim's. A
    connection handed back moments ago was answered by the server moments ago; one that sat idle is
    where a restarted server or a dropped link goes unnoticed, and that one is pinged (SQLAlchemy's
    own ping). A dead one is replaced before the request uses it, as with ``pool_pre_ping``; one
    that died within the last ``idle_seconds`` fails its request once (503, see ``storage_faults``)
    and SQLAlchemy then discards the pool's connections.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_conn, record):  # noqa: ANN001
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, proxy):  # noqa: ANN001
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # connected just now, or in steady use
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(f"a pooled connection is dead ({exc}); connecting again") from exc
            raise
