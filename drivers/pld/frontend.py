"""The PLD chamber's frontend: one operation, ``thin_film`` by ``pld_growth``.

The recipe's bounds (heater, gas inlet, laser, pulse count) are checked by
:meth:`Instrument.validate` from the limits declared on
:class:`~labweave.schemas.thin_film.GrowthRecipe`; the frontend adds what
only the chamber knows (which targets are mounted). A growth fires its
pulses in batches, reports progress between them, and honours a safe stop
before the next pulse.
"""

from __future__ import annotations

import inspect
import logging
from typing import ClassVar, cast

from labweave.drivers.base import (
    Backend,
    Instrument,
    InstrumentState,
    InstrumentStopped,
    Operation,
    ParameterError,
    Progress,
)
from labweave.drivers.pld.backend import PldBackend
from labweave.schemas.thin_film import GrowthRecipe, GrowthResult

log = logging.getLogger(__name__)

#: Pulses fired between two progress reports.
PULSE_BATCH = 25


class PldChamber(Instrument):
    """A pulsed-laser-deposition chamber with in-situ RHEED.

    Args:
        backend: the chamber (simulated or real).
    """

    name: ClassVar[str] = "pld_chamber"
    backend_type: ClassVar[type[Backend]] = PldBackend
    operations: ClassVar[tuple[Operation, ...]] = (
        Operation(quantity="thin_film", method="pld_growth", parameters=GrowthRecipe, result=GrowthResult, run="grow"),
    )

    def __init__(self, backend: PldBackend):
        super().__init__(backend)
        self.backend: PldBackend = backend

    def validate(self, quantity: str, method: str, parameters: dict) -> GrowthRecipe:
        """Check a recipe against the chamber's limits and its mounted targets.

        Raises:
            ParameterError: naming the first offending field.
        """
        recipe = cast(GrowthRecipe, super().validate(quantity, method, parameters))
        mounted = self.backend.installed_targets()
        if recipe.target not in mounted:
            raise ParameterError(
                "target", f"{recipe.target.value} is not mounted (mounted: {', '.join(t.value for t in mounted)})"
            )
        return recipe

    def limitations(self) -> list[dict]:
        """Limitations from the recipe's bounds, the target list narrowed to the mounted ones."""
        out = super().limitations()
        mounted = [t.value for t in self.backend.installed_targets()]
        for entry in out:
            entry["limitations"]["target"] = mounted
        return out

    async def grow(self, recipe: GrowthRecipe, progress: Progress) -> GrowthResult:
        """Grow a film from a recipe.

        Args:
            recipe: the validated recipe.
            progress: called with the fraction of pulses fired.

        Returns:
            The growth result.

        Raises:
            InstrumentStopped: a safe stop interrupted the growth between pulses.
        """
        await self.backend.prepare(recipe)
        await _report(progress, 0.0, "chamber at set point")
        fired = 0
        while fired < recipe.pulses:
            if self.state is InstrumentState.STOPPED:
                raise InstrumentStopped(f"{self.name} stopped after {fired} of {recipe.pulses} pulses")
            batch = min(PULSE_BATCH, recipe.pulses - fired)
            fired = await self.backend.fire(batch)
            await _report(progress, fired / recipe.pulses, f"{fired}/{recipe.pulses} pulses")
        result = await self.backend.finish()
        await _report(progress, 1.0, f"{result.thickness_unit_cells:.1f} unit cells, {result.growth_mode.value}")
        return result


async def _report(progress: Progress, fraction: float, message: str) -> None:
    outcome = progress(fraction, message)
    if inspect.isawaitable(outcome):
        await outcome
