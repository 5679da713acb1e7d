"""``labweave user``: accounts for operators, tenants and requesters."""

from __future__ import annotations

from typing import Optional

import typer

from labweave.services.server.auth import ROLES, add_user
from labweave.services.server.errors import ServiceError

from .common import database, fail, settings

app = typer.Typer(help="User accounts.", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="user name"),
    password: str = typer.Option(..., "--password", help="the user's password"),
    role: str = typer.Option(..., "--role", help="operator, tenant or requester"),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="UUID of the tenant this user acts for"),
) -> None:
    """Add a user (or reset an existing user's password, role and tenant)."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    s = settings()
    db = database(s)
    try:
        user = add_user(db, name, password, role, tenant, s.password_rounds)
    except ServiceError as exc:
        fail(exc.message)
    typer.echo(f"user {user.username} ({user.role}{', tenant ' + user.tenant_uuid if user.tenant_uuid else ''})")
