"""``labweave lab pause / resume / status``: an operator pauses the whole lab and resumes it.

Written straight into the lab's database (as ``labweave user`` is), so it
reaches every server replica sharing it and holds across their restarts.
"""

from __future__ import annotations

import getpass

import typer

from labweave.services.server import convert
from labweave.services.server.auth import Principal
from labweave.services.server.errors import ServiceError
from labweave.services.server.lab_pause import LabPause

from .common import database, fail

app = typer.Typer(help="The whole lab: pause it (tenants stop claiming), resume it, or ask.", no_args_is_help=True)


def _operator() -> Principal:
    """The operator at this terminal, as the change is recorded (``cli:`` and the login name)."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user)
        who = "unknown"
    return Principal(f"cli:{who}", "operator")


def _show(pause: LabPause, released: int | None = None) -> None:
    status = convert.lab_status(pause.state(), pause.running(), released or 0)
    if status.paused:
        finishing = "released to pending" if status.release_running else "finishing"
        typer.echo(f"lab paused by {status.changed_by} at {status.changed_at:%Y-%m-%d %H:%M:%S} UTC"
                   + (f": {status.reason}" if status.reason else ""))
        typer.echo(f"running work: {finishing}; {status.running} request(s) reserved now"
                   + (f"; {released} released by this pause" if released is not None else ""))
    else:
        typer.echo("lab running" + (f" (resumed by {status.changed_by})" if status.changed_by else "")
                   + f"; {status.running} request(s) reserved now")


@app.command("pause")
def pause(
    release_running: bool = typer.Option(False, "--release-running",
                                         help="release the running work back to pending at once "
                                              "(default: it finishes)"),
    reason: str = typer.Option("", "--reason", help="why (recorded with the event and shown to tenants)"),
) -> None:
    """Pause the lab: tenants stop claiming and reserving until `labweave lab resume`."""
    if len(reason) > 2000:
        fail("--reason: at most 2000 characters")
    lab_pause = LabPause(database())
    try:
        _, released = lab_pause.pause(_operator(), release_running, reason)
    except ServiceError as exc:
        fail(exc.message)
    _show(lab_pause, released)


@app.command("resume")
def resume(reason: str = typer.Option("", "--reason", help="why (recorded with the event)")) -> None:
    """Resume a paused lab: tenants claim again."""
    if len(reason) > 2000:
        fail("--reason: at most 2000 characters")
    lab_pause = LabPause(database())
    try:
        lab_pause.resume(_operator(), reason)
    except ServiceError as exc:
        fail(exc.message)
    _show(lab_pause)


@app.command("status")
def status() -> None:
    """Whether the lab is paused, by whom, since when, and how much work is running."""
    _show(LabPause(database()))
