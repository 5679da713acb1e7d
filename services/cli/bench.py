"""``labweave bench``: benchmarks that print one JSON line per figure."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks (one JSON line per figure).", no_args_is_help=True)


@app.command("server")
def server(
    url: str = typer.Option(None, "--url", help="a running server to drive (default: start one)"),
    pending: int = typer.Option(10_000, "--pending", min=100, help="pending requests for the listing figure"),
    seconds: float = typer.Option(5.0, "--seconds", min=1.0, help="duration of each throughput run"),
    user: str = typer.Option("bench-operator", "--user", help="with --url: an operator of that server"),
    password: str = typer.Option("bench-password", "--password", help="with --url: the operator's password"),
) -> None:
    """Drive the server over real HTTP; print figures and their fraction of a bare floor."""
    from labweave.services.bench.server import run

    run(url=url, pending=pending, seconds=seconds, user=user, password=password)


def _emit(rows) -> None:
    import json

    for row in rows:
        typer.echo(json.dumps(row))


@app.command("drivers")
def drivers(
    which: str = typer.Option("cycler,pld,atomistic", "--which", help="comma-separated: cycler, pld, atomistic"),
) -> None:
    """Time the simulated instruments: a 100-cycle cycling run, a 200-pulse growth, EMT/CHGNet relaxations."""
    import importlib

    modules = {"cycler": "labweave.drivers.cycler.bench", "pld": "labweave.drivers.pld.bench",
               "atomistic": "labweave.drivers.atomistic.bench"}
    for name in which.split(","):
        if name.strip() not in modules:
            typer.secho(f"error: --which: unknown {name!r}; choose from {', '.join(modules)}", fg="red", err=True)
            raise typer.Exit(2)
        _emit(importlib.import_module(modules[name.strip()]).run_benchmarks())


@app.command("optimizer")
def optimizer(
    seeds: int = typer.Option(10, "--seeds", min=1, help="seeds per problem and strategy"),
    sisso: bool = typer.Option(True, "--sisso/--no-sisso", help="also reproduce SISSO on octet82"),
    octet: str = typer.Option(None, "--octet", help="path of octet82.csv (default: ../shared/data/)"),
) -> None:
    """BO against Hartmann6 and Branin (vs random), a 100x6 proposal timing, SISSO on octet82."""
    from labweave.optimizer.bench import render_table, run_benchmarks

    rows = run_benchmarks(seeds=seeds)
    _emit(rows)
    if sisso:
        from labweave.optimizer.sisso.bench import run_benchmarks as sisso_benchmarks

        _emit(sisso_benchmarks(octet, max_dimension=2))
    from rich.console import Console

    Console().print(render_table([r for r in rows if "problem" in r and "median_best" in r]))


@app.command("fidelity")
def fidelity(
    seeds: int = typer.Option(5, "--seeds", min=1, help="seeds per strategy and budget"),
    budgets: str = typer.Option("100,200,300", "--budgets", help="comma-separated cost budgets (EMT costs 20)"),
    cells: str = typer.Option("random32", "--cells",
                              help="the stored calculations: random32 (the example campaign's random 32-atom "
                                   "cells) or ordered4 (the demo's ordered 4-atom cells)"),
) -> None:
    """The multi-fidelity alloy search replayed on stored EMT and CHGNet calculations, against EMT at random
    and screen-then-confirm: mean regret per strategy and budget."""
    from labweave.optimizer.fidelity_bench import TABLES, load_alloy_table, run_benchmarks, summarise

    if cells not in TABLES:
        typer.secho(f"error: --cells: unknown {cells!r}; choose from {', '.join(TABLES)}", fg="red", err=True)
        raise typer.Exit(2)

    try:
        costs = [float(b) for b in budgets.split(",") if b.strip()]
    except ValueError:
        costs = []
    if not costs or any(c <= 0 for c in costs):
        typer.secho(f"error: --budgets: expected positive numbers separated by commas, not {budgets!r}",
                    fg="red", err=True)
        raise typer.Exit(2)
    rows = run_benchmarks(seeds=range(seeds), budgets=costs, table=load_alloy_table(cells))
    _emit(summarise(rows))


@app.command("pld")
def pld(
    variants: str = typer.Option("random,parego+fast,nehvi+thorough", "--variants",
                                 help="comma-separated: random, parego+fast, parego+thorough, nehvi+fast, "
                                      "nehvi+thorough"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="seeds per variant"),
    budget: int = typer.Option(20, "--budget", min=2, help="growths per run"),
) -> None:
    """The demo's PLD campaign replayed in process against the simulated chamber: hypervolume per strategy."""
    from labweave.services.bench.pld_campaign import VARIANTS, run_benchmarks

    chosen = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if not chosen or unknown:
        typer.secho(f"error: --variants: unknown {', '.join(unknown) or '(none given)'}; choose from "
                    f"{', '.join(VARIANTS)}", fg="red", err=True)
        raise typer.Exit(2)
    _emit(run_benchmarks(chosen, seeds=seeds, budget=budget))
