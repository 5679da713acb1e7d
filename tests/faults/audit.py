"""What every fault must leave intact, read straight from the lab's database and the daemons' logs."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .lab import FaultLab

ENDED = {"resolved", "failed", "retracted"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: What a daemon logs once the server has acknowledged a write (LABWEAVE_LOG_LEVEL=INFO).
ACKED_RESULT = re.compile(rf"(?: resolved |re-posted result for )({UUID})")
ACKED_REQUEST = re.compile(rf": proposed ({UUID})")


def audit(lab: FaultLab, campaign: str, budget: int, acknowledged_requests: Iterable[str] = ()) -> dict[str, Any]:
    """Check that nothing acknowledged is lost, nothing is duplicated, every request has ended and the
    campaign spent its budget; returns figures for the test's own checks."""
    requests = lab.query("SELECT * FROM request")
    results = lab.query("SELECT * FROM result WHERE status = 'original'")
    by_uuid = {r["uuid"]: r for r in requests}
    results_of = Counter(r["request_uuid"] for r in results)

    # nothing acknowledged lost: every result a tenant was told is stored, every request a daemon or
    # client was given a UUID for, is in the database
    acked_results = set(ACKED_RESULT.findall(lab.logs("tenant")))
    lost_results = sorted(u for u in acked_results if results_of[u] != 1)
    assert not lost_results, f"acknowledged results missing: {lost_results}"
    acked_requests = set(ACKED_REQUEST.findall(lab.logs("optimizer"))) | set(acknowledged_requests)
    lost_requests = sorted(acked_requests - set(by_uuid))
    assert not lost_requests, f"acknowledged requests missing: {lost_requests}"

    # nothing duplicated: one original result per request, each request resolved once, the outbox empty
    assert max(results_of.values(), default=1) == 1, results_of.most_common(3)
    resolutions = Counter(e["subject"] for e in lab.query(
        "SELECT subject FROM event WHERE kind = 'request.status' AND to_status = 'resolved'"))
    assert max(resolutions.values(), default=1) == 1, resolutions.most_common(3)
    resolved = {u for u, r in by_uuid.items() if r["status"] == "resolved"}
    assert resolved == set(results_of) & set(by_uuid), "a resolved request without its result, or the reverse"
    keys = [r["idempotency_key"] for r in results if r["idempotency_key"]]
    assert len(keys) == len(set(keys))
    outbox = sorted((lab.root / "chamber").rglob("outbox/*.json"))
    assert not outbox, f"results never acknowledged: {[p.name for p in outbox]}"

    # every request ended
    open_ = Counter(r["status"] for r in requests if r["status"] not in ENDED | {"unsolicited"})
    assert not open_, f"requests not ended: {dict(open_)}"

    # the campaign spent its budget, each point once
    mine = [r for r in requests if r["campaign"] == campaign]
    assert len(mine) == budget, f"{len(mine)} requests for a budget of {budget}"
    points = Counter(r["parameters"] for r in mine)
    assert max(points.values()) == 1, f"a point requested twice: {points.most_common(1)}"
    (record,) = lab.query("SELECT status, state FROM campaign WHERE name = ?", campaign)
    assert record["status"] == "finished", record["status"]
    statuses = Counter(r["status"] for r in mine)
    assert json.loads(record["state"])["n_observations"] == statuses["resolved"]
    return {"statuses": statuses, "requests": len(requests), "results": len(results),
            "acknowledged_results": len(acked_results), "acknowledged_requests": len(acked_requests),
            "lease_expiries": sum(r["lease_expiries"] for r in mine)}
