"""Core statements compiled once and run straight on SQLite's driver, inside a Core transaction.

Executing a Core statement through SQLAlchemy costs about a hundred
microseconds of Python per call (execution context, parameter coercion,
result set-up) against tens for SQLite's own work. The statements of the hot
paths (a new request, its event and its methods) are compiled here once per
set of columns; each call converts the values with the columns' own bind
processors (JSON columns are serialised as SQLAlchemy would) and runs the SQL
on the connection's DBAPI cursor, in the transaction the Core connection
began. On other databases the statement runs through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import ValuesBase


class DriverStatement:
    """One Core ``INSERT`` (optionally ``RETURNING`` one column), compiled per dialect and column set."""

    def __init__(self, stmt: ValuesBase, returning: bool = False):
        self.stmt = stmt
        self.returning = returning  # the statement ends in RETURNING one column
        self._compiled: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[str, Callable | None]]]] = {}

    def _sql(self, conn: Connection, keys: tuple[str, ...]) -> tuple[str, list[tuple[str, Callable | None]]]:
        dialect = conn.dialect
        key = (dialect.name, keys)
        found = self._compiled.get(key)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect, column_keys=list(keys))
            order = compiled.positiontup or []
            types = [compiled.binds[name].type for name in order]
            binds: list[tuple[str, Callable | None]] = [
                (name, t.dialect_impl(dialect).bind_processor(dialect)) for name, t in zip(order, types)]
            found = (str(compiled), binds)
            self._compiled[key] = found
        return found

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Run with ``values`` (column name -> value); the ``RETURNING`` value, if the statement has one."""
        if conn.dialect.name != "sqlite":
            result = conn.execute(self.stmt, dict(values))
            return result.scalar_one() if self.returning else None
        sql, binds = self._sql(conn, tuple(values))
        params = [values[n] if p is None else p(values[n]) for n, p in binds]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            if not self.returning:
                return None
            row = cursor.fetchone()
            assert row is not None, "RETURNING gave no row"
            return row[0]
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, sql, params, exc) from exc
        finally:
            cursor.close()

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row (all rows with the same columns)."""
        if not rows:
            return
        if conn.dialect.name != "sqlite":
            conn.execute(self.stmt, [dict(r) for r in rows])
            return
        sql, binds = self._sql(conn, tuple(rows[0]))
        params = [[r[n] if p is None else p(r[n]) for n, p in binds] for r in rows]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, params)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, sql, params, exc) from exc
        finally:
            cursor.close()


def _wrapped(conn: Connection, sql: str, params: Any, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it (``OperationalError``, ``IntegrityError``...), so that
    the server's handlers (a full disk, a locked database) see the same exception either way."""
    return DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect)
