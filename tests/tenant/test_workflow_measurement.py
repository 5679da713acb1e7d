"""The degradation workflow reports a cycle life only where a cell measured it: cells that shorted
say nothing about their electrolyte."""

from __future__ import annotations

import asyncio

import pytest

from labweave.drivers.base import InstrumentFault
from labweave.drivers.cells import REFERENCE_ELECTROLYTE, CellShelf, InternalShort, stand_in_cell
from labweave.drivers.cycler.analysis import degradation_workflow_output
from labweave.drivers.cycler.frontend import Cycler
from labweave.drivers.cycler.sim import SimulatedCyclerBackend
from labweave.services.tenant.workflow import measured


def _cell(shelf: CellShelf, uuid: str, defects=()) -> None:
    shelf.put(stand_in_cell("TWIN").model_copy(
        update={"uuid": uuid, "stand_in": False, "batch_id": "twins", "defects": list(defects)}))


@pytest.fixture(scope="module")
def cycled(tmp_path_factory) -> dict[str, dict]:
    """A sound cell and a hard-shorted one, cycled by the simulated cycler."""
    shelf = CellShelf(tmp_path_factory.mktemp("shelf"))
    _cell(shelf, "sound")
    _cell(shelf, "shorted", [InternalShort(resistance_ohm=15_000, decay_per_cycle=0.02, cause="over-crimp")])
    cycler = Cycler(SimulatedCyclerBackend(shelf.directory, seed=1))

    async def run(uuid: str) -> dict:
        return await cycler.perform("capacity", "cycling", {
            "cycling_protocol": "BIG-MAP-Standard", "number_cycles": 6,
            "cell_info": {"uuid": uuid, "cell_name": "CR2032"},
            "location": {"address": "test", "detail_1": "cycler"}, "reservation_number": "test"})

    async def both():
        return dict(zip(("sound", "shorted"), await asyncio.gather(run("sound"), run("shorted"))))

    return asyncio.run(both())


def test_every_cell_failed_means_no_measurement_and_a_retryable_fault(cycled):
    assert cycled["shorted"]["test_completed"] is False
    output = degradation_workflow_output(REFERENCE_ELECTROLYTE, [cycled["shorted"]], "batch-1")
    with pytest.raises(InstrumentFault, match=r"every cell failed during cycling \(cell shorted at cycle 1\)") as info:
        measured(output)
    assert info.value.retryable


def test_a_sound_cell_beside_a_failed_one_is_reported_with_both_flagged(cycled):
    output = measured(degradation_workflow_output(REFERENCE_ELECTROLYTE, [cycled["shorted"], cycled["sound"]],
                                                  "batch-2"))
    flags = [(e.cell_info.uuid, e.meta.success) for e in output.degradationEOL]
    assert flags == [("shorted", False), ("sound", True)]
    assert output.degradationEOL[1].end_of_life > 6
