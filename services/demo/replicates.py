"""Replicates of each run's recommended point, for campaigns on noisy instruments.

One cell that happened to last long is not a finding: cells built from the
same electrolyte differ by a few cycles. Where a demo recipe asks for
replicates, the point each run's strategy recommends (its
:meth:`~labweave.optimizer.strategies.base.Strategy.recommend`: for random
search the best single result, for the Bayesian strategy the measured point
with the best posterior mean) is measured that many times more, as soon as
that run has ended (:func:`post`; the instruments need not wait for the other
run), and the runs are compared on the replicates' mean (:func:`gather`,
:func:`.analysis.score`), as a lab would confirm a winner before believing it.

The replicates are ordinary requests, labelled with the run's name and
:data:`REPLICATE_SUFFIX`, so that they neither count as the run's own
experiments nor pass unseen: the queue and the event log show them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from labweave.schemas.core import RequestStatus
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import LabweaveError

from .runs import CampaignRun

log = logging.getLogger(__name__)

#: Suffix of the campaign label on a run's replicate requests.
REPLICATE_SUFFIX = "-replicates"
#: Statuses a replicate request ends in.
ENDED = (RequestStatus.RESOLVED, RequestStatus.FAILED, RequestStatus.RETRACTED)
#: How often the replicates' progress is read.
POLL_SECONDS = 2.0


def recommended_point(run: CampaignRun) -> dict | None:
    """The point the run's strategy recommends from its results, ``None`` if it has none."""
    strategy = run.campaign.make_strategy()
    return strategy.recommend([(o.parameters, o.values) for o in run.observations() if o.complete])


@dataclass
class Posted:
    """Replicate requests of one run: the point measured again and the requests' uuids."""

    point: dict
    uuids: list[str]


async def post(requester: AsyncLabClient, tenant_uuid: str, run: CampaignRun, count: int) -> Posted | None:
    """Ask for ``count`` replicates of the point ``run``'s strategy recommends (``None`` if it has none).

    Args:
        requester: the optimizer's client (a requester bound to ``tenant_uuid``).
        tenant_uuid: the tenant the requests are made for.
        run: the ended run, with its requests and results.
        count: replicates to ask for.
    """
    point = await asyncio.to_thread(recommended_point, run)
    if point is None or count < 1:
        return None
    body = run.campaign.build_request(point) | {"tenant_uuid": tenant_uuid}
    provenance = {"parameters": point, "replicate_of": run.name,
                  "reason": f"replicate of the point {run.name} recommends"}
    uuids = []
    for _ in range(count):
        created = await requester.create_request(
            body, priority=run.campaign.spec.request.priority + 1,
            campaign=run.name + REPLICATE_SUFFIX, provenance=provenance)
        uuids.append(created.uuid)
    log.info("%s: %d replicates of its recommended point %s", run.name, count, point)
    return Posted(point, uuids)


async def gather(requester: AsyncLabClient, posted: Mapping[str, Posted],
                 runs: Mapping[str, tuple[CampaignRun, CampaignRun]], *, timeout: float) -> None:
    """Wait for the replicates and read them into the runs (``replicated``, ``replicates``).

    Args:
        requester: the client that posted them.
        posted: by run name, what :func:`post` asked for.
        runs: by demo campaign key, the optimised and the baseline run.
        timeout: seconds to wait for all replicates; those still open then are retracted and left out.
    """
    if not posted:
        return
    deadline = time.monotonic() + timeout
    waiting = {u for p in posted.values() for u in p.uuids}
    while waiting and time.monotonic() < deadline:
        for uuid in list(waiting):
            if (await requester.request(uuid)).status in ENDED:
                waiting.discard(uuid)
        if waiting:
            await asyncio.sleep(POLL_SECONDS)
    for uuid in waiting:
        log.warning("replicate %s did not finish in %.0f s; retracting it", uuid, timeout)
        try:
            await requester.cancel(uuid, reason="the demo stopped waiting for replicates")
        except LabweaveError as exc:  # it ended meanwhile, or cannot be retracted any more: leave it
            log.warning("replicate %s not retracted: %s", uuid, exc)
    for pair in runs.values():
        for run in pair:
            asked = posted.get(run.name)
            if asked is None:
                continue
            run.replicated = asked.point
            for uuid in asked.uuids:
                found = await requester.result_for_request(uuid)
                if found is None:
                    run.replicate_failures += 1
                    continue
                try:
                    run.replicates.append(run.campaign.read_values(found.result.data))
                except ValueError as exc:
                    log.warning("replicate %s of %s not usable: %s", uuid, run.name, exc)
                    run.replicate_failures += 1
