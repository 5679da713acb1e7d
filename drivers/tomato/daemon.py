"""Talking to a running tomato daemon through tomato's own Python API.

tomato's functions (``tomato.tomato`` for the daemon and its pipelines, ``tomato.ketchup`` for jobs) are
blocking ZeroMQ calls and return a ``Reply`` (``success``, ``msg``, ``data``). Some of them wait for an
answer without a time limit; here every socket of the client's ZeroMQ context gets a receive timeout, so a
daemon that went away is an error (:class:`TomatoUnavailable`) rather than a hang. A ``Reply`` that is not a
success becomes :class:`TomatoRefused` carrying tomato's own message.

Device attributes and task validation are asked of the device's driver process (its port is in the
daemon's status), with the driver interface's own commands (``cmp_attrs``, ``task_validate``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from tomato import ketchup
from tomato import tomato as daemon_api
from tomato.daemon import lpp


class TomatoError(Exception):
    """A tomato call failed; ``retryable`` says whether trying again later may succeed."""

    retryable = False


class TomatoUnavailable(TomatoError):
    """The daemon (or a driver) does not answer on its port."""

    retryable = True


class TomatoRefused(TomatoError):
    """tomato answered, refusing: the message is tomato's."""


@dataclass(frozen=True)
class Component:
    """One component of a pipeline: a device channel in a role.

    Attributes:
        role: its role in the pipeline (what a task's ``component_role`` names).
        driver: the tomato driver running it.
        address, channel: the device's address and channel.
        capabilities: the techniques it can run.
    """

    role: str
    driver: str
    address: str
    channel: str
    capabilities: frozenset[str]


#: Job statuses of tomato 2.x: queued, queued and matched, running, cancel requested, complete,
#: cancelled, crashed.
QUEUED, WAITING, RUNNING, CANCELLING, COMPLETE, CANCELLED, CRASHED = "q", "qw", "r", "rd", "c", "cd", "ce"
FINISHED = frozenset({COMPLETE, CANCELLED, CRASHED})


