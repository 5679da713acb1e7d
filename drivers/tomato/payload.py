"""tomato payloads: the task list a job runs on a pipeline, checked by tomato's own schema.

A payload (``dgbowl_schemas.tomato``, version 2.2) names the user and the sample, where the job's data
goes, and the method: tasks, each for the component in a role, running a technique for at most
``max_duration`` seconds, sampling every ``sampling_interval`` seconds, with the device attributes to set
(``task_params``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dgbowl_schemas.tomato.payload_2_2 import Payload
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: The payload version written (tomato 2.2's latest).
PAYLOAD_VERSION = "2.2"


class TomatoTask(BaseModel):
    """One task of a tomato method, as a request gives it.

    Args:
        component_role: the role of the pipeline's component that runs it.
        technique_name: a technique the component offers (its driver's capability).
        max_duration: seconds the task runs at most.
        sampling_interval: seconds between data points.
        task_params: device attributes set for the task (names and values the driver checks).
        task_name: a name other tasks may start or stop with.
    """

    model_config = ConfigDict(extra="forbid")

    component_role: str = Field(min_length=1, max_length=100)
    technique_name: str = Field(min_length=1, max_length=100)
    max_duration: float = Field(gt=0, le=7 * 86400, json_schema_extra={"unit": "second"})
    sampling_interval: float = Field(gt=0, le=86400, json_schema_extra={"unit": "second"})
    task_params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    task_name: str | None = None


def build_payload(tasks: Sequence[TomatoTask | dict[str, Any]], sample: str, output: Path, prefix: str,
                  user: str = "labweave") -> dict[str, Any]:
    """A tomato payload (as JSON data) running ``tasks`` on ``sample``, its data to ``output/prefix.nc``.

    Raises:
        ValueError: tomato's schema refuses it (naming the field).
    """
    method = [t.model_dump(exclude_none=True) if isinstance(t, TomatoTask) else dict(t) for t in tasks]
    payload = {
        "version": PAYLOAD_VERSION,
        "user": {"identifier": user},
        "sample": {"identifier": sample},
        "settings": {"output": {"path": str(output), "prefix": prefix}, "verbosity": "INFO"},
        "method": method,
    }
    check_payload(payload)
    return payload


def check_payload(payload: dict[str, Any]) -> Any:
    """The payload as tomato's schema (version 2.2, the one written here) reads it.

    Raises:
        ValueError: naming the first field tomato's schema refuses and why.
    """
    try:
        return Payload.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ValueError(f"tomato payload: {where}: {first['msg']}") from None
