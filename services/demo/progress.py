"""The demo's live status: a progress bar per campaign run and what each instrument is doing.

On a terminal the board redraws in place (``rich.live``); elsewhere (a log, a
pipe, a test) it prints one line whenever a run gets a new result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from labweave.optimizer import analytics
from labweave.optimizer.analytics import CampaignTerms, Progress
from labweave.optimizer.campaign import Campaign
from labweave.schemas.api import RequestDetail
from labweave.schemas.core import RequestStatus

from .analysis import fmt


@dataclass
class RunView:
    """What the board knows of one campaign run.

    Args:
        key: the demo campaign's key.
        role: ``"optimised"`` or ``"baseline"``.
        campaign: the campaign.

    The other fields come from the server (:meth:`update`): the campaign's record (its status,
    and the best value its daemon publishes) and its requests, whose progress is counted in the
    budget's own unit by :func:`labweave.optimizer.analytics.progress`.
    """

    key: str
    role: str
    campaign: Campaign
    progress: Progress | None = None
    in_flight: int = 0
    failed: int = 0
    best: float | None = None
    status: str = "starting"
    ended: str | None = None
    terms: CampaignTerms = field(init=False)

    def __post_init__(self) -> None:
        self.terms = CampaignTerms.of(self.campaign.spec)

    @property
    def name(self) -> str:
        return self.campaign.spec.name

    @property
    def budget(self) -> int:
        """The campaign's request budget."""
        return self.campaign.spec.budget

    @property
    def done(self) -> float:
        """Spent on results so far, in the budget's unit."""
        return self.progress.done if self.progress else 0.0

    def update(self, record: dict, requests: Sequence[RequestDetail], ended: str | None) -> None:
        """Take the server's campaign record and the campaign's requests."""
        state = record.get("state") or {}
        self.status = record.get("status", self.status)
        self.progress = analytics.progress(self.terms, self.status, requests)
        self.in_flight = sum(1 for r in requests if r.status in analytics.IN_FLIGHT)
        self.failed = sum(1 for r in requests if r.status == RequestStatus.FAILED)
        best = state.get("best")
        self.best = best.get("value") if isinstance(best, dict) else None
        self.ended = ended

    def count(self) -> str:
        """Progress as text: ``3 / 6 experiments``, ``42 / 200 cost``."""
        return self.progress.describe() if self.progress else "starting"

    def line(self) -> str:
        """The run in one line of plain text."""
        objective = self.campaign.spec.objectives[0].name
        return (f"{self.name} ({self.campaign.spec.strategy.name}): {self.count()}, "
                f"{self.in_flight} in flight, best {objective} {fmt(self.best)}")


class StatusBoard:
    """Shows the runs and the instruments while the demo runs.

    Args:
        console: where to draw.
    """

    def __init__(self, console: Console):
        self.console = console
        self.started = time.monotonic()
        self._live: Live | None = None
        self._printed: dict[str, float] = {}

    def note(self, text: str) -> None:
        """A line above the board."""
        self.console.print(text, highlight=False, soft_wrap=True)

    def serving(self, url: str, user: str, password: str) -> None:
        """Say where the lab is still serving, and how to log in."""
        self.console.print(f"\nThe lab is still running: dashboard {url}/dashboard (log in as "
                           f"[bold]{user}[/]/[bold]{password}[/]), API docs {url}/docs. Ctrl-C stops it.")

    @contextlib.contextmanager
    def live(self, views: Sequence[RunView]) -> Iterator[None]:
        """Draw the board in place while the block runs (on a terminal)."""
        if not self.console.is_terminal:
            yield
            return
        with Live(self._render(views, [], {}), console=self.console, refresh_per_second=4,
                  transient=False) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    def show(self, views: Sequence[RunView], reserved: Sequence[RequestDetail], tenant_names: dict[str, str]) -> None:
        """Redraw with the runs' latest state and the requests the instruments hold."""
        if self._live is not None:
            self._live.update(self._render(views, reserved, tenant_names))
            return
        for view in views:
            if self._printed.get(view.name) != view.done:
                self._printed[view.name] = view.done
                self.console.print(f"[{self._elapsed()}] {view.line()}", highlight=False, soft_wrap=True)

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def _render(self, views: Sequence[RunView], reserved: Sequence[RequestDetail],
                tenant_names: dict[str, str]) -> Group:
        runs = Table(title=f"campaigns ({self._elapsed()})", title_justify="left", box=box.SIMPLE_HEAD,
                     padding=(0, 1))
        runs.add_column("campaign", no_wrap=True)
        runs.add_column("strategy", no_wrap=True)
        runs.add_column("progress", no_wrap=True)
        runs.add_column("", justify="right", no_wrap=True)
        runs.add_column("in flight", justify="right")
        runs.add_column("best", justify="right", no_wrap=True)
        runs.add_column("status")
        for v in views:
            total = (v.progress.total if v.progress else None) or 0.0
            objective = v.campaign.spec.objectives[0].name
            status = _short(v.ended) if v.ended else v.status
            if v.failed:
                status += f", {v.failed} failed"
            runs.add_row(v.name, v.campaign.spec.strategy.name,
                         ProgressBar(total=max(total, 1e-9), completed=min(v.done, total), width=16),
                         v.count(), str(v.in_flight), f"{objective} {fmt(v.best)}" if v.best is not None else "",
                         status)
        instruments = Table(title="instruments", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
        instruments.add_column("tenant", no_wrap=True)
        instruments.add_column("working on")
        busy: dict[str, list[str]] = {name: [] for name in tenant_names.values()}
        for r in reserved:
            tenant = tenant_names.get(r.owner_tenant_uuid or "", None)
            if tenant is None:
                continue
            what = f"{r.request.quantity}/{','.join(r.request.methods)}"
            origin = r.campaign or ("sub-request" if r.parent_uuid else "")
            busy[tenant].append(f"{what} ({origin})" if origin else what)
        for tenant, work in busy.items():
            instruments.add_row(tenant, Text("; ".join(work)) if work else Text("idle", style="dim"))
        return Group(runs, instruments)


def _short(ended: str) -> str:
    """A run's end in a word: ``failed``, ``stopped``, ``given up`` or ``done``."""
    for word in ("failed", "stopped", "given up"):
        if ended.startswith(word):
            return word
    return "done"
