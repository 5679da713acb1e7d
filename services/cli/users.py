"""``labweave user``: accounts for operators, tenants and requesters.

``passwd`` and ``disable`` revoke the user's tokens at once (each token names
the user's token generation, which both raise); ``enable`` lets the user log
in again but revives no token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from labweave.services.server.auth import ROLES, add_user, set_active, set_password
from labweave.services.server.errors import ServiceError

from .common import database, fail, secret, settings

app = typer.Typer(help="User accounts.", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="user name"),
    password: Optional[str] = typer.Option(None, "--password", help="the user's password (at most 72 bytes)"),
    password_file: Optional[Path] = typer.Option(None, "--password-file",
                                                 help="a file holding the password (a secret; its line break ignored)"),
    role: str = typer.Option(..., "--role", help="operator, tenant or requester"),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="UUID of the tenant this user acts for"),
) -> None:
    """Add a user (or reset an existing user's password, role and tenant, revoking its tokens)."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    login = secret(password, password_file, "--password")
    s = settings()
    db = database(s)
    try:
        user = add_user(db, name, login, role, tenant, s.password_rounds)
    except ServiceError as exc:
        fail(exc.message)
    typer.echo(f"user {user.username} ({user.role}{', tenant ' + user.tenant_uuid if user.tenant_uuid else ''})")


@app.command("passwd")
def passwd(
    name: str = typer.Argument(..., help="user name"),
    password: str = typer.Option(..., "--password", prompt="New password", hide_input=True,
                                 confirmation_prompt=True, help="the new password (asked for if not given)"),
) -> None:
    """Change a user's password; the tokens it had stop working."""
    s = settings()
    db = database(s)
    try:
        user = set_password(db, name, password, s.password_rounds)
    except ServiceError as exc:
        fail(exc.message)
    typer.echo(f"user {user.username}: password changed; its tokens are revoked")


def _switch(name: str, active: bool) -> None:
    try:
        user = set_active(database(), name, active)
    except ServiceError as exc:
        fail(exc.message)
    typer.echo(f"user {user.username}: enabled" if active else f"user {user.username}: disabled; its tokens are revoked")


@app.command("disable")
def disable(name: str = typer.Argument(..., help="user name")) -> None:
    """Disable a user: it cannot log in, and its tokens stop working at once."""
    _switch(name, False)


@app.command("enable")
def enable(name: str = typer.Argument(..., help="user name")) -> None:
    """Enable a disabled user: it can log in again (tokens from before stay revoked)."""
    _switch(name, True)
