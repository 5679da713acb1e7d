"""The calculation every atomistic backend runs, whatever its energy model.

A backend supplies an ASE calculator and the elements it can handle; this
class runs the bulk-properties procedure (relaxation, equation of state,
elemental references by the same method) through its executor
(:mod:`labweave.drivers.compute`): a worker thread of this process, where a
safe stop is honoured between optimizer steps, or a Dask worker, where the
backend travels pickled (without its locks and caches) and each worker keeps
one resident copy per method, with its elemental references, for all the
computations it runs (:func:`bulk_properties_task`).

The matrices of a few-atom relaxation are small, fastest on one BLAS (and
torch) thread: the tenant process limits its threads once, at its start
(``labweave --threads``), not around each calculation.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, cast

from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, reference_states
from ase.optimize import BFGS

from labweave.drivers.atomistic.eos import EosFit, equation_of_state, fcc_lattice_constant, relax
from labweave.drivers.atomistic.structures import build_crystal, elements_of, reference_structure
from labweave.drivers.base import Backend, InstrumentFault, InstrumentStopped, ParameterError, PhysicalLimit
from labweave.drivers.compute import Computation
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
#: Edge of the periodic box (angstrom) of a molecular reference (O2, N2, ...): wide enough that
#: the molecule does not see its images within a potential's cutoff (CHGNet's is 6 angstrom).
MOLECULE_BOX = 14.0


class AtomisticBackend(Backend, abc.ABC):
    """A bulk-properties calculator: EMT, an MLIP, or DFT.

    Subclasses set ``method`` and implement :meth:`supported_elements` and
    :meth:`calculator`. Elemental references are computed once per backend
    and kept.
    """

    method: ClassVar[str] = "calculator"
    optimizer: ClassVar[str] = "BFGS on FrechetCellFilter (positions + hydrostatic strain)"
    #: The smallest force convergence worth asking of the method: below its forces' precision a
    #: relaxation chases noise until it runs out of steps.
    force_floor: ClassVar[str] = "1 meV / angstrom"
    offloads: ClassVar[bool] = True

    def __init__(self) -> None:
        self._references: dict[str, ElementReference] = {}
        self._reference_lock = threading.Lock()
        self._stopped = threading.Event()
        #: Calculations running in worker threads now.
        self.calculations = 0
        self._count_lock = threading.Lock()

    # pickled to a Dask worker: the settings travel, the locks and caches are made anew there
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _PER_PROCESS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._references = {}
        self._reference_lock = threading.Lock()
        self._stopped = threading.Event()
        self.calculations = 0
        self._count_lock = threading.Lock()

    def identity(self) -> Hashable:
        """What makes two backends compute the same numbers (a worker keeps one of each).

        A backend with settings that change its results (a functional, a cut-off) adds them.
        """
        return (type(self).__module__, type(self).__qualname__, self.method)

    def warmups(self) -> tuple[Callable[[], object], ...]:
        """Loads a process needs once before this method's first calculation (a model's weights)."""
        return ()

    def concurrency(self) -> int:
        """A simulation code has no channels: as many requests as the executor has slots."""
        return 1 << 16

    @abc.abstractmethod
    def supported_elements(self) -> frozenset[str]:
        """Chemical symbols the energy model can handle."""

    @abc.abstractmethod
    def calculator(self) -> Calculator:
        """A fresh ASE calculator of this method."""

    # -- Backend -------------------------------------------------------
    def physical_limits(self, method: str) -> tuple[PhysicalLimit, ...]:
        return (PhysicalLimit("fmax", f"the precision of {self.method}'s forces", low=self.force_floor,
                              quantity="bulk_properties"),)

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
        computation = Computation(bulk_properties_task, (self, params), name=f"{self.method}-bulk-properties",
                                  resources=dict(self.resources), warmups=self.warmups(),
                                  local={"check_stop": self._check_stop, "running": self._running})
        return await self.executor.run(computation, self._stopped)

    def _running(self, change: int) -> None:
        """Counts calculations computing in this process's threads (a cancelled task does not end one)."""
        with self._count_lock:
            self.calculations += change

    def compute(self, params: BulkPropertiesParameters,
                check_stop: Callable[[], None] | None = None) -> BulkPropertiesResult:
        """The bulk properties, computed in the calling thread.

        Args:
            params: validated parameters.
            check_stop: called between optimizer steps; raises to stop.
        """
        check_stop = check_stop or _never
        return compute_bulk_properties(params, self.method, lambda atoms: self.calculator(),
                                       lambda symbol: self.reference(symbol, check_stop), self.optimizer, check_stop)

    def reference(self, symbol: str, check_stop: Callable[[], None] | None = None) -> ElementReference:
        """The pure element in its ground-state structure, by this method (cached).

        Args:
            symbol: chemical symbol.
            check_stop: called between optimizer steps; raises to stop.

        Returns:
            Its equilibrium energy and volume per atom.
        """
        with self._reference_lock:
            cached = self._references.get(symbol)
            if cached is not None:
                return cached
            reference = compute_reference(symbol, self.method, lambda atoms: self.calculator(), check_stop or _never)
            self._references[symbol] = reference
            return reference

    def _check_stop(self) -> None:
        if self._stopped.is_set():
            raise InstrumentStopped(f"{self.method} calculation stopped")


