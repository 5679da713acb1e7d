"""The server's parts, built once per app: database, registry, services."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from .auth import Authenticator
from .campaigns import Campaigns
from .config import Settings
from .dead_letters import DeadLetters
from .db.engine import Database, open_database
from .db.group_commit import GroupCommit
from .db.migrate import upgrade
from .lab_pause import LabPause
from .metrics import LabMetrics
from .registry import Registry
from .requests import Policy, Requests
from .results import Results


@dataclass
class Lab:
    settings: Settings
    db: Database
    registry: Registry
    requests: Requests
    results: Results
    auth: Authenticator
    campaigns: Campaigns
    dead_letters: DeadLetters
    pause: LabPause
    #: What this replica did (claims, heartbeats, refused results, expired leases), counted in its process.
    activity: LabMetrics
    metrics: Any = None
    #: New requests' writes, those arriving together in one transaction (see ``db.group_commit``).
    writes: GroupCommit = field(init=False)
    #: The event-stream hubs, by event loop (see ``event_stream.hub_of``).
    event_hubs: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)

    @classmethod
    def open(cls, settings: Settings, background_checkpoints: bool = False) -> "Lab":
        """The lab on the settings' database (``background_checkpoints``: see ``open_database``)."""
        db = open_database(settings.engine_url(), settings.database_busy_seconds, background_checkpoints)
        if settings.auto_migrate:
            upgrade(db)
        registry = Registry(db, settings.cache_seconds)
        policy = Policy(settings.lease_seconds, settings.max_attempts, settings.max_lease_expiries)
        auth = Authenticator.open(db, settings)
        pause = LabPause(db)
        activity = LabMetrics(CollectorRegistry())
        return cls(settings, db, registry, Requests(db, registry, policy, pause, activity),
                   Results(db, registry, activity), auth, Campaigns(db, registry), DeadLetters(db), pause, activity)

    def __post_init__(self) -> None:
        self.writes = GroupCommit(self.db)

    def close(self) -> None:
        self.db.dispose()
