"""The calculation every atomistic backend runs, whatever its energy model.

A backend supplies an ASE calculator and the elements it can handle; this
class runs the bulk-properties procedure (relaxation, equation of state,
elemental references by the same method) in a worker thread so the event
loop stays responsive, and honours a safe stop between optimizer steps.

The matrices of a few-atom relaxation are small, fastest on one BLAS (and
torch) thread: the tenant process limits its threads once, at its start
(``labweave --threads``), not around each calculation.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import threading
import time
from collections import Counter
from typing import ClassVar

from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator

from labweave.drivers.atomistic.eos import equation_of_state, fcc_lattice_constant, relax
from labweave.drivers.atomistic.structures import build_crystal, elements_of, reference_structure
from labweave.drivers.base import Backend, InstrumentFault, InstrumentStopped, ParameterError, PhysicalLimit
from labweave.schemas.atomistic import (
    BulkPropertiesParameters,
    BulkPropertiesResult,
    ConvergenceInfo,
    ElementReference,
)

log = logging.getLogger(__name__)

#: Relaxation settings of the elemental references.
REFERENCE_FMAX = 0.005
REFERENCE_STEPS = 200


class AtomisticBackend(Backend, abc.ABC):
    """A bulk-properties calculator: EMT, an MLIP, or (one day) DFT.

    Subclasses set ``method`` and implement :meth:`supported_elements` and
    :meth:`calculator`. Elemental references are computed once per backend
    and kept.
    """

    method: ClassVar[str] = "calculator"
    optimizer: ClassVar[str] = "BFGS on FrechetCellFilter (positions + hydrostatic strain)"
    #: The smallest force convergence worth asking of the method: below its forces' precision a
    #: relaxation chases noise until it runs out of steps.
    force_floor: ClassVar[str] = "1 meV / angstrom"

    def __init__(self) -> None:
        self._references: dict[str, ElementReference] = {}
        self._reference_lock = threading.Lock()
        self._stopped = threading.Event()
        #: Calculations running in worker threads now.
        self.calculations = 0
        self._count_lock = threading.Lock()

    @abc.abstractmethod
    def supported_elements(self) -> frozenset[str]:
        """Chemical symbols the energy model can handle."""

    @abc.abstractmethod
    def calculator(self) -> Calculator:
        """A fresh ASE calculator of this method."""

    # -- Backend -------------------------------------------------------
    def physical_limits(self, method: str) -> tuple[PhysicalLimit, ...]:
        return (PhysicalLimit("fmax", f"the precision of {self.method}'s forces", low=self.force_floor),)

    async def setup(self) -> None:
        self._stopped.clear()

    safe_state = "calculation cancelled at its next optimizer step, nothing left computing"

    def in_safe_state(self) -> bool:
        return self._stopped.is_set() and self.calculations == 0

    def arm(self) -> None:
        """Clear an earlier stop before a new calculation starts."""
        self._stopped.clear()

    async def stop(self) -> None:
        """Stop the calculation under way at its next optimizer step."""
        self._stopped.set()

    # -- policy --------------------------------------------------------
    def check(self, params: BulkPropertiesParameters) -> None:
        """Refuse elements this method cannot handle.

        Raises:
            ParameterError: naming ``structure.symbols`` or ``alloy.composition``.
        """
        field, elements = elements_of(params)
        unknown = [e for e in elements if e not in self.supported_elements()]
        if unknown:
            raise ParameterError(
                field,
                f"{self.method} cannot handle {', '.join(unknown)} "
                f"(supported: {', '.join(sorted(self.supported_elements()))})",
            )

    # -- calculation ---------------------------------------------------
    async def bulk_properties(self, params: BulkPropertiesParameters) -> BulkPropertiesResult:
        """Equilibrium lattice constant, bulk modulus, energy and formation energy.

        Args:
            params: validated parameters.

        Returns:
            The result, with cost and convergence.
        """
        self.check(params)
        return await asyncio.to_thread(self._counted, params)

    def _counted(self, params: BulkPropertiesParameters) -> BulkPropertiesResult:
        with self._count_lock:  # counted in the worker thread: a cancelled task does not end the calculation
            self.calculations += 1
        try:
            return self._compute(params)
        finally:
            with self._count_lock:
                self.calculations -= 1

    def _compute(self, params: BulkPropertiesParameters) -> BulkPropertiesResult:
        cpu, wall = time.process_time(), time.perf_counter()
        atoms = build_crystal(params)
        atoms.calc = self.calculator()
        relaxation = relax(atoms, params.fmax, params.max_steps, self._check_stop)
        fit, points = self._fit(atoms)
        counts = Counter(atoms.get_chemical_symbols())
        references = [self.reference(symbol) for symbol in sorted(counts)]
        n = len(atoms)
        reference_energy = sum(counts[r.element] * r.energy_per_atom for r in references) / n
        formula = "".join(f"{s}{c if c > 1 else ''}" for s, c in sorted(counts.items()))
        log.info(
            "%s: %s a0 = %.4f A, B0 = %.1f GPa",
            self.method,
            formula,
            fcc_lattice_constant(fit.volume),
            fit.bulk_modulus,
        )
        return BulkPropertiesResult(
            method=self.method,
            formula=formula,
            n_atoms=n,
            lattice_constant=fcc_lattice_constant(fit.volume),
            volume_per_atom=fit.volume,
            bulk_modulus=fit.bulk_modulus,
            bulk_modulus_derivative=fit.bulk_modulus_derivative,
            energy_per_atom=fit.energy,
            formation_energy_per_atom=fit.energy - reference_energy,
            cell=atoms.get_cell().tolist(),
            references=references,
            convergence=ConvergenceInfo(
                optimizer=self.optimizer,
                optimizer_steps=relaxation.steps,
                max_force=relaxation.max_force,
                converged=relaxation.converged and fit.inside,
                eos="birch-murnaghan (3rd order)",
                eos_points=points,
                eos_fit_residual=fit.residual,
            ),
            cost_cpu_seconds=time.process_time() - cpu,
            wall_seconds=time.perf_counter() - wall,
        )

    def _fit(self, atoms: Atoms):
        try:
            return equation_of_state(atoms)
        except ValueError as exc:
            raise InstrumentFault(f"{self.method}: equation of state failed: {exc}", retryable=False) from exc

    def reference(self, symbol: str) -> ElementReference:
        """The pure element in its ground-state structure, by this method (cached).

        Args:
            symbol: chemical symbol.

        Returns:
            Its equilibrium energy and volume per atom.
        """
        with self._reference_lock:
            cached = self._references.get(symbol)
            if cached is not None:
                return cached
            atoms = bulk(symbol)
            atoms.calc = self.calculator()
            relax(atoms, REFERENCE_FMAX, REFERENCE_STEPS, self._check_stop)
            fit, _ = self._fit(atoms)
            reference = ElementReference(
                element=symbol,
                structure=reference_structure(symbol),
                energy_per_atom=fit.energy,
                volume_per_atom=fit.volume,
            )
            self._references[symbol] = reference
            log.info("%s reference %s: %.4f eV/atom", self.method, symbol, fit.energy)
            return reference

    def _check_stop(self) -> None:
        if self._stopped.is_set():
            raise InstrumentStopped(f"{self.method} calculation stopped")
