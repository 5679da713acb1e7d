"""Atomistic simulators as instruments: quantity ``bulk_properties`` by ``emt``, ``chgnet`` or ``dft``.

The CHGNet simulator also serves ``mlip_fine_tuning`` (by ``chgnet``): it
fine-tunes a committee on DFT results and returns its version, which a
``bulk_properties`` request by ``chgnet`` may then name (``model``).

The methods take the same crystal and report the same bulk properties, so the
optimizer can trade the cheap MLIP against DFT (EMT is the quick stand-in of
the tests and the fast demo); ``dft`` adds the functional and its convergence
settings to the parameters and the settings and SCF record to the result. The
frontend validates the crystal (shapes, finite numbers, known elements, no
overlapping atoms) and refuses elements the method cannot handle before
anything runs.
"""

from __future__ import annotations

import inspect
import logging
from typing import ClassVar, cast

from pydantic import BaseModel

from labweave.drivers.atomistic.backend import AtomisticBackend
from labweave.drivers.atomistic.dft import DftBackend
from labweave.drivers.atomistic.emt import EmtBackend
from labweave.drivers.atomistic.mlip import ChgnetBackend
from labweave.drivers.atomistic.structures import build_crystal
from labweave.drivers.base import (
    Backend,
    Instrument,
    InstrumentState,
    InstrumentStopped,
    Operation,
    ParameterError,
    Progress,
)
from labweave.schemas.atomistic import (
    BulkPropertiesParameters,
    BulkPropertiesResult,
    ChgnetBulkPropertiesParameters,
    ChgnetBulkPropertiesResult,
    DftBulkPropertiesParameters,
    DftBulkPropertiesResult,
    MlipFineTuningParameters,
    MlipFineTuningResult,
)

log = logging.getLogger(__name__)

QUANTITY = "bulk_properties"
#: Fine-tuning the MLIP on DFT results (served by the CHGNet simulator).
FINE_TUNING = "mlip_fine_tuning"


class AtomisticSimulator(Instrument):
    """A simulation code computing bulk properties by one method.

    Args:
        backend: the calculator backend of the method.
    """

    name: ClassVar[str] = "atomistic_simulator"
    backend_type: ClassVar[type[Backend]] = AtomisticBackend

    def __init__(self, backend: AtomisticBackend):
        super().__init__(backend)
        self.backend: AtomisticBackend = backend

    def validate(self, quantity: str, method: str, parameters: dict) -> BulkPropertiesParameters:
        """Check the crystal and that the method handles its elements.

        Raises:
            ParameterError: naming the offending field.
        """
        params = cast(BulkPropertiesParameters, super().validate(quantity, method, parameters))
        self.backend.check(params)
        build_crystal(params)  # overlapping atoms, unrepresentable compositions
        return params

    async def compute(self, params: BulkPropertiesParameters, progress: Progress) -> BulkPropertiesResult:
        """Relax the crystal, fit its equation of state, compare with the elements.

        Args:
            params: validated parameters.
            progress: called at the start and the end.

        Returns:
            The bulk properties.
        """
        if self.state is InstrumentState.STOPPED:
            raise InstrumentStopped(f"{self.name} stopped")
        self.backend.arm()
        await _report(progress, 0.0, f"{self.backend.method} relaxation")
        result = await self.backend.bulk_properties(params)
        if self.state is InstrumentState.STOPPED:
            raise InstrumentStopped(f"{self.name} stopped")
        await _report(progress, 1.0, f"{result.formula}: a0 {result.lattice_constant:.3f} A")
        return result


class EmtSimulator(AtomisticSimulator):
    """Bulk properties by EMT (a quick stand-in for DFT in tests and the fast demo)."""

    name: ClassVar[str] = "emt_simulator"
    operations: ClassVar[tuple[Operation, ...]] = (
        Operation(QUANTITY, "emt", BulkPropertiesParameters, BulkPropertiesResult, "compute"),
    )

    def __init__(self, backend: EmtBackend | None = None):
        super().__init__(backend or EmtBackend())


class ChgnetSimulator(AtomisticSimulator):
    """Bulk properties by the CHGNet potential (the cheap MLIP), pretrained or fine-tuned; and its fine-tuning."""

    name: ClassVar[str] = "chgnet_simulator"
    backend_type: ClassVar[type[Backend]] = ChgnetBackend
    operations: ClassVar[tuple[Operation, ...]] = (
        Operation(QUANTITY, "chgnet", ChgnetBulkPropertiesParameters, ChgnetBulkPropertiesResult, "compute"),
        Operation(FINE_TUNING, "chgnet", MlipFineTuningParameters, MlipFineTuningResult, "fine_tune"),
    )

    def __init__(self, backend: ChgnetBackend | None = None):
        chgnet = backend or ChgnetBackend()
        super().__init__(chgnet)
        self.backend: ChgnetBackend = chgnet

    def validate(self, quantity: str, method: str, parameters: dict) -> BaseModel:  # type: ignore[override]  # a fine-tuning is no crystal
        """Check a crystal (and that its ``model`` is stored), or every example of a fine-tuning.

        Raises:
            ParameterError: naming the offending field (``model``, ``examples.3.alloy.composition``...).
        """
        if quantity != FINE_TUNING:
            return super().validate(quantity, method, parameters)
        params = cast(MlipFineTuningParameters, Instrument.validate(self, quantity, method, parameters))
        self.backend.check_fine_tuning(params)
        for i, example in enumerate(params.examples):
            try:
                build_crystal(BulkPropertiesParameters.model_validate(
                    example.model_dump(include={"structure", "alloy", "perovskite"}, exclude_none=True)))
            except ParameterError as exc:
                raise ParameterError(f"examples.{i}.{exc.field}", exc.message) from None
        return params

    async def fine_tune(self, params: MlipFineTuningParameters, progress: Progress) -> MlipFineTuningResult:
        """Fine-tune a committee from the pretrained weights on the examples and store it."""
        if self.state is InstrumentState.STOPPED:
            raise InstrumentStopped(f"{self.name} stopped")
        self.backend.arm()
        await _report(progress, 0.0, f"fine-tuning {params.committee} CHGNet(s) on {len(params.examples)} DFT results")
        result = await self.backend.fine_tune(params)
        await _report(progress, 1.0, f"model {result.model}: MAE {1000 * result.mae_before:.0f} -> "
                                     f"{1000 * result.mae_after:.0f} meV/atom on the training cells")
        return result


class DftSimulator(AtomisticSimulator):
    """Bulk properties by plane-wave DFT (GPAW), LDA or PBE: the top fidelity."""

    name: ClassVar[str] = "dft_simulator"
    backend_type: ClassVar[type[Backend]] = DftBackend
    operations: ClassVar[tuple[Operation, ...]] = (
        Operation(QUANTITY, "dft", DftBulkPropertiesParameters, DftBulkPropertiesResult, "compute"),
    )

    def __init__(self, backend: DftBackend | None = None):
        super().__init__(backend or DftBackend())


async def _report(progress: Progress, fraction: float, message: str) -> None:
    outcome = progress(fraction, message)
    if inspect.isawaitable(outcome):
        await outcome