#: What a pickled backend leaves behind (made anew where it lands).
_PER_PROCESS = frozenset({"_references", "_reference_lock", "_stopped", "executor", "_count_lock", "calculations"})
#: The backend each method's computations use in this process, by :meth:`AtomisticBackend.identity`.
_resident: dict[Hashable, AtomisticBackend] = {}
_resident_lock = threading.Lock()


def _never() -> None:
    return None


def resident(backend: AtomisticBackend) -> AtomisticBackend:
    """This process's backend computing as ``backend`` does: the first one seen, kept with its references.

    On a Dask worker every task brings a fresh copy of the backend; computing with the resident
    one relaxes each element's reference once per worker, not once per request.
    """
    with _resident_lock:
        return _resident.setdefault(backend.identity(), backend)


def bulk_properties_task(backend: AtomisticBackend, params: BulkPropertiesParameters,
                         check_stop: Callable[[], None] | None = None,
                         running: Callable[[int], None] | None = None) -> BulkPropertiesResult:
    """A bulk-properties calculation as an executor runs it: here, or on a Dask worker.

    Args:
        backend: the backend whose method computes it (its resident copy in this process does).
        params: validated parameters.
        check_stop: only where it runs in the backend's own process.
        running: only there too: told +1 as the calculation starts and -1 as it ends, so the backend
            knows when nothing is left computing after a stop.
    """
    if running is None:
        return resident(backend).compute(params, check_stop)
    running(1)
    try:
        return resident(backend).compute(params, check_stop)
    finally:
        running(-1)


#: Builds the calculator of one crystal (a DFT k-point mesh depends on its cell).
CalculatorFactory = Callable[[Atoms], Calculator]


def _fit(atoms: Atoms, method: str) -> tuple[EosFit, int]:
    try:
        return equation_of_state(atoms)
    except ValueError as exc:
        raise InstrumentFault(f"{method}: equation of state failed: {exc}", retryable=False) from exc


