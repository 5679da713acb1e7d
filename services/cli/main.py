"""The ``labweave`` command: one sub-command group per module."""

from __future__ import annotations

import enum

import typer

from labweave.services.logs import configure_logging
from labweave.services.process import configure_threads, opt_out_of_telemetry

from . import bench, db, demo, export, lab, optimize, registry, relabel, serve, users

class LogLevel(str, enum.Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LogFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


app = typer.Typer(help="labweave: a self-driving materials lab.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve.serve)
app.command("optimize")(optimize.optimize)
app.command("demo")(demo.demo)
app.command("export")(export.export)
app.command("relabel")(relabel.relabel)
app.add_typer(users.app, name="user")
app.add_typer(registry.capability_app, name="capability")
app.add_typer(registry.tenant_app, name="tenant")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")
app.add_typer(lab.app, name="lab")


@app.callback()
def process(
    threads: int = typer.Option(1, "--threads", min=1, max=256, envvar="LABWEAVE_THREADS",
                                help="compute threads of this process (torch, BLAS, OpenMP)"),
    log_level: LogLevel = typer.Option(LogLevel.WARNING, "--log-level", envvar="LABWEAVE_LOG_LEVEL",
                                       case_sensitive=False, help="the least severe log records written"),
    log_format: LogFormat = typer.Option(LogFormat.TEXT, "--log-format", envvar="LABWEAVE_LOG_FORMAT",
                                         case_sensitive=False,
                                         help="text lines, or one JSON object per line for a log store"),
) -> None:
    """Set the process's logging and thread limits once, before any command runs."""
    configure_logging(log_level.value, "json" if log_format is LogFormat.JSON else "text")
    configure_threads(threads)


def main() -> None:
    opt_out_of_telemetry()
    app()


if __name__ == "__main__":
    main()
