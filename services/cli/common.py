"""What the CLI's commands share: settings and the database, with readable errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from labweave.services.server.config import Settings
from labweave.services.server.db.engine import Database, open_database
from labweave.services.server.db.migrate import upgrade


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        fail(f"LABWEAVE_{field.upper()}: {first['msg']}")


def secret(value: str | None, file: Path | None, flag: str) -> str:
    """A password given as ``flag`` or read from the file of ``flag``-file (a container secret, its
    line break ignored); exactly one of them."""
    from labweave.services.server.config import read_secret_file

    if value is not None and file is not None:
        fail(f"give {flag} or {flag}-file, not both")
    if file is not None:
        try:
            return read_secret_file(file, f"{flag}-file")
        except ValueError as exc:
            fail(str(exc))
    if value is None:
        fail(f"give {flag} or {flag}-file")
    return value


def database(s: Settings | None = None) -> Database:
    s = s or settings()
    try:
        db = open_database(s.engine_url())
        upgrade(db)
    except Exception as exc:  # report a broken URL or unreachable server plainly
        fail(f"cannot open the database {s.database_url!r}: {exc}")
    return db


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except json.JSONDecodeError as exc:
        fail(f"{path}: not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}")