class TomatoDaemon:
    """A tomato daemon on ``127.0.0.1:port`` (tomato listens on the loopback interface only).

    Args:
        port: the daemon's port (``tomato start -p PORT``).
        timeout_ms: how long one call waits for an answer.
    """

    def __init__(self, port: int, timeout_ms: int = 3000):
        self.port = port
        self.timeout_ms = timeout_ms
        self.context = zmq.Context()
        # tomato's own functions make their sockets from this context: these defaults bound every wait
        self.context.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.context.setsockopt(zmq.SNDTIMEO, timeout_ms)
        self.context.setsockopt(zmq.LINGER, 0)

    def close(self) -> None:
        self.context.destroy(linger=0)

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        """``fn``'s reply data; raises TomatoUnavailable / TomatoRefused."""
        try:
            reply = fn(port=self.port, timeout=self.timeout_ms, context=self.context, **kwargs)
        except zmq.ZMQError as exc:
            raise TomatoUnavailable(f"tomato on port {self.port} did not answer: {exc}") from None
        if not reply.success:
            message = reply.msg or "no message"
            if message.startswith("tomato not running"):
                raise TomatoUnavailable(message)
            raise TomatoRefused(message)
        return reply.data

    def status(self) -> Any:
        """The daemon's state (``tomato.models.Daemon``: pipelines, devices, drivers, components, settings)."""
        return self._call(daemon_api.status, stgrp="tomato", yaml=True)

    def pipeline(self, name: str) -> tuple[Any, list[Component]]:
        """The pipeline ``name`` and its components.

        Raises:
            TomatoRefused: no such pipeline (naming the daemon's pipelines).
        """
        state = self.status()
        if name not in state.pips:
            known = ", ".join(sorted(state.pips)) or "none"
            raise TomatoRefused(f"pipeline {name!r} not found on tomato (its pipelines: {known})")
        pip = state.pips[name]
        parts = []
        for key in pip.components:
            cmp = state.cmps[key]
            parts.append(Component(cmp.role, cmp.driver, cmp.address, cmp.channel,
                                   frozenset(cmp.capabilities or ())))
        return pip, parts

    def _driver(self, component: Component, cmd: str, **params: Any) -> Any:
        """Ask the component's driver process (``cmp_attrs``, ``task_validate``...): its reply."""
        state = self.status()
        driver = state.drvs.get(component.driver)
        if driver is None or driver.port is None:
            raise TomatoUnavailable(f"tomato driver {component.driver!r} is not running")
        endpoint = f"tcp://127.0.0.1:{driver.port}"
        req = self.context.socket(zmq.REQ)
        req.connect(endpoint)
        try:
            reply, req = lpp.comm(req, {"cmd": cmd, "params": {"key": (component.address, component.channel),
                                                               **params}},
                                  endpoint, self.context, retries=2, timeout=self.timeout_ms)
        except zmq.ZMQError as exc:
            raise TomatoUnavailable(f"tomato driver {component.driver!r} did not answer: {exc}") from None
        finally:
            req.close(linger=0)
        return reply

    def attrs(self, component: Component) -> dict[str, Any]:
        """The component's attributes (``driverinterface_2_1.Attr``: type, units, bounds, options)."""
        reply = self._driver(component, "cmp_attrs")
        if not reply.success:
            raise TomatoRefused(reply.msg or f"no attributes from {component.driver}")
        return dict(reply.data)

    def validate_task(self, component: Component, task: Any) -> str | None:
        """tomato's refusal of ``task`` on the component (its driver's message), or None if it accepts it."""
        reply = self._driver(component, "task_validate", task=task)
        return None if reply.success else (reply.msg or "refused")

    def stop_task(self, component: Component) -> str:
        """Stop the task running on the component (the driver's ``task_stop``); tomato's answer.

        ``ketchup cancel`` ends the job's process, but the driver goes on with the task it was given:
        a safe stop stops the device too.
        """
        reply = self._driver(component, "task_stop")
        return reply.msg or ("stopped" if reply.success else "not stopped")

    def load_sample(self, pipeline: str, sample: str) -> None:
        """Load ``sample`` into the pipeline (ejecting an idle one's previous sample) and mark it ready.

        Raises:
            TomatoRefused: the pipeline runs another job, or tomato refuses.
        """
        pip, _ = self.pipeline(pipeline)
        if pip.jobid is not None:
            raise TomatoRefused(f"pipeline {pipeline!r} is running job {pip.jobid}")
        if pip.sampleid is not None and pip.sampleid != sample:
            self._call(daemon_api.pipeline_eject, pipeline=pipeline)
            pip.sampleid = None
        if pip.sampleid is None:
            self._call(daemon_api.pipeline_load, pipeline=pipeline, sampleid=sample)
        self._call(daemon_api.pipeline_ready, pipeline=pipeline)

    def eject(self, pipeline: str) -> None:
        self._call(daemon_api.pipeline_eject, pipeline=pipeline)

    def submit(self, payload: dict[str, Any], folder: Path, jobname: str) -> Any:
        """Submit a payload (written to ``folder`` as ketchup reads payloads from files); the queued job."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{jobname}.json"
        path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        state = self.status()
        try:
            reply = ketchup.submit(port=self.port, context=self.context, payload=str(path), jobname=jobname,
                                   daemon=state)
        except zmq.ZMQError as exc:
            raise TomatoUnavailable(f"tomato on port {self.port} did not answer: {exc}") from None
        if not reply.success:
            raise TomatoRefused(reply.msg or "submission refused")
        return reply.data

    def job(self, jobid: int) -> Any:
        """The job's record (``tomato.models.Job``: status, respath, jobpath...)."""
        self.status()  # tomato's own check (bounded, with its message) before ketchup's unbounded one
        data = self._call(_job_status, jobids=[jobid])
        return data[0]

    def cancel(self, jobid: int) -> None:
        self._call(_job_cancel, jobids=[jobid])


def _job_status(*, port: int, context: zmq.Context, jobids: list[int], **_: Any) -> Any:
    return ketchup.status(port=port, context=context, verbosity=0, jobids=jobids)


def _job_cancel(*, port: int, context: zmq.Context, jobids: list[int], **_: Any) -> Any:
    return ketchup.cancel(port=port, context=context, jobids=jobids)
