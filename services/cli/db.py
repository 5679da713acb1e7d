"""``labweave db``: schema migrations."""

from __future__ import annotations

import time

import typer

from labweave.services.server.events import archive

from .common import database, settings

app = typer.Typer(help="The database: migrations and event retention.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Bring the database in LABWEAVE_DATABASE_URL to the newest schema."""
    s = settings()
    database(s)
    typer.echo(f"database {s.database_url} is up to date")


@app.command("archive-events")
def archive_events_command(
    older_than_days: float = typer.Option(..., min=0, help="archive events older than this many days"),
) -> None:
    """Move old events from the live log to event_archive (the server does so hourly too; nothing is deleted)."""
    s = settings()
    moved = archive(database(s), time.time() - older_than_days * 86_400)
    typer.echo(f"{moved} events archived")
