"""Query parameters shared by several routes, each with its bounds written once.

Every numeric parameter a client can send is bounded here, so an absurd value
(a 30-digit cursor, a lease of 1e12 seconds) is a 422 naming the parameter,
never an overflow in the database or a lease that outlives the lab.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_ROW_ID = 2**63 - 1  # the largest id a BIGINT column (and SQLite's INTEGER) holds
MAX_LEASE_SECONDS = 86_400.0  # a day: ClaimCreate.lease_seconds has the same bound

Limit = Annotated[int, Query(ge=1, le=1000, description="how many items a page holds")]
Cursor = Annotated[
    int | None, Query(ge=0, le=MAX_ROW_ID, description="the next_cursor of the previous page")
]
After = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="only events with a larger id")]
StreamAfter = Annotated[
    int | None, Query(ge=0, le=MAX_ROW_ID, description="only events with a larger id (default: from now on)")
]
LeaseSeconds = Annotated[
    float | None,
    Query(gt=0, le=MAX_LEASE_SECONDS, description="the lease's new length in seconds (default: its current one)"),
]
