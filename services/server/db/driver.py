"""Core statements compiled once and run straight on the database driver, inside a Core transaction.

Executing a Core statement through SQLAlchemy costs about a hundred
microseconds of Python per call (execution context, parameter coercion,
result set-up) against tens for SQLite's own work. The statements of the hot
paths are compiled here once per dialect (and set of columns); each call
converts the values with the columns' own bind processors (JSON columns are
serialised as SQLAlchemy would) and runs the SQL on the connection's DBAPI
cursor, in the transaction the Core connection began:

- :class:`DriverStatement`: an ``INSERT`` (a new request, its event and its
  methods) on SQLite; on other databases it runs through SQLAlchemy as usual.
- :func:`run_sql`: a statement with neither parameters nor rows (a ``SAVEPOINT``).
- :class:`DriverQuery`: a statement that returns rows (the claim's first
  ``SELECT``, a status change's ``UPDATE ... RETURNING``) on SQLite and
  PostgreSQL, its rows converted by the columns' own result processors.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.sql.expression import ReturnsRows


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


class DriverQuery:
    """A Core statement that returns rows, compiled once per dialect and run on the driver's cursor.

    Its bind parameters are the statement's own values (a literal in a ``WHERE``, a ``LIMIT``) and
    the names given to :meth:`rows`; an expanding ``IN`` cannot be compiled once and is refused.
    """

    def __init__(self, stmt: ReturnsRows):
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, bool, list[tuple[str, Any, Callable | None]], type]] = {}
        self._results: dict[str, list[Callable | None]] = {}

    def _sql(self, conn: Connection):
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect)
            if compiled.positional:
                names = list(compiled.positiontup or [])
            else:
                names = list(dict.fromkeys(compiled.bind_names.values()))
            binds: list[tuple[str, Any, Callable | None]] = []
            for name in names:
                bind = compiled.binds[name]
                if bind.expanding:
                    raise ValueError(f"{name}: an expanding IN cannot be compiled once")
                binds.append((name, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect)))
            columns = list(self.stmt.exported_columns)
            row = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
            found = (str(compiled), bool(compiled.positional), binds, row)
            self._compiled[dialect.name] = found
        return found

    def _processors(self, conn: Connection, description: Any) -> list[Callable | None]:
        """The columns' result processors (PostgreSQL's numeric ones need the type the driver reports)."""
        found = self._results.get(conn.dialect.name)
        if found is None:
            dialect = conn.dialect
            found = [c.type.dialect_impl(dialect).result_processor(dialect, d[1])
                     for c, d in zip(self.stmt.exported_columns, description)]
            self._results[dialect.name] = found
        return found

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run with ``params`` (bind name -> value); the rows, with the columns as attributes (``_asdict()``)."""
        sql, positional, binds, row = self._sql(conn)
        values = [params[n] if n in params else v for n, v, _ in binds]
        values = [v if p is None else p(v) for v, (_, _, p) in zip(values, binds)]
        args: Any = values if positional else {n: v for (n, _, _), v in zip(binds, values)}
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, args)
            fetched = cursor.fetchall()
            processors = self._processors(conn, cursor.description)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, sql, args, exc) from exc
        finally:
            cursor.close()
        if any(p is not None for p in processors):
            return [row(*[v if p is None else p(v) for v, p in zip(r, processors)]) for r in fetched]
        return [row(*r) for r in fetched]


def run_sql(conn: Connection, sql: str) -> None:
    """A statement without parameters or rows (``SAVEPOINT x``) on the driver's cursor, in ``conn``'s transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(conn, sql, (), exc) from exc
    finally:
        cursor.close()


def _wrapped(conn: Connection, sql: str, params: Any, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it (``OperationalError``, ``IntegrityError``...), so that
    the server's handlers (a full disk, a locked database) see the same exception either way."""
    return DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect)