def compute_bulk_properties(
    params: BulkPropertiesParameters,
    method: str,
    calculator: CalculatorFactory,
    reference: Callable[[str], ElementReference],
    optimizer: str = AtomisticBackend.optimizer,
    check_stop: Callable[[], None] | None = None,
    relax_cell: bool = True,
) -> BulkPropertiesResult:
    """The bulk-properties procedure of every method: relax, fit the EOS, compare with the elements.

    A plain function of its arguments (no backend state).

    Args:
        params: validated parameters.
        method: the method's name, reported in the result.
        calculator: a fresh ASE calculator for the crystal.
        reference: an element's reference by the same method (and settings).
        optimizer: how the relaxation is described in the result.
        check_stop: called after every optimizer step; raises to abandon.
        relax_cell: relax the volume before the EOS scan (see :func:`relax`).

    Returns:
        The result, with CPU time (``time.process_time``: this process, every
        thread) and convergence.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    atoms = build_crystal(params)
    atoms.calc = calculator(atoms)
    relaxation = relax(atoms, params.fmax, params.max_steps, check_stop, cell=relax_cell)
    fit, points = _fit(atoms, method)
    counts = Counter(atoms.get_chemical_symbols())
    references = [reference(symbol) for symbol in sorted(counts)]
    n = len(atoms)
    reference_energy = sum(counts[r.element] * r.energy_per_atom for r in references) / n
    formula = "".join(f"{s}{c if c > 1 else ''}" for s, c in sorted(counts.items()))
    log.info(
        "%s: %s a0 = %.4f A, B0 = %.1f GPa", method, formula, fcc_lattice_constant(fit.volume), fit.bulk_modulus
    )
    return BulkPropertiesResult(
        method=method,
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
            optimizer=optimizer,
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


def compute_reference(
    symbol: str,
    method: str,
    calculator: CalculatorFactory,
    check_stop: Callable[[], None] | None = None,
    relax_cell: bool = True,
    atoms: Atoms | None = None,
) -> ElementReference:
    """An element in its ground-state structure (ASE's reference state), relaxed and fitted.

    Args:
        symbol: chemical symbol.
        method: the method's name, for errors.
        calculator: a fresh ASE calculator for the crystal.
        check_stop: called after every optimizer step; raises to abandon.
        relax_cell: relax the volume before the EOS scan.
        atoms: the ground-state crystal in a cell of the caller's choosing
            (a supercell of it); ASE's primitive cell by default.

    Returns:
        Its equilibrium energy and volume per atom.
    """
    if reference_structure(symbol) == "diatom":
        return molecule_reference(symbol, method, calculator, check_stop)
    atoms = bulk(symbol) if atoms is None else atoms
    atoms.calc = calculator(atoms)
    relax(atoms, REFERENCE_FMAX, REFERENCE_STEPS, check_stop, cell=relax_cell)
    fit, _ = _fit(atoms, method)
    log.info("%s reference %s: %.4f eV/atom", method, symbol, fit.energy)
    return ElementReference(
        element=symbol, structure=reference_structure(symbol), energy_per_atom=fit.energy, volume_per_atom=fit.volume
    )


def molecule_reference(
    symbol: str, method: str, calculator: CalculatorFactory, check_stop: Callable[[], None] | None = None
) -> ElementReference:
    """A gas whose standard state is a diatomic molecule (O2, N2): the molecule alone in a box.

    Its bond is relaxed (the box stays); the volume per atom is that of the box, a
    bookkeeping number with no physical meaning for a gas.
    """
    state = cast(dict[str, float], reference_states[atomic_numbers[symbol]])  # ASE types it loosely
    atoms = Atoms([symbol, symbol], positions=[(0, 0, 0), (0, 0, float(state["d"]))], cell=[MOLECULE_BOX] * 3, pbc=True)
    atoms.center()
    atoms.calc = calculator(atoms)
    optimizer = BFGS(atoms, logfile=None)
    if check_stop is not None:
        optimizer.attach(check_stop, interval=1)
    optimizer.run(fmax=REFERENCE_FMAX, steps=REFERENCE_STEPS)
    energy = float(atoms.get_potential_energy()) / 2
    log.info("%s reference %s: %.4f eV/atom (diatomic molecule)", method, symbol, energy)
    return ElementReference(element=symbol, structure="diatom", energy_per_atom=energy, volume_per_atom=MOLECULE_BOX**3 / 2)
