"""The ``labweave`` command: one sub-command group per module."""

from __future__ import annotations

import logging
import os

import typer

from labweave.services.process import configure_threads, opt_out_of_telemetry

from . import bench, db, demo, optimize, registry, serve, users

app = typer.Typer(help="labweave: a self-driving materials lab.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve.serve)
app.command("optimize")(optimize.optimize)
app.command("demo")(demo.demo)
app.add_typer(users.app, name="user")
app.add_typer(registry.capability_app, name="capability")
app.add_typer(registry.tenant_app, name="tenant")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")


@app.callback()
def process(
    threads: int = typer.Option(1, "--threads", min=1, max=256, envvar="LABWEAVE_THREADS",
                                help="compute threads of this process (torch, BLAS, OpenMP)"),
) -> None:
    """Set the process's thread limits once, before any command runs."""
    configure_threads(threads)


def main() -> None:
    opt_out_of_telemetry()
    logging.basicConfig(level=os.environ.get("LABWEAVE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
