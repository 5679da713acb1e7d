"""The degradation workflow: ``degradationEOL`` answered by asking the lab itself.

As FINALES2's "Overlort" tenant does, it answers a request for the end of
life of an electrolyte by posting sub-requests through the server, each
linked to its parent: the electrolyte is formulated (``electrolyte/flow``),
a batch of coin cells is assembled with it (``cell_assembly``), every cell
that came out whole is cycled (``capacity/cycling``), and the end of life is
read from the capacity fade (:func:`labweave.drivers.cycler.analysis.degradation_workflow_output`).
A sub-request that fails is asked again up to ``attempts`` times; cells the
robot marks as failed are still cycled (their failure shows in the result).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import ClassVar

from labweave.drivers.base import Backend, Instrument, InstrumentFault, InstrumentStopped, Operation
from labweave.drivers.cycler.analysis import degradation_workflow_output
from labweave.schemas.battery import DegradationEOLInput, DegradationWorkflowOutput
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import LabweaveError

from .context import current_request

log = logging.getLogger(__name__)

#: The largest electrode disc the robot takes, in cm²: a larger "size" is read as a diameter in mm
#: (FINALES2's own example gives 15.0 and 14.0, the diameters of a CR2032's discs).
MAX_DISC_AREA_CM2 = 2.5


def disc_area(size: float | None, default: float) -> float:
    if size is None:
        return default
    if size > MAX_DISC_AREA_CM2:
        return round(math.pi * (size / 20.0) ** 2, 4)
    return size


class WorkflowBackend(Backend):
    """The workflow's "hardware": the server it posts sub-requests to.

    A sub-request's status is read when the server's event stream says it
    changed, and every ``poll_seconds`` in any case (the stream may drop, and
    it tells only what happens once it is connected).
    """

    def __init__(self, client: AsyncLabClient, poll_seconds: float = 5.0):
        self.client = client
        self.poll_seconds = poll_seconds
        self.tenant_uuid: str | None = None
        self.stopped = asyncio.Event()
        self._changed: dict[str, asyncio.Event] = {}  # by sub-request uuid, while it is awaited
        self._listener: asyncio.Task | None = None

    async def setup(self) -> None:
        self.tenant_uuid = (await self.client.me()).tenant_uuid
        self.stopped.clear()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="workflow events")

    safe_state = "its waiting sub-requests retracted, nothing more asked of the lab"

    async def stop(self) -> None:
        self.stopped.set()
        for changed in self._changed.values():
            changed.set()

    async def _listen(self) -> None:
        try:
            async for event in self.client.stream_events(kinds=["request.status"]):
                changed = self._changed.get(event.subject)
                if changed is not None:
                    changed.set()
        except asyncio.CancelledError:
            raise
        except LabweaveError as exc:  # the poll still works without the stream
            log.warning("event stream unavailable (%s); polling every %.1f s", exc, self.poll_seconds)

    async def _until_changed(self, uuid: str) -> None:
        """Return when the sub-request's status may have changed (an event, a stop, or the poll period)."""
        changed = self._changed.setdefault(uuid, asyncio.Event())
        try:
            await asyncio.wait_for(changed.wait(), self.poll_seconds)
        except asyncio.TimeoutError:
            pass
        changed.clear()

    async def ask(self, quantity: str, method: str, parameters: dict, parent: str | None, attempts: int = 3) -> dict:
        """Post a sub-request and wait for its result data."""
        for attempt in range(1, attempts + 1):
            body = {"quantity": quantity, "methods": [method], "parameters": {method: parameters},
                    "tenant_uuid": self.tenant_uuid}
            created = await self.client.create_request(body, parent_uuid=parent, priority=1)
            uuid = created.uuid
            self._changed.setdefault(uuid, asyncio.Event())  # events from now on count
            log.info("asked %s/%s as %s (parent %s)", quantity, method, uuid, parent)
            try:
                while True:
                    if self.stopped.is_set():
                        await self.client.cancel(uuid, "the workflow was stopped")
                        raise InstrumentStopped("the workflow was stopped")
                    status = (await self.client.request(uuid)).status
                    if status == "resolved":
                        result = await self.client.result_for_request(uuid)
                        if result is not None:
                            return result.result.data
                        log.warning("%s/%s sub-request %s is resolved, but its result was deleted", quantity,
                                    method, uuid)
                        break
                    if status in ("failed", "retracted"):
                        log.warning("%s/%s sub-request %s %s (attempt %d)", quantity, method, uuid, status, attempt)
                        break
                    await self._until_changed(uuid)
            finally:
                self._changed.pop(uuid, None)
        raise InstrumentFault(f"{quantity}/{method} failed {attempts} times", retryable=True)


