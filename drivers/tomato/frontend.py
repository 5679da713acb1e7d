"""A tomato-managed device as a labweave instrument: any pipeline of a tomato daemon, its tasks given in
the request.

The operation ``tomatoJob/tomato`` takes a sample and a list of tomato tasks (component role, technique,
duration, sampling interval, device attributes to set), runs them as one tomato job and answers, for
each component role and each measured variable, its units and a summary of its values (points, first,
last, least, greatest, mean), with the job's id and the tomato version. The published limitations are
the device's own: per role, the techniques it offers and the bounds and allowed values of the attributes
a task may set (tomato's ``Attr``), read from the daemon when the tenant starts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from labweave.drivers.base import Instrument, InstrumentFault, Operation, Progress, limitations_from_model

from .backend import TomatoBackend
from .data import summarise
from .payload import TomatoTask


class TomatoJobInput(BaseModel):
    """What a request asks a tomato device to do.

    Args:
        sample: the sample's identifier (loaded into the pipeline for the job).
        tasks: the tasks, run in order.
    """

    model_config = ConfigDict(extra="forbid")

    sample: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    tasks: list[TomatoTask] = Field(min_length=1, max_length=100)


class VariableSummary(BaseModel):
    """One measured variable of a component over the job."""

    units: str | None = None
    n: int = Field(ge=0)
    first: float | None = None
    last: float | str | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None


class TomatoJobOutput(BaseModel):
    """What a tomato job measured, by component role and variable."""

    job_id: int
    pipeline: str
    tomato_version: str | None = None
    data: dict[str, dict[str, VariableSummary]]


class TomatoDevice(Instrument):
    """A pipeline of a tomato daemon (``labweave tenant run tomato --backend tomato``)."""

    name = "tomato"
    backend_type = TomatoBackend
    operations: ClassVar[tuple[Operation, ...]] = (
        Operation("tomatoJob", "tomato", TomatoJobInput, TomatoJobOutput, "run_job"),
    )

    backend: TomatoBackend

    def __init__(self, backend: TomatoBackend):
        super().__init__(backend)
        self._jobs = 0

    def limitations(self) -> list[dict]:
        """The model's bounds, with the device's own per role (asks the daemon, once).

        Raises:
            InstrumentFault: the daemon does not answer or has no such pipeline.
        """
        roles = self.backend.describe_now()
        base = limitations_from_model(TomatoJobInput)
        task_base = base.get("tasks", [[{}]])[0][0] if base.get("tasks") else {}
        alternatives = []
        for role_name, role in sorted(roles.items()):
            params = {name: limit.limitation() for name, limit in role.limits.items()}
            alternatives.append(task_base | {
                "component_role": [role_name], "technique_name": role.techniques,
                "task_params": {name: limit for name, limit in params.items() if limit is not None},
            })
        return [{"quantity": "tomatoJob", "method": "tomato", "limitations": base | {"tasks": alternatives}}]

    async def run_job(self, params: TomatoJobInput, progress: Progress) -> TomatoJobOutput:
        self._jobs += 1
        jobname = f"labweave-{params.sample}-{self._jobs}"
        outcome = await self.backend.run_job(params.tasks, params.sample, jobname, progress)
        summary: dict[str, Any] = summarise(outcome.data)
        if not summary:
            raise InstrumentFault(f"tomato job {outcome.jobid} recorded no data", retryable=True)
        return TomatoJobOutput(job_id=outcome.jobid, pipeline=self.backend.settings.pipeline,
                               tomato_version=outcome.data.tomato_version, data=summary)
