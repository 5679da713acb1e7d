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
  that a crash or a restart never loses or duplicates a result; a result
  the server refuses for good is kept as a dead letter with the server's
  message (never dropped) and reported to the server for the operator,
- rides out a server that is down, unreachable or answering 503 (its
  database locked or full): it waits (as long as ``Retry-After`` asks, within
  reason) and carries on, posting the results it kept meanwhile,
- reports failures as retryable or final, and
- on SIGTERM finishes what it holds (within a grace period) or releases it;
- on an emergency stop (an operator's, learnt from its poll or the event
  stream; or a local one, SIGUSR1 to the process, which it reports to the
  server) brings every instrument to its safe state at once, interrupts the
  running work, posts a retryable failure of each request it held, and
  claims nothing until an operator resets the stop on the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from labweave.drivers.base import DriverError, Instrument, InstrumentStopped, ParameterError
from labweave.schemas.api import Claim, RequestDetail
from labweave.schemas.core import Result
from labweave.schemas.tenant import DeadLetter
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import (TRANSIENT, Conflict, LabPaused, LabweaveError, RequestRejected,
                                             retry_after)

from labweave.services.logs import request_id_bound

from .context import current_request
from .outbox import Outbox

log = logging.getLogger(__name__)


#: The longest pause of the loop while the server is unavailable.
MAX_PAUSE = 10.0
#: How long an emergency stop lets running work end by itself (its instrument stopped) before the
#: runtime cancels it.
ESTOP_GRACE = 2.0


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
        #: Why the runtime is emergency-stopped (None: it is not); a stop holds until an operator resets it.
        self.estop: str | None = None
        #: The server's record says stopped (an operator's stop, or ours reported); None: it cannot be told.
        self._estop_on_server: bool | None = False
        self._estop_task: asyncio.Future | None = None
        self._lab_paused = False  # an operator paused the whole lab: claims wait for the resume
        self._kept = False  # a result waits in the outbox for the server to come back
        self._reported_dead: list[tuple[str, str]] | None = None  # the dead letters last reported

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
        await self.report_dead_letters()

    async def flush_outbox(self) -> None:
        """Post the results kept on disk (but those a running job is posting itself)."""
        if self.estop:  # a stopped tenant posts nothing new; they wait for the reset
            return
        posting = {job.key for job in self.jobs.values()}
        for key, result in self.outbox.pending():
            if key in posting:
                continue
            try:
                await self.client.submit_result(result, idempotency_key=key)
            except RequestRejected as exc:
                await self._refused(key, str(result.get("request_uuid")), exc)
                continue
            self.counters.reposted += 1
            log.info("re-posted result for %s", result["request_uuid"])
            self.outbox.done(key)

    async def _refused(self, key: str, request_uuid: str, exc: RequestRejected) -> bool:
        """The server refused a result: keep it to post again, or as a dead letter; never drop it.

        Kept in the outbox (posted again later) when the refusal says nothing about
        the result: a login refused (401), a throttle (429), or a 409 while this
        tenant is stopped or deactivated (it may post once an operator resets it).
        Any other 4xx is the server's final word on the result: a dead letter, with
        the server's message, for an operator to retry or discard.
        """
        if exc.status_code in (401, 429) or (exc.status_code == 409 and await self._held_back()):
            log.warning("result for %s refused for now (%s); kept in the outbox to post again", request_uuid, exc)
            self._kept = True
            return False
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        self.outbox.dead(key, detail[:4000], exc.status_code)
        log.error("result for %s refused by the server (%s): kept as a dead letter (labweave tenant outbox)",
                  request_uuid, exc)
        return True

    async def _held_back(self) -> bool:
        """Whether this tenant is stopped or deactivated now (so the server refuses anything it posts)."""
        if self.estop:
            return True
        try:
            record = await self.client.tenant(self.tenant_uuid or "")
        except LabweaveError:
            return False
        return record.stop_requested or not record.is_active

    async def report_dead_letters(self) -> None:
        """Tell the server the dead letters kept here, when they changed since the last report."""
        letters = []
        for entry in self.outbox.dead_letters():
            result = entry["result"]
            methods = result.get("method") or ["?"]
            letters.append(DeadLetter(
                key=entry["key"], request_uuid=result.get("request_uuid"), quantity=str(result.get("quantity", "?")),
                method=str(methods[0] if isinstance(methods, list) else methods), refusal=entry["refusal"],
                status_code=entry.get("status_code"),
                kept_at=datetime.fromtimestamp(entry["kept_at"], tz=timezone.utc)))
        seen = [(letter.key, letter.refusal) for letter in letters]
        if seen == self._reported_dead or self.tenant_uuid is None:
            return
        try:
            await self.client.report_dead_letters(self.tenant_uuid, letters)
        except RequestRejected as exc:
            log.warning("the server refused the report of %d dead letter(s): %s", len(letters), exc)
        self._reported_dead = seen

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
                    if (self._kept or self._waiting_in_outbox()) and not self.estop:
                        self._kept = False
                        await self.flush_outbox()
                    await self.report_dead_letters()
                    claimed = 0 if self.estop else await self._claim_for_idle_instruments()
                except LabPaused as exc:  # an operator paused the lab: not a failure; wait and ask again
                    claimed = 0
                    if not self._lab_paused:
                        log.warning("%s; waiting", exc.detail)
                    self._lab_paused = True
                    pause = min(MAX_PAUSE, max(self.poll_seconds, exc.retry_after or 0.0))
                except TRANSIENT as exc:  # the client's own retries are spent: wait, and try again
                    self._kept = self._kept or bool(self.outbox.pending())
                    pause = min(MAX_PAUSE, max(self.poll_seconds, retry_after(exc) or 0.0))
                    log.warning("server unavailable (%s); trying again in %.1f s", exc, pause)
                else:
                    if self._lab_paused:
                        log.info("the lab was resumed: claiming again")
                        self._lab_paused = False
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

    def _waiting_in_outbox(self) -> bool:
        """Whether a result not posted by a running job waits in the outbox (an operator's retry puts one there)."""
        posting = {job.key for job in self.jobs.values()}
        return any(key not in posting for key, _ in self.outbox.pending())

    async def _listen(self) -> None:
        """Wake the loop when a request becomes pending or a job ends."""
        try:
            async for event in self.client.stream_events(kinds=["request.status", "tenant.stop_requested",
                                                                "tenant.resumed", "lab.resumed"]):
                if event.to_status == "pending" or event.kind.startswith(("tenant.", "lab.")):
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except LabweaveError as exc:  # the poll still works without the stream
            log.warning("event stream unavailable (%s); polling every %.1f s", exc, self.poll_seconds)

    async def _check_stop_flag(self) -> None:
        """Follow the server's emergency-stop flag of this tenant (and report a local stop to it)."""
        if self.tenant_uuid is None:  # not started: nothing is running to stop
            return
        if self.estop and not self._estop_on_server:  # a local stop not yet known to the server
            try:
                await self.client.stop_tenant(self.tenant_uuid)
            except RequestRejected as exc:
                log.error("the server refused the report of the local emergency stop (%s); it holds until "
                          "this tenant is restarted", exc)
                self._estop_on_server = None  # never reset from the server
                return
            self._estop_on_server = True
            log.warning("local emergency stop reported to the server; an operator resets it there")
            return
        if self._estop_on_server is None:
            return
        record = await self.client.tenant(self.tenant_uuid)
        if record.stop_requested and not self.estop:
            self._estop_on_server = True
            await self.emergency_stop("an operator's emergency stop")
        elif not record.stop_requested and self.estop and self._estop_on_server:
            log.warning("emergency stop reset by an operator: %s re-armed, claiming again",
                        ", ".join(inst.name for inst in self.instruments))
            self.estop = None
            self._estop_on_server = False
            for inst in self.instruments:
                inst.resume()

    def local_emergency_stop(self) -> None:
        """An emergency stop from this machine (SIGUSR1): acts at once, then is reported to the server."""
        if self.estop:
            return
        self._estop_task = asyncio.ensure_future(self.emergency_stop("a local emergency stop (SIGUSR1)"))
        self._wake.set()

    async def emergency_stop(self, reason: str) -> None:
        """Every instrument to its safe state now; fail the work held; claim nothing until an operator resets.

        The requests held are failed as *retryable*: nothing was wrong with them, the
        lab stopped under them, so another tenant (or this one, once reset) may run
        them again; the server counts each such failure as an attempt, so a request
        whose runs keep ending in emergency stops is failed for good at its attempt limit.
        """
        if self.estop:
            return
        self.estop = reason
        log.warning("EMERGENCY STOP (%s): stopping %s", reason, ", ".join(inst.name for inst in self.instruments))
        for inst in self.instruments:
            try:
                await inst.safe_stop()
            except Exception:  # one instrument failing to stop must not keep the others running
                log.exception("%s: safe stop failed", inst.name)
            state = "in its safe state" if inst.backend.in_safe_state() else "NOT confirmed in its safe state"
            log.warning("%s %s: %s", inst.name, state, inst.backend.safe_state)
        running = [job.task for job in self.jobs.values() if job.task]
        if running:
            done, pending = await asyncio.wait(running, timeout=ESTOP_GRACE)
            for task in pending:  # a backend slow to notice its stop: the work is interrupted here
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=ESTOP_GRACE)
        self._wake.set()

    async def _fail_estopped(self, uuid: str, job: Job) -> None:
        inst = job.instrument
        safe = "its safe state" if inst.backend.in_safe_state() else "a state not confirmed safe"
        await self._fail(uuid, f"emergency stop ({self.estop}): {inst.name} interrupted and brought to {safe}: "
                               f"{inst.backend.safe_state}", True)

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
                    except LabPaused:
                        raise
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
                if self.estop:
                    await self._fail_estopped(uuid, job)
                elif not job.lease_lost:
                    await self._release(uuid, f"{job.instrument.name} stopped: {exc}")
                return
            except asyncio.CancelledError:
                if not self.estop:
                    raise
                await self._fail_estopped(uuid, job)  # interrupted by the emergency stop itself
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
            except RequestRejected as exc:
                if await self._refused(key, uuid, exc):
                    # final: running it again gives a result refused again; once an operator has fixed
                    # what made the server refuse it, the dead letter is posted as a late result
                    await self._fail(uuid, f"its result was refused by the server ({exc.status_code}: "
                                           f"{str(exc.detail)[:1000]}); kept by the tenant as dead letter {key}", False)
            else:
                self.counters.resolved += 1
                log.info("%s resolved %s", job.instrument.name, uuid)
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
                # refused because an operator stopped this tenant? then the emergency stop fails the work
                try:  # shielded: the job ending cancels this heartbeat, not the emergency stop it started
                    await asyncio.shield(self._check_stop_flag())
                except LabweaveError:
                    pass
                if self.estop:
                    return
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