class DegradationWorkflow(Instrument):
    """``degradationEOL`` by ``degradation_workflow``: formulate, assemble, cycle, analyse.

    Args:
        client: a client of a tenant user (the workflow's tenant).
        cells: cells assembled (and cycled) per request.
        cycles: cycles each cell runs.
        volume_ml: electrolyte formulated per request.
    """

    name: ClassVar[str] = "degradation_workflow"
    operations: ClassVar[tuple[Operation, ...]] = (
        Operation("degradationEOL", "degradation_workflow", DegradationEOLInput, DegradationWorkflowOutput,
                  "run_workflow"),
    )

    def __init__(self, client: AsyncLabClient, cells: int = 2, cycles: int = 150, volume_ml: float = 1.0,
                 poll_seconds: float = 5.0):
        super().__init__(WorkflowBackend(client, poll_seconds))
        self.backend: WorkflowBackend
        self.cells = cells
        self.cycles = cycles
        self.volume_ml = volume_ml

    async def run_workflow(self, params: DegradationEOLInput, progress) -> DegradationWorkflowOutput:
        parent = current_request.get()
        chem = params.battery_chemistry
        formulation = [c.model_dump(mode="json", exclude_none=True) for c in chem.electrolyte]
        await progress(0.05, "formulating the electrolyte")
        flow = await self.backend.ask("electrolyte", "flow", {"electrolyte": {"formulation": formulation},
                                                              "volume": self.volume_ml}, parent)
        reference = flow["run_info"].get("internal_reference", "")

        def disc(electrode, default_area):
            if electrode is None:
                return None
            data = electrode.model_dump(mode="json", exclude_none=True)
            data["size"] = disc_area(data.get("size"), default_area)
            return data

        chemistry = {"electrolyte": formulation, "anode": disc(chem.anode, 1.7663),
                     "cathode": disc(chem.cathode, 1.5386)}
        cell = {"battery_chemistry": {k: v for k, v in chemistry.items() if v is not None},
                "electrolyte_volume": 35.0}
        await progress(0.15, f"assembling {self.cells} cells")
        assembly = await self.backend.ask(
            "cell_assembly", "autobass_assembly",
            {"cell": cell, "batch_volume": self.cells,
             "cell_info": {"cell_name": "CR2032", "electrolyte_info": {"name": "workflow electrolyte",
                                                                      "uuid": reference}}},
            parent)
        cells = [out["cell_info"]["uuid"] for out in assembly["batch_output"]]
        rate = params.average_charging_rate or 1.0
        await progress(0.3, f"cycling {len(cells)} cells")
        cycling = await asyncio.gather(*[
            self.backend.ask("capacity", "cycling", {
                "cycling_protocol": "BIG-MAP-Standard", "number_cycles": self.cycles,
                "cell_info": {"uuid": uuid, "cell_name": "CR2032"},
                "location": {"address": "labweave simulated lab", "detail_1": "cycler"},
                "reservation_number": parent or "workflow",
                "c_rate_charge": rate, "c_rate_discharge": rate,
            }, parent) for uuid in cells])
        await progress(0.95, "analysing the capacity fade")
        return measured(degradation_workflow_output(formulation, cycling,
                                                    internal_reference=reference or (parent or "")))


def measured(output: DegradationWorkflowOutput) -> DegradationWorkflowOutput:
    """``output`` if at least one cell measured its electrolyte.

    A cell that failed (an internal short ends its test) says nothing about the
    electrolyte: where every cell failed there is no measurement to report, so
    the request fails as retryable and the server hands it out again (to be
    made with new cells) until its attempt limit. Failed cells next to a good
    one stay in the result, flagged ``meta.success = false``.

    Raises:
        InstrumentFault: retryable, naming each cell and the cycle it failed at.
    """
    if any(entry.meta.success for entry in output.degradationEOL):
        return output
    died = ", ".join(f"cell {e.cell_info.uuid} at cycle {e.end_of_life}" for e in output.degradationEOL)
    raise InstrumentFault(f"every cell failed during cycling ({died}); the electrolyte was not measured",
                          retryable=True)
