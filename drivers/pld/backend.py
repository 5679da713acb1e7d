"""The primitives a PLD chamber backend offers to the frontend.

A growth is three steps: ``prepare`` (heat the substrate, set the oxygen
pressure, rotate the target carousel), ``fire`` (a number of laser pulses at
the set repetition rate, RHEED recording all along) and ``finish`` (stop the
recording and report the film). ``stop`` closes the laser shutter at once;
a ``fire`` under way ends before its next pulse with
:class:`~labweave.drivers.base.InstrumentStopped`.
"""

from __future__ import annotations

import abc

from labweave.drivers.base import Backend
from labweave.schemas.thin_film import GrowthRecipe, GrowthResult, TargetMaterial


class PldBackend(Backend, abc.ABC):
    """Abstract PLD chamber: simulated and real chambers implement these."""

    @abc.abstractmethod
    def installed_targets(self) -> tuple[TargetMaterial, ...]:
        """Targets mounted on the carousel."""

    @abc.abstractmethod
    async def prepare(self, recipe: GrowthRecipe) -> None:
        """Bring the chamber to the recipe's temperature and pressure, select its target.

        Args:
            recipe: the validated recipe.
        """

    @abc.abstractmethod
    async def fire(self, pulses: int) -> int:
        """Fire laser pulses at the recipe's repetition rate.

        Args:
            pulses: how many to fire.

        Returns:
            Pulses fired in this growth so far.

        Raises:
            InstrumentStopped: the laser was stopped; no further pulse is fired.
        """

    @abc.abstractmethod
    async def finish(self) -> GrowthResult:
        """End the growth: record the final recovery and report the film."""
