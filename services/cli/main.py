"""The ``labweave`` command: one sub-command group per module."""

from __future__ import annotations

import logging
import os

import typer

from . import bench, db, demo, optimize, registry, serve, users

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

app = typer.Typer(help="labweave: a self-driving materials lab.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve.serve)
app.command("optimize")(optimize.optimize)
app.command("demo")(demo.demo)
app.add_typer(users.app, name="user")
app.add_typer(registry.capability_app, name="capability")
app.add_typer(registry.tenant_app, name="tenant")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")


def main() -> None:
    logging.basicConfig(level=os.environ.get("LABWEAVE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
