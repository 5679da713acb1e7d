"""``labweave bench``: the operator's benchmarks (server, drivers), one JSON line per figure.

The studies (strategies compared on problems, stored calculations and the demo's
campaigns) are not part of the product: they live in a clone's ``benchmarks/``
folder and run there with ``python -m benchmarks.NAME``. Asking for one here
says so, naming the command.
"""

from __future__ import annotations

import shlex

import typer

app = typer.Typer(help="The operator's benchmarks: the server and the drivers (one JSON line per figure).",
                  no_args_is_help=True)

#: Study subcommands that moved out of the product, and the command that runs each from a clone.
MOVED_STUDIES: dict[str, tuple[str, ...]] = {
    "optimizer": ("python -m benchmarks.optimizer", "python -m benchmarks.sisso_octet"),
    "fidelity": ("python -m benchmarks.fidelity", "python -m benchmarks.alloy_study"),
    "pld": ("python -m benchmarks.pld",),
}


@app.command("server")
def server(
    url: str = typer.Option(None, "--url", help="a running server to drive (default: start one)"),
    pending: int = typer.Option(10_000, "--pending", min=100, help="pending requests for the listing figure"),
    seconds: float = typer.Option(5.0, "--seconds", min=1.0, help="duration of each throughput run"),
    user: str = typer.Option("bench-operator", "--user", help="with --url: an operator of that server"),
    password: str = typer.Option("bench-password", "--password", help="with --url: the operator's password"),
    listing_pending: int = typer.Option(3_000, "--listing-pending", min=1,
                                        help="pending requests for FINALES2's unpaged listings figure"),
    listing_calls: int = typer.Option(100, "--listing-calls", min=5, help="calls timed per listing"),
    repeats: int = typer.Option(3, "--repeats", min=1, max=20,
                                help="creates and the floor measured in turn this many times (median printed)"),
    database: str = typer.Option(None, "--database", help="a PostgreSQL server's URL (postgresql://...): run the "
                                 "replica benchmark on fresh databases made (and dropped) there instead"),
    replicas: str = typer.Option("1,2", "--replicas", help="with --database: comma-separated replica counts"),
    connections: int = typer.Option(8, "--connections", min=1, max=64,
                                    help="with --database: concurrent clients, spread over the replicas"),
) -> None:
    """Drive the server over real HTTP; print figures and their fraction of a bare floor.

    With --database: creates/s and claims/s on PostgreSQL with each count of replicas, and the ratio."""
    if database is None:
        from labweave.services.bench.server import run

        run(url=url, pending=pending, seconds=seconds, user=user, password=password,
            listing_pending=listing_pending, listing_calls=listing_calls, repeats=repeats)
        return
    counts = replica_counts(replicas)
    if not database.startswith(("postgresql://", "postgresql+psycopg://")):
        typer.secho(f"error: --database {database!r}: give a PostgreSQL URL (postgresql://user@host:port/db); "
                    "the replicas share one PostgreSQL database", fg="red", err=True)
        raise typer.Exit(2)
    from labweave.services.bench.replicas import run as run_replicas

    run_replicas(database, counts, seconds=seconds, connections=connections, pending=pending)


def replica_counts(text: str) -> list[int]:
    """``--replicas`` as counts (1 to 16), or a CLI error naming the option."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(n < 1 or n > 16 for n in counts):
        typer.secho(f"error: --replicas {text!r}: give comma-separated counts between 1 and 16", fg="red", err=True)
        raise typer.Exit(2)
    return counts


@app.command("drivers")
def drivers(
    which: str = typer.Option("cycler,pld,atomistic", "--which", help="comma-separated: cycler, pld, atomistic"),
) -> None:
    """Time the simulated instruments: a 100-cycle cycling run, a 200-pulse growth, EMT/CHGNet relaxations."""
    import json

    from labweave.services.bench.drivers import INSTRUMENTS, run

    chosen = [name.strip() for name in which.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in INSTRUMENTS]
    if unknown or not chosen:
        typer.secho(f"error: --which: unknown {', '.join(map(repr, unknown)) or '(none given)'}; "
                    f"choose from {', '.join(INSTRUMENTS)}", fg="red", err=True)
        raise typer.Exit(2)
    for row in run(chosen):
        typer.echo(json.dumps(row))


@app.command("dask")
def dask(
    workers: str = typer.Option("1,2", "--workers", help="comma-separated sizes of the local Dask cluster"),
    simulations: int = typer.Option(12, "--simulations", min=2, max=1000, help="EMT requests per setting"),
) -> None:
    """EMT relaxations per second through the tenant runtime, in-process and on 1, 2... local Dask workers,
    and the orchestration overhead per simulation (claim to result minus the computation)."""
    try:
        sizes = [int(w) for w in workers.split(",") if w.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(n < 1 or n > 64 for n in sizes):
        typer.secho(f"error: --workers {workers!r}: give comma-separated counts between 1 and 64", fg="red",
                    err=True)
        raise typer.Exit(2)
    from labweave.services.bench.dask import run

    run(sizes, simulations)


def _moved(name: str, commands: tuple[str, ...]) -> None:
    """A hidden subcommand for a study that moved: it names the command that runs it now."""

    @app.command(name, hidden=True, add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def moved(ctx: typer.Context) -> None:
        given = " ".join(shlex.quote(arg) for arg in ctx.args)
        runs = [f"{command} {given}".rstrip() if i == 0 else command for i, command in enumerate(commands)]
        typer.secho(f"error: `labweave bench {name}` is a study: it moved out of the installed package into the "
                    f"benchmarks/ folder of a labweave clone. From the clone's root, run "
                    f"{' and '.join(f'`{r}`' for r in runs)} (the README's Benchmarks section lists them).",
                    fg="red", err=True)
        raise typer.Exit(2)


for _name, _commands in MOVED_STUDIES.items():
    _moved(_name, _commands)
