"""``labweave demo``: the simulated lab in one command, ending with a report."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Optional

import typer

from .common import fail

DEFAULT_CAMPAIGNS = "pld,electrolyte,materials"  # started in this order: the slowest to set up last


def demo(
    campaigns: str = typer.Option(DEFAULT_CAMPAIGNS, "--campaigns",
                                  help="comma-separated campaigns, started in this order: pld, electrolyte, materials, "
                                       "perovskite (not in the default set: about five minutes more)"),
    budget: Optional[int] = typer.Option(None, "--budget", min=1,
                                         help="experiments per run (default: each campaign's demo size)"),
    seed: int = typer.Option(0, "--seed", help="seed of the strategies and the simulated instruments"),
    database_url: Optional[str] = typer.Option(None, "--database-url",
                                               help="database (default: a fresh SQLite file in --out)"),
    out: Path = typer.Option(Path("labweave-report"), "--out", help="folder of the report, logs and lab state"),
    keep_serving: bool = typer.Option(False, "--keep-serving",
                                      help="leave the lab running at the end for the dashboard (Ctrl-C stops it)"),
    replicates: Optional[int] = typer.Option(None, "--replicates", min=0,
                                             help="measurements of each run's recommended point on a noisy "
                                                  "instrument (default: each campaign's; 0: none)"),
) -> None:
    """Start the server, the simulated tenants and the optimizer; run closed-loop campaigns against
    random-search baselines; write an HTML report with figures."""
    from rich.console import Console

    from labweave.services.demo.campaigns import RECIPES
    from labweave.services.demo.lab import DemoError, DemoOptions, DemoResult, run_demo
    from labweave.services.demo.progress import StatusBoard
    from labweave.services.demo.report import write_report
    from labweave.services.demo.summary import print_summary

    keys = tuple(dict.fromkeys(k.strip() for k in campaigns.split(",") if k.strip()))
    unknown = [k for k in keys if k not in RECIPES]
    if not keys or unknown:
        fail(f"--campaigns: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(RECIPES)}")
    if database_url is not None:
        from .common import settings

        settings(database_url=database_url)  # a readable error for a malformed URL
    options = DemoOptions(keys, budget, seed, database_url, out, keep_serving, replicates)
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    _log_to_file(out / "logs" / "demo.log")
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough for the summary table
        console = Console(width=140)
    board = StatusBoard(console)

    def report(result: DemoResult) -> None:
        page, parts = write_report(result)
        print_summary(console, parts, page, result.seconds, result.left_out)

    signal.signal(signal.SIGTERM, _interrupt)  # stop the lab's processes on SIGTERM too, not only on Ctrl-C
    try:
        run_demo(options, board, after=report)
    except DemoError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; the lab was stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _log_to_file(path: Path) -> None:
    """Send the demo's logs to a file: the terminal belongs to the live status board."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:  # the console handler of `labweave`'s entry point
            root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.captureWarnings(True)  # numerical warnings of the models go to the log, not over the board
