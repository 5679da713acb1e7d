"""``labweave db``: schema migrations."""

from __future__ import annotations

import typer

from .common import database, settings

app = typer.Typer(help="The database: migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Bring the database in LABWEAVE_DATABASE_URL to the newest schema."""
    s = settings()
    database(s)
    typer.echo(f"database {s.database_url} is up to date")
