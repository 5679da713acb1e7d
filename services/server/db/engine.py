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
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


class DatabaseBusy(Exception):
    """A writer waited its whole busy timeout for the database's write lock."""


@dataclass
class Database:
    """The engines of one database: ``write`` for changes, ``read`` for queries."""

    url: str
    write: Engine
    read: Engine

    @property
    def is_sqlite(self) -> bool:
        return self.write.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.write.dialect.name == "postgresql"

    def dispose(self) -> None:
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


def _sqlite_engine(url: str, immediate: bool, busy_seconds: float) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_seconds},
        pool_size=8,
        max_overflow=24,
        pool_reset_on_return=None,  # every use ends in an explicit commit or rollback
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
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

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        if not gate.acquire(timeout=busy_seconds):
            raise DatabaseBusy(f"no write lock within {busy_seconds:g} s")
        conn.info["gate"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
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


def open_database(url: str, busy_seconds: float = 5.0) -> Database:
    """Engines for ``url``; a SQLite file (and its folder) is created if missing, readable by its owner only.

    ``busy_seconds`` bounds how long a writer waits for a locked database
    before the request is answered 503 (see ``storage_faults``).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            private_sqlite_file(Path(parsed.database))
        return Database(
            url, _sqlite_engine(url, True, busy_seconds), _sqlite_engine(url, False, busy_seconds)
        )
    # lock_timeout: a row or table lock held elsewhere fails the statement after busy_seconds
    # instead of hanging the request; connect_timeout likewise for an unreachable server.
    engine = create_engine(
        postgres_url(url), pool_size=16, max_overflow=16, pool_pre_ping=True, pool_timeout=busy_seconds,
        connect_args={"connect_timeout": max(1, int(busy_seconds)),
                      "options": f"-c lock_timeout={int(busy_seconds * 1000)}"},
    )
    return Database(url, engine, engine)
