"""The tenant runtime: claims what its instruments can serve, runs it, posts the result.

One process may serve several instruments; each runs one request at a time,
but for a simulation whose backend hands its computations to an executor
(:mod:`labweave.drivers.compute`; a Dask cluster, :mod:`labweave.services.cluster`):
it keeps as many requests claimed as the executor has slots for them (the
cluster's worker threads, or its GPU workers for the MLIP), each with its own
lease and heartbeat. The runtime

- publishes its instruments' limitations for its tenant (the capabilities
  must be registered by an operator),
- wakes on the server's event stream (a request becoming pending) or on its
  poll, and claims with a lease,
- heartbeats the lease while the driver runs (a lost lease stops the job),
- posts each result with an idempotency key, through an on-disk outbox, so
  that a crash or a restart never loses or duplicates a result,
- rides out a server that is down, unreachable or answering 503 (its
  database locked or full): it waits (as long as ``Retry-After`` asks, within
  reason) and carries on, posting the results it kept meanwhile,
- reports failures as retryable or final, and
- on SIGTERM finishes what it holds (within a grace period) or releases it;
  on an operator's emergency stop, stops its instruments at once and
  releases their requests, then waits until an operator resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from labweave.drivers.base import DriverError, Instrument, InstrumentStopped, ParameterError
from labweave.schemas.api import Claim, RequestDetail
from labweave.schemas.core import Result
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import TRANSIENT, Conflict, LabweaveError, RequestRejected, retry_after

from labweave.services.logs import request_id_bound

from .context import current_request
from .outbox import Outbox

log = logging.getLogger(__name__)


#: The longest pause of the loop while the server is unavailable.
MAX_PAUSE = 10.0


class LeaseLost(Exception):
    """The server no longer holds this request for us."""


@dataclass
class Job:
    instrument: Instrument
    request: RequestDetail
    lease_seconds: float
    task: asyncio.Task | None = None
    lease_lost: bool = False
    key: str | None = None  # of its result in the outbox


@dataclass
class Counters:
    claimed: int = 0
    resolved: int = 0
    failed: int = 0
    released: int = 0
    reposted: int = 0


@dataclass
class TenantRuntime:
    """Serve ``instruments`` as the tenant of ``client``'s user.

    Args:
        client: logged in as a user bound to the tenant.
        instruments: the instruments this process serves.
        state_dir: where the outbox lives.
        lease_seconds: lease asked for at each claim; heartbeats come every third of it.
        poll_seconds: how often to look for work when no event arrives.
        grace_seconds: how long a graceful shutdown waits for running jobs.
    """

    client: AsyncLabClient
    instruments: list[Instrument]
    state_dir: Path = Path("labweave-tenant")
    lease_seconds: float = 60.0
    poll_seconds: float = 2.0
    grace_seconds: float = 30.0
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self):
        self.tenant_uuid: str | None = None
        self.outbox = Outbox(Path(self.state_dir) / "outbox")
        self.jobs: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._stopped_by_operator = False
        self._kept = False  # a result waits in the outbox for the server to come back

    # -- start -------------------------------------------------------------
    async def start(self) -> None:
        me = await self.client.me()
        if not me.tenant_uuid:
            raise LabweaveError(f"user {me.username} is not bound to a tenant (labweave user add --tenant UUID)")
        self.tenant_uuid = me.tenant_uuid
        entries = [entry for inst in self.instruments for entry in inst.limitations()]
        await self.client.set_limitations(self.tenant_uuid, entries)
        for inst in self.instruments:  # models loaded on the workers before the first claim
            if self._concurrent(inst):
                await inst.backend.executor.prepare(inst.backend.warmups())
        log.info("tenant %s serves %s", self.tenant_uuid,
                 ", ".join(f"{e['quantity']}/{e['method']}" for e in entries))
        await self.flush_outbox()

    async def flush_outbox(self) -> None:
        """Post the results kept on disk (but those a running job is posting itself)."""
        posting = {job.key for job in self.jobs.values()}
        for key, result in self.outbox.pending():
            if key in posting:
                continue
            try:
                await self.client.submit_result(result, idempotency_key=key)
                self.counters.reposted += 1
                log.info("re-posted result for %s", result["request_uuid"])
            except RequestRejected as exc:
                log.warning("server refused the kept result for %s: %s", result["request_uuid"], exc)
            self.outbox.done(key)

    # -- the loop ----------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful stop (SIGTERM): claim nothing more; finish or release what is held."""
        self._closing = True
        self._wake.set()

    async def run(self, until_idle: bool = False) -> None:
        """Serve until :meth:`shutdown` (or, with ``until_idle``, until nothing is left to claim)."""
        if self.tenant_uuid is None:
            await self.start()
        listener = asyncio.create_task(self._listen())
        try:
            while not self._closing:
                pause = self.poll_seconds
                try:
                    await self._check_stop_flag()
                    if self._kept:
                        self._kept = False
                        await self.flush_outbox()
                    claimed = 0 if self._stopped_by_operator else await self._claim_for_idle_instruments()
                except TRANSIENT as exc:  # the client's own retries are spent: wait, and try again
                    self._kept = self._kept or bool(self.outbox.pending())
                    pause = min(MAX_PAUSE, max(self.poll_seconds, retry_after(exc) or 0.0))
                    log.warning("server unavailable (%s); trying again in %.1f s", exc, pause)
                else:
                    if until_idle and not claimed and not self.jobs:
                        break
                    if claimed:
                        pause = 0.01
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), pause)
                except asyncio.TimeoutError:
                    pass
        finally:
            listener.cancel()
            await self._wind_down()

    async def _listen(self) -> None:
        """Wake the loop when a request becomes pending or a job ends."""
        try:
            async for event in self.client.stream_events(kinds=["request.status", "tenant.stop_requested",
                                                                "tenant.resumed"]):
                if event.to_status == "pending" or event.kind.startswith("tenant."):
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except LabweaveError as exc:  # the poll still works without the stream
            log.warning("event stream unavailable (%s); polling every %.1f s", exc, self.poll_seconds)

    async def _check_stop_flag(self) -> None:
        if self.tenant_uuid is None:  # not started: nothing is running to stop
            return
        record = await self.client.tenant(self.tenant_uuid)
        if record.stop_requested and not self._stopped_by_operator:
            log.warning("emergency stop requested by an operator")
            self._stopped_by_operator = True
            await self._stop_instruments("emergency stop by an operator")
        elif not record.stop_requested and self._stopped_by_operator:
            log.info("resumed by an operator")
            self._stopped_by_operator = False
            for inst in self.instruments:
                inst.resume()

    async def _room(self, inst: Instrument) -> int:
        """How many more requests ``inst`` may take now.

        One at a time, but for an instrument computing through a remote executor: as many as the
        slots of its pool on the cluster (shared with the other instruments of this process whose
        computations go to that pool), and no more than the instrument runs at once itself.
        """
        mine = sum(1 for job in self.jobs.values() if job.instrument is inst)
        backend = inst.backend
        if not (backend.offloads and backend.executor.remote):
            return 0 if mine else 1
        pool, slots = await backend.executor.slots(backend.resources)
        shared = 0
        for job in self.jobs.values():
            other = job.instrument.backend
            if other.offloads and other.executor is backend.executor and \
                    (await other.executor.slots(other.resources))[0] == pool:
                shared += 1
        return max(0, min(slots - shared, backend.concurrency() - mine))

    async def _claim_for_idle_instruments(self) -> int:
        claimed = 0
        for inst in self.instruments:
            by_quantity: dict[str, list[str]] = {}
            for op in inst.operations:
                by_quantity.setdefault(op.quantity, []).append(op.method)
            while not self._closing and await self._room(inst) > 0:
                for quantity, methods in by_quantity.items():
                    try:
                        claim = await self.client.claim(quantity, methods, self.lease_seconds)
                    except Conflict as exc:  # e.g. asked to stop between two checks
                        log.warning("claim refused: %s", exc)
                        return claimed
                    if claim is None:
                        continue
                    self._begin(inst, claim)
                    claimed += 1
                    break
                else:  # nothing pending for it
                    break
        return claimed

    def _begin(self, inst: Instrument, claim: Claim) -> None:
        uuid = claim.request.uuid
        job = Job(inst, claim.request, claim.lease.lease_seconds)
        self.jobs[uuid] = job
        self.counters.claimed += 1
        with request_id_bound(uuid):  # the job's task (and its heartbeats) log and call under the request's id
            log.info("%s claimed %s (%s)", inst.name, uuid, claim.request.request.quantity)
            job.task = asyncio.create_task(self._run_job(uuid, job))

    # -- one job -----------------------------------------------------------
    async def _run_job(self, uuid: str, job: Job) -> None:
        body = job.request.request
        ops = {op.key for op in job.instrument.operations}
        method = next(m for m in body.methods if (body.quantity, m) in ops)
        params = body.parameters[method]
        beat = asyncio.create_task(self._heartbeat(uuid, job))
        try:
            try:
                data = await self._perform(job, body.quantity, method, params)
            except ParameterError as exc:
                await self._fail(uuid, f"parameters outside {job.instrument.name}'s limits: {exc}", False)
                return
            except InstrumentStopped as exc:
                if not job.lease_lost:
                    await self._release(uuid, f"{job.instrument.name} stopped: {exc}")
                return
            except DriverError as exc:
                await self._fail(uuid, f"{job.instrument.name}: {exc}", exc.retryable)
                return
            # No heartbeat once the work is done: one racing the result would find the request
            # resolved, take that for a lost lease and stop the instrument under its other jobs.
            beat.cancel()
            if job.lease_lost:
                log.warning("lease of %s was lost while it ran; posting the result anyway", uuid)
            result = Result(data=data, quantity=body.quantity, method=[method], parameters={method: params},
                            tenant_uuid=self.tenant_uuid, request_uuid=uuid)
            updated = job.request.updated.isoformat() if job.request.updated else ""
            key = job.key = f"{self.tenant_uuid}:{uuid}:{updated}"
            self.outbox.put(key, result.model_dump(mode="json"))
            try:
                await self.client.submit_result(result, idempotency_key=key)
                self.counters.resolved += 1
                log.info("%s resolved %s", job.instrument.name, uuid)
            except RequestRejected as exc:
                log.warning("result for %s refused: %s", uuid, exc)
            self.outbox.done(key)
        except LabweaveError as exc:  # the server is unreachable: the outbox keeps the result
            log.error("job %s: %s (its result is kept and posted when the server answers)", uuid, exc)
            self._kept = True
        finally:
            beat.cancel()
            self.jobs.pop(uuid, None)
            self._wake.set()

    async def _perform(self, job: Job, quantity: str, method: str, params: dict) -> dict:
        async def progress(fraction: float, message: str) -> None:
            log.debug("%s: %.0f%% %s", job.instrument.name, 100 * fraction, message)

        token = current_request.set(job.request.uuid)
        try:
            return await job.instrument.perform(quantity, method, params, progress)
        finally:
            current_request.reset(token)

    async def _heartbeat(self, uuid: str, job: Job) -> None:
        interval = max(0.2, job.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.client.heartbeat(uuid, job.lease_seconds)
            except Conflict:
                job.lease_lost = True
                if self._concurrent(job.instrument):  # stop this request's computation, not the others'
                    log.warning("lease of %s lost; cancelling its computation", uuid)
                    if job.task is not None:
                        job.task.cancel()
                    return
                log.warning("lease of %s lost; stopping %s", uuid, job.instrument.name)
                await job.instrument.safe_stop()
                job.instrument.resume()
                return
            except LabweaveError as exc:
                log.warning("heartbeat of %s failed: %s", uuid, exc)

    @staticmethod
    def _concurrent(inst: Instrument) -> bool:
        """Whether the instrument may run several requests at once (its computations on a cluster)."""
        return inst.backend.offloads and inst.backend.executor.remote

    async def _fail(self, uuid: str, reason: str, retryable: bool) -> None:
        try:
            await self.client.fail(uuid, reason, retryable)
            self.counters.failed += 1
        except RequestRejected as exc:
            log.warning("could not report the failure of %s: %s", uuid, exc)

    async def _release(self, uuid: str, reason: str) -> None:
        try:
            await self.client.release(uuid, reason)
            self.counters.released += 1
        except RequestRejected as exc:
            log.warning("could not release %s: %s", uuid, exc)

    # -- stopping ----------------------------------------------------------
    async def _stop_instruments(self, reason: str) -> None:
        for inst in self.instruments:
            await inst.safe_stop()
        running = [job.task for job in self.jobs.values() if job.task]
        if running:
            await asyncio.wait(running, timeout=30)

    async def _wind_down(self) -> None:
        running = [job.task for job in self.jobs.values() if job.task]
        if running:
            log.info("waiting up to %.0f s for %d running job(s)", self.grace_seconds, len(running))
            done, pending = await asyncio.wait(running, timeout=self.grace_seconds)
            if pending:
                await self._stop_instruments("shutdown")
        deadline = time.monotonic() + 5
        while self.jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
