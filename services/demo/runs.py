"""What a run of the demo is asked for and what it leaves: the types the demo's modules share.

:mod:`.lab` makes them; :mod:`.replicates`, :mod:`.analysis` and
:mod:`.report` read them. A campaign run holds its requests and results as
the wire models (:class:`~labweave.schemas.api.RequestDetail`,
:class:`~labweave.schemas.core.ResultInfo`) that
:mod:`labweave.optimizer.analytics` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labweave.optimizer import analytics
from labweave.optimizer.analytics import CampaignTerms, Observation, Progress
from labweave.optimizer.campaign import Campaign
from labweave.schemas.api import RequestDetail
from labweave.schemas.core import ResultInfo
from labweave.schemas.tenant import TenantInfo

from .campaigns import DEFAULT_CAMPAIGNS, DemoCampaign, DemoRecipe


@dataclass
class DemoOptions:
    """What ``labweave demo`` was asked for.

    Args:
        campaigns: campaign keys (``electrolyte``, ``pld``, ``materials``, ``perovskite``).
        budget: experiments per run (default: each campaign's demo budget).
        seed: seed of the strategies and the simulated instruments.
        database_url: the database (default: a fresh SQLite file in ``out``).
        out: the report's folder (also holds the logs and the simulated lab's state).
        keep_serving: leave the lab running at the end, until interrupted.
        replicates: measurements of each run's recommended point on a noisy instrument (default:
            each campaign's demo recipe; 0: none, the runs compared on their best single result).
    """

    campaigns: tuple[str, ...] = DEFAULT_CAMPAIGNS
    budget: int | None = None
    seed: int = 0
    database_url: str | None = None
    out: Path = Path("labweave-report")
    keep_serving: bool = False
    replicates: int | None = None

    def replicates_of(self, recipe: DemoRecipe) -> int:
        """How many replicates of each run's recommended point the campaign of ``recipe`` asks for."""
        return recipe.replicates if self.replicates is None else self.replicates


@dataclass
class CampaignRun:
    """One campaign run as the server holds it at the end.

    Args:
        campaign: the campaign (as run, with its final name).
        role: ``"optimised"`` or ``"baseline"``.
        record: the server's campaign record (spec, status, state).
        requests: the campaign's requests.
        results: the results of its requests.
        ended: why the daemon stopped.
        replicated: the point its strategy recommended and that was measured again (see
            :mod:`.replicates`), where its recipe asks for replicates.
        replicates: values read from those replicate measurements.
        replicate_failures: replicates that gave no usable result.
        tenants: the lab's tenants, naming who ran what in the run's export.
    """

    campaign: Campaign
    role: str
    record: dict
    requests: list[RequestDetail]
    results: list[ResultInfo]
    ended: str
    replicated: dict[str, Any] | None = None
    replicates: list[dict[str, float]] = field(default_factory=list)
    replicate_failures: int = 0
    #: the lab's tenants when the run was collected (to name who ran what in its export)
    tenants: list[TenantInfo] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.campaign.spec.name

    @property
    def state(self) -> dict:
        return self.record.get("state") or {}

    @property
    def terms(self) -> CampaignTerms:
        """The campaign's own terms (objectives, budget, fidelities)."""
        return CampaignTerms.of(self.campaign.spec)

    def observations(self, terms: CampaignTerms | None = None) -> list[Observation]:
        """The run's results with their values, read on ``terms`` (default: its own)."""
        return analytics.observations(terms or self.terms, self.requests, self.results)

    @property
    def progress(self) -> Progress:
        """How far the run got, in its budget's unit."""
        return analytics.progress(self.terms, str(self.record.get("status", "")), self.requests, self.results)


@dataclass
class DemoResult:
    """Everything a run of the demo produced.

    Args:
        options: what was asked for.
        campaigns: the demo campaigns that ran.
        runs: by demo campaign key, the optimised run and the baseline run.
        left_out: one sentence per campaign that could not run here.
        seconds: wall time of the lab (server start to the last result).
        server_url: where the server listened.
        database_url: the database used.
    """

    options: DemoOptions
    campaigns: list[DemoCampaign]
    runs: dict[str, tuple[CampaignRun, CampaignRun]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    seconds: float = 0.0
    server_url: str = ""
    database_url: str = ""
