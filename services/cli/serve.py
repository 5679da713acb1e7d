"""``labweave serve``: run the intention server."""

from __future__ import annotations

import typer
import uvicorn

from labweave.services.server.app import create_app
from labweave.services.server.config import ConfigError

from .common import fail, settings


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port to listen on"),
    demo: bool = typer.Option(False, "--demo", help="create demo accounts (operator/operator, requester/requester)"),
) -> None:
    """Run the intention server on the database in LABWEAVE_DATABASE_URL."""
    s = settings()
    try:
        app = create_app(s)
    except ConfigError as exc:
        fail(str(exc))
    if demo:
        from labweave.services.server.seed import DEMO_USERS, seed_demo

        seed_demo(app.state.lab)
        typer.echo("demo accounts: " + ", ".join(f"{u}/{p} ({r})" for u, p, r in DEMO_USERS))
    typer.echo(f"labweave server on http://{host}:{port} (database {s.database_url})")
    # uvicorn's own loggers go through labweave's (``labweave --log-level/--log-format``); the access
    # log is the server's (labweave.access, with the request id), so uvicorn's is off.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=5)
