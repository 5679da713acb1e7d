"""``labweave bench``: benchmarks that print one JSON line per figure."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks (one JSON line per figure).", no_args_is_help=True)


@app.command("server")
def server(
    url: str = typer.Option(None, "--url", help="a running server to drive (default: start one)"),
    pending: int = typer.Option(10_000, "--pending", min=100, help="pending requests for the listing figure"),
    seconds: float = typer.Option(5.0, "--seconds", min=1.0, help="duration of each throughput run"),
) -> None:
    """Drive the server over real HTTP; print figures and their fraction of a bare floor."""
    from labweave.services.bench.server import run

    run(url=url, pending=pending, seconds=seconds)
