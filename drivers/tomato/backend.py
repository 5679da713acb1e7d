"""The tomato backend: an instrument whose hardware is a pipeline of a running tomato daemon.

A job goes as a tomato user would run it by hand (``tomato pipeline load``, ``pipeline ready``, ``ketchup
submit``, ``ketchup status``), through tomato's Python API (:mod:`.daemon`):

1. each task is validated by the component's own driver (tomato's ``task_validate``): a task the device
   cannot run is refused before anything is queued, with tomato's message;
2. the request's sample is loaded into the pipeline, the pipeline marked ready, the payload submitted;
3. the job is followed (``q``, ``qw``, ``r``) every ``poll_seconds`` while the tenant runtime heartbeats
   the lease; progress is the elapsed time over the tasks' longest duration;
4. when it ends, its NetCDF file is read back (:mod:`.data`); a cancelled job (``cd``) raises
   :class:`~labweave.drivers.base.InstrumentStopped`, a crashed one (``ce``) a retryable fault with the
   last error line of tomato's job log; a daemon that stops answering for ``unreachable_seconds`` is a
   retryable fault naming the job;
5. the sample is ejected.

:meth:`TomatoBackend.stop` (an emergency stop or a lost lease) cancels the running job with ``ketchup
cancel``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import Field

from labweave.drivers.base import (Backend, BackendContext, BackendSettings, InstrumentFault, InstrumentStopped,
                                   ParameterError, Progress)

from .daemon import (CANCELLED, COMPLETE, CRASHED, FINISHED, RUNNING, Component, TomatoDaemon, TomatoError,
                     TomatoRefused, TomatoUnavailable)
from .data import JobData, JobDataError, read_job_data
from .limits import AttrLimit, attr_limits
from .payload import TomatoTask, build_payload, check_payload

log = logging.getLogger(__name__)

#: How long a stop waits for tomato to end a cancelled job before it stops the devices' tasks, s.
STOP_WAIT_SECONDS = 10.0


class TomatoSettings(BackendSettings):
    """``--backend-option`` of the tomato backend.

    Args:
        port: the tomato daemon's port on this machine (``tomato start -p PORT``).
        pipeline: the tomato pipeline the instrument is.
        timeout_ms: how long one call to tomato waits for its answer.
        poll_seconds: how often a running job's status is read.
        unreachable_seconds: how long the daemon may stay silent during a job before the job fails
            (retryable).
        output_dir: where tomato writes the jobs' data (default: ``tomato/`` in the lab's folder).
    """

    port: int = Field(ge=1, le=65535)
    pipeline: str = Field(min_length=1)
    timeout_ms: int = Field(default=3000, ge=100, le=600_000)
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    unreachable_seconds: float = Field(default=15.0, gt=0, le=86400)
    output_dir: Path | None = None


@dataclass(frozen=True)
class Role:
    """A component of the pipeline as the instrument sees it: its techniques and settable attributes."""

    component: Component
    limits: dict[str, AttrLimit]

    @property
    def techniques(self) -> list[str]:
        return sorted(self.component.capabilities)


@dataclass
class JobOutcome:
    """A tomato job that completed: its id, and its data."""

    jobid: int
    data: JobData
    path: Path


class TomatoBackend(Backend):
    """A tomato pipeline driven through its daemon."""

    settings_model = TomatoSettings

    def __init__(self, settings: TomatoSettings, output_dir: Path):
        self.settings = settings
        self.output_dir = output_dir.resolve()
        self.daemon = TomatoDaemon(settings.port, settings.timeout_ms)
        self.roles: dict[str, Role] = {}
        self._jobid: int | None = None
        self._stopping = False

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        assert isinstance(settings, TomatoSettings)
        return cls(settings, settings.output_dir or context.state_dir / "tomato")

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    # -- the device ----------------------------------------------------------
    def describe_now(self) -> dict[str, Role]:
        """The pipeline's components by role, with their techniques and attribute limits (asked once; blocks).

        Raises:
            InstrumentFault: the daemon does not answer (retryable) or has no such pipeline (final).
        """
        if not self.roles:
            try:
                _, components = self.daemon.pipeline(self.settings.pipeline)
                self.roles = {c.role: Role(c, attr_limits(self.daemon.attrs(c))) for c in components}
            except TomatoError as exc:
                raise InstrumentFault(f"tomato: {exc}", retryable=exc.retryable) from None
        return self.roles

    async def describe(self) -> dict[str, Role]:
        """:meth:`describe_now` off the event loop."""
        return self.roles or await self._call(self.describe_now)

    async def setup(self) -> None:
        self._stopping = False
        await self.describe()

    async def stop(self) -> None:
        """Cancel the running job and stop its tasks on the devices (idempotent); the job's follower then
        raises InstrumentStopped."""
        self._stopping = True
        jobid = self._jobid
        if jobid is None:
            return
        try:
            await self._call(self.daemon.cancel, jobid)
            log.info("tomato job %d cancelled", jobid)
            # the daemon ends the job's process first (status cd); stopping the task before that would let
            # the job see its task end and finish as complete
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while time.monotonic() < deadline:
                if (await self._call(self.daemon.job, jobid)).status in FINISHED:
                    break
                await asyncio.sleep(0.2)
        except TomatoError as exc:
            log.warning("could not cancel tomato job %d: %s", jobid, exc)
        for role in self.roles.values():
            try:
                answer = await self._call(self.daemon.stop_task, role.component)
                log.info("tomato %s: %s", role.component.role, answer)
            except TomatoError as exc:
                log.warning("could not stop the task on the %s: %s", role.component.role, exc)

    # -- a job ---------------------------------------------------------------
    async def validate(self, tasks: Sequence[TomatoTask]) -> None:
        """Ask each task's component driver whether it can run it.

        Raises:
            ParameterError: naming the task and carrying tomato's refusal.
            InstrumentFault: tomato does not answer (retryable).
        """
        roles = await self.describe()
        checked = check_payload(build_payload(tasks, "check", self.output_dir, "check")).method
        for i, (task, parsed) in enumerate(zip(tasks, checked)):
            role = roles.get(task.component_role)
            if role is None:
                raise ParameterError(f"tasks[{i}].component_role",
                                     f"pipeline {self.settings.pipeline!r} has no component in role "
                                     f"{task.component_role!r} (its roles: {', '.join(sorted(roles))})")
            if task.technique_name not in role.component.capabilities:
                raise ParameterError(f"tasks[{i}].technique_name",
                                     f"the {task.component_role} cannot run {task.technique_name!r} "
                                     f"(its techniques: {', '.join(role.techniques)})")
            for name, value in task.task_params.items():
                limit = role.limits.get(name)
                if limit is None:
                    raise ParameterError(f"tasks[{i}].task_params.{name}",
                                         f"the {task.component_role} has no attribute a task may set of that "
                                         f"name (its attributes: {', '.join(role.limits) or 'none'})")
                reason = limit.refusal(value)
                if reason is not None:
                    raise ParameterError(f"tasks[{i}].task_params.{name}", reason)
            try:
                refusal = await self._call(self.daemon.validate_task, role.component, parsed)
            except TomatoError as exc:
                raise InstrumentFault(f"tomato: {exc}", retryable=exc.retryable) from None
            if refusal is not None:
                raise ParameterError(f"tasks[{i}]", f"tomato refuses {task.technique_name!r}: {refusal}")

    async def run_job(self, tasks: Sequence[TomatoTask], sample: str, jobname: str,
                      progress: Progress) -> JobOutcome:
        """Run ``tasks`` on ``sample`` as one tomato job and read its data.

        Raises:
            ParameterError: tomato refuses a task.
            InstrumentStopped: the job was cancelled (a stop, a lost lease, or by hand).
            InstrumentFault: tomato refused the job, the job crashed, or the daemon went away.
        """
        self._stopping = False
        await self.validate(tasks)
        payload = build_payload(tasks, sample, self.output_dir, jobname)
        try:
            await self._call(self.daemon.load_sample, self.settings.pipeline, sample)
            job = await self._call(self.daemon.submit, payload, self.output_dir / "payloads", jobname)
        except TomatoError as exc:
            raise InstrumentFault(f"tomato: {exc}", retryable=exc.retryable) from None
        self._jobid = jobid = int(job.id)
        log.info("tomato job %d (%s) submitted on %s", jobid, jobname, self.settings.pipeline)
        try:
            if self._stopping:  # stopped while submitting
                await self.stop()
            record = await self._follow(jobid, tasks, progress)
        finally:
            self._jobid = None
        try:
            await self._call(self._eject_when_free)
        except TomatoError as exc:
            log.warning("could not eject the sample from %s: %s", self.settings.pipeline, exc)
        if record.status == CANCELLED or self._stopping:  # a job stopped under way holds partial data only
            raise InstrumentStopped(f"tomato job {jobid} was cancelled")
        if record.status == CRASHED:
            raise InstrumentFault(f"tomato job {jobid} failed: {_last_error(record)}", retryable=True)
        path = Path(record.respath)
        try:
            return JobOutcome(jobid, await self._call(read_job_data, path), path)
        except JobDataError as exc:
            raise InstrumentFault(f"tomato job {jobid}: {exc}", retryable=True) from None

    async def _follow(self, jobid: int, tasks: Sequence[TomatoTask], progress: Progress) -> Any:
        """Poll the job until it ends; its last record."""
        longest = max((t.max_duration for t in tasks), default=1.0)
        silent_since: float | None = None
        started: float | None = None
        seen = None
        while True:
            try:
                record = await self._call(self.daemon.job, jobid)
                silent_since = None
            except TomatoUnavailable as exc:
                now = time.monotonic()
                silent_since = silent_since or now
                if now - silent_since > self.settings.unreachable_seconds:
                    raise InstrumentFault(f"tomato daemon stopped answering during job {jobid}: {exc}",
                                          retryable=True) from None
                await asyncio.sleep(self.settings.poll_seconds)
                continue
            except TomatoRefused as exc:
                raise InstrumentFault(f"tomato job {jobid}: {exc}", retryable=True) from None
            if record.status != seen:
                log.info("tomato job %d: status %s", jobid, record.status)
                seen = record.status
            if record.status in FINISHED:
                return record
            if record.status == RUNNING:
                started = started or time.monotonic()
                done = min(1.0, (time.monotonic() - started) / longest)
                result = progress(done, f"tomato job {jobid} running")
                if asyncio.iscoroutine(result):
                    await result
            await asyncio.sleep(self.settings.poll_seconds)

    def _eject_when_free(self, wait_seconds: float = 15.0) -> None:
        """Eject the sample once the daemon has released the pipeline from the finished job."""
        deadline = time.monotonic() + wait_seconds
        while True:
            pip, _ = self.daemon.pipeline(self.settings.pipeline)
            if pip.jobid is None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.daemon.eject(self.settings.pipeline)


def _last_error(record: Any) -> str:
    """The last ERROR or CRITICAL line of the job's log in tomato's job folder, or what is known."""
    if record.jobpath:
        logs = sorted(Path(record.jobpath).glob("job-*.log"))
        for line in reversed(logs[-1].read_text(errors="replace").splitlines() if logs else []):
            if " ERROR " in line or " CRITICAL " in line or "Error" in line:
                return line.split(" - ")[-1].strip()
    return f"the job ended with status {record.status!r} (tomato's job log: {record.jobpath or 'none'})"


__all__ = ["COMPLETE", "JobOutcome", "Role", "TomatoBackend", "TomatoSettings"]
