"""The demo's closing summary in the terminal: each campaign's outcome against its random baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .report import CampaignReport


def print_summary(console: Console, parts: Sequence[CampaignReport], page: Path, seconds: float,
                  left_out: Sequence[str] = ()) -> None:
    """Print the table of outcomes, the campaigns left out and where the report is.

    Args:
        console: where to print.
        parts: the campaigns' parts of the report.
        page: the HTML report.
        seconds: the lab's wall time.
        left_out: why campaigns were left out.
    """
    table = Table(title=f"labweave demo: {seconds / 60:.1f} min", title_justify="left")
    table.add_column("campaign", no_wrap=True)
    table.add_column("strategy", no_wrap=True)
    table.add_column("result")
    table.add_column("random baseline")
    table.add_column("better", no_wrap=True)
    for p in parts:
        a, b = p.optimised, p.baseline
        mark_a = "[bold green]" if p.winner == a.name else ""
        mark_b = "[bold green]" if p.winner == b.name else ""
        table.add_row(a.name, a.strategy, f"{mark_a}{a.headline}", f"{mark_b}{b.headline}", p.better)
    console.print(table)
    for reason in left_out:
        console.print(f"[yellow]left out:[/] {reason}", highlight=False)
    console.print(f"report: {page} (figures beside it)", highlight=False)
