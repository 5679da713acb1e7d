"""DFT: bulk properties by GPAW, plane waves and PAW setups, LDA or PBE.

The lab's top-fidelity method. GPAW (Mortensen et al., J. Chem. Phys. 160,
092503 (2024)) computes the self-consistent Kohn-Sham energy of the crystal in
a plane-wave basis with the PAW data sets of the ``gpaw-data`` package (no
download at run time). The procedure is the one every atomistic method runs
(:func:`~labweave.drivers.atomistic.backend.compute_bulk_properties`), with
two choices made for cost:

- the atoms relax in the fixed starting cell and the equation-of-state scan
  alone finds the volume (recentred once if the minimum lies outside it):
  every energy is a full SCF of seconds to a minute, and a stress-driven cell
  relaxation would spend several of them on what the scan measures anyway;
- the Monkhorst-Pack mesh is fixed from the starting cell (from
  ``kpoint_density``) for every volume of the scan, so the energies of one
  equation of state share one mesh (a mesh that changed with the volume would
  put steps into E(V)).

Fe, Co and Ni are computed spin-polarised, starting from ferromagnetic
moments; everything else spin-paired. Energies are Fermi-Dirac smeared and
extrapolated to zero width. Elemental references are computed with the same
functional and settings, once per process, and wherever possible in the
alloy's own cell with the alloy's own k-point mesh (:func:`reference_cell`):
at the coarse meshes a 4-atom cell can afford, the sampling error of a metal's
energy is tens of meV/atom and differs between the primitive and the cubic
cell (fcc Al, PBE, 300 eV, 2.0 k-points/A: -3.804 eV/atom in its 1-atom cell
on 6x6x6, -3.726 in the 4-atom cubic cell on 4x4x4), so references on another
mesh would put that difference into every mixing energy; on the same mesh it
cancels.

:func:`dft_bulk_properties` is a plain function of picklable arguments, so it
runs as well in a worker process (a Dask worker) as in the tenant's thread.
Its threads are limited explicitly (``threads``, one by default) and GPAW
runs serially (one process, no MPI). The backend runs it through the
executor every atomistic backend uses (a worker thread, or a Dask worker with
``--dask-scheduler``); the elemental references are cached per process, by
functional and settings.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self, cast

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes, kptdensity2monkhorstpack
from ase.data import atomic_numbers, reference_states
from pydantic import Field

from labweave.drivers.atomistic.backend import AtomisticBackend, compute_bulk_properties, compute_reference
from labweave.drivers.atomistic.structures import build_alloy, build_crystal, elements_of, reference_structure
from labweave.drivers.base import BackendContext, BackendSettings, InstrumentFault, ParameterError
from labweave.schemas.atomistic import (
    DFT_FUNCTIONALS,
    BulkPropertiesParameters,
    DftBulkPropertiesParameters,
    DftBulkPropertiesResult,
    DftCalculation,
    ElementReference,
)

log = logging.getLogger(__name__)

#: SCF convergence: energy change per valence electron (eV). GPAW's default
#: (5e-4) would leave ~5 meV/atom of noise in the energies of a late transition
#: metal, as large as the curvature a bulk modulus is read from over a 3 % scan.
SCF_ENERGY_TOLERANCE = 1e-5
#: Starting moments (Bohr magnetons) of the elements computed spin-polarised:
#: the ferromagnetic 3d metals.
MAGNETIC_MOMENTS = {"Fe": 2.5, "Co": 1.7, "Ni": 0.7}
#: Ground-state structures usable as elemental references.
SOLID_REFERENCES = frozenset({"fcc", "bcc", "hcp", "diamond"})

METHOD = "dft"


def setup_paths() -> list[Path]:
    """Folders GPAW searches for PAW setups (gpaw-data's and ``GPAW_SETUP_PATH``'s)."""
    import gpaw

    return [Path(p) for p in gpaw.setup_paths]


@functools.cache
def setup_elements(xc: str) -> frozenset[str]:
    """Elements with a PAW setup for ``xc`` and a crystalline ground state (for the references).

    Args:
        xc: ``"LDA"`` or ``"PBE"``.

    Returns:
        Chemical symbols.
    """
    found = set()
    for folder in setup_paths():
        if folder.is_dir():
            found |= {p.name.split(".")[0] for p in folder.glob(f"*.{xc}.gz")}
            found |= {p.name.split(".")[0] for p in folder.glob(f"*.{xc}")}
    out = set()
    for symbol in found:
        z = atomic_numbers.get(symbol)
        state = reference_states[z] if z is not None and z < len(reference_states) else None
        if state and state.get("symmetry") in SOLID_REFERENCES:
            out.add(symbol)
    return frozenset(out)


def code_versions() -> tuple[str, str]:
    """GPAW's version and that of its PAW data sets."""
    import gpaw

    try:
        import gpaw_data

        setups = f"gpaw-data {gpaw_data.__version__} PAW"
    except ImportError:  # setups from GPAW_SETUP_PATH only
        setups = "PAW setups from GPAW_SETUP_PATH"
    return f"GPAW {gpaw.__version__}", setups


def check_elements(params: BulkPropertiesParameters, xc: str) -> None:
    """Refuse elements without a PAW setup for the functional (or without a solid reference).

    Raises:
        ParameterError: naming ``structure.symbols`` or ``alloy.composition``.
    """
    field, elements = elements_of(params)
    known = setup_elements(xc)
    unknown = [e for e in elements if e not in known]
    if unknown:
        _, setups = code_versions()
        raise ParameterError(
            field,
            f"dft has no {xc} PAW setup (in {setups}) or no crystalline reference state for "
            f"{', '.join(unknown)}",
        )


class CountingCalculator(Calculator):
    """GPAW behind ASE's calculator interface, counting SCF iterations and energies.

    Args:
        inner: the GPAW calculator.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, inner: Any, mesh: list[int], spin_polarized: bool, xc: str, max_iterations: int) -> None:
        super().__init__()
        self.inner = inner
        self.xc = xc
        self.max_iterations = max_iterations
        self.mesh = mesh
        self.spin_polarized = spin_polarized
        self.scf_iterations = 0
        self.energies = 0
        self.irreducible_kpoints = 0

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        import gpaw

        crystal = self.atoms
        assert crystal is not None  # set by Calculator.calculate
        try:
            energy = self.inner.get_potential_energy(crystal)
        except gpaw.KohnShamConvergenceError as exc:
            raise ScfNotConverged(self.max_iterations, self.xc) from exc
        self.energies += 1
        self.scf_iterations += int(self.inner.get_number_of_iterations())
        self.irreducible_kpoints = len(self.inner.get_ibz_k_points())
        self.results["energy"] = energy
        self.results["free_energy"] = self.inner.get_potential_energy(crystal, force_consistent=True)
        if "forces" in (properties or []):
            self.results["forces"] = self.inner.get_forces(crystal)
        if "stress" in (properties or []):
            self.results["stress"] = self.inner.get_stress(crystal)


class ScfNotConverged(InstrumentFault):
    """The self-consistency loop did not converge within ``max_scf_iterations``."""

    def __init__(self, iterations: int, xc: str) -> None:
        super().__init__(
            f"dft: the SCF did not converge within {iterations} iterations ({xc}); "
            "raise max_scf_iterations or smearing, or check the crystal",
            retryable=False,
        )


def mesh_of(atoms: Atoms, density: float) -> list[int]:
    """The even Monkhorst-Pack mesh of ``density`` k-points per reciprocal angstrom for this cell."""
    return [int(n) for n in kptdensity2monkhorstpack(atoms, density, even=True)]


def gpaw_calculator(atoms: Atoms, params: DftBulkPropertiesParameters,
                    mesh: list[int] | None = None) -> CountingCalculator:
    """A fresh GPAW plane-wave calculator for ``atoms`` (its mesh fixed from this cell, or given).

    Sets the starting magnetic moments of Fe, Co and Ni on ``atoms``.
    """
    from gpaw import GPAW, PW, FermiDirac

    magnetic = [MAGNETIC_MOMENTS.get(s, 0.0) for s in atoms.get_chemical_symbols()]
    spin = any(m > 0 for m in magnetic)
    if spin:
        atoms.set_initial_magnetic_moments(magnetic)
    mesh = mesh if mesh is not None else mesh_of(atoms, params.kpoint_density)
    inner = GPAW(
        mode=PW(params.cutoff),
        xc=params.xc,
        kpts={"size": mesh, "gamma": True},
        occupations=FermiDirac(params.smearing),
        convergence={"energy": SCF_ENERGY_TOLERANCE},
        maxiter=params.max_scf_iterations,
        spinpol=spin,
        txt=None,
    )
    return CountingCalculator(inner, mesh, spin, params.xc, params.max_scf_iterations)


#: Elemental references by settings and cell, for this process (a tenant or a Dask worker).
_references: dict[tuple, ElementReference] = {}
_references_lock = threading.Lock()


def reference_cell(symbol: str, params: DftBulkPropertiesParameters) -> tuple[Atoms, list[int]] | None:
    """The alloy's own cell filled with ``symbol`` and the alloy's mesh, where that is the element's ground state.

    For an alloy on the prototype of the element's ground state (an fcc alloy
    and an fcc metal), the reference is the same supercell of the prototype,
    all sites ``symbol``, on the k-point mesh of the alloy's starting cell: the
    sampling errors of alloy and reference then cancel in the mixing energy.

    Returns:
        (atoms, mesh), or None where the reference must be the element's own
        ground-state cell (an explicit structure, or an element whose ground
        state is not the alloy's prototype).
    """
    if params.alloy is None or reference_structure(symbol) != params.alloy.prototype:
        return None
    alloy = build_crystal(params)
    mesh = mesh_of(alloy, params.kpoint_density)
    pure = params.alloy.model_copy(update={"composition": {symbol: 1.0}})
    return build_alloy(pure), mesh


def _reference_key(symbol: str, params: DftBulkPropertiesParameters, mesh: list[int] | None = None) -> tuple:
    cell = ("own cell", params.alloy.prototype, params.alloy.supercell, tuple(mesh)) \
        if mesh is not None and params.alloy is not None else ("ground state",)
    return (symbol, params.xc, params.cutoff, params.kpoint_density, params.smearing, *cell)


def dft_reference(symbol: str, params: DftBulkPropertiesParameters,
                  check_stop: Callable[[], None] | None = None) -> ElementReference:
    """An element in its ground state with this functional and these settings (cached per process).

    Computed in the alloy's own cell and mesh where :func:`reference_cell`
    gives one, else in the element's ground-state cell at the same k-point density.
    """
    own_cell = reference_cell(symbol, params)
    key = _reference_key(symbol, params, own_cell[1] if own_cell else None)
    with _references_lock:
        cached = _references.get(key)
        if cached is None:
            if own_cell is None:
                cached = compute_reference(
                    symbol, METHOD, functools.partial(gpaw_calculator, params=params), check_stop, relax_cell=False
                )
            else:
                atoms, mesh = own_cell
                cached = compute_reference(
                    symbol, METHOD, functools.partial(gpaw_calculator, params=params, mesh=mesh), check_stop,
                    relax_cell=False, atoms=atoms,
                )
            _references[key] = cached
        return cached


def _own_reference(params: DftBulkPropertiesParameters) -> str | None:
    """The element whose reference crystal this is, else None.

    That is a pure element in the cell its reference is computed in: the
    alloy prototype's own cell (see :func:`reference_cell`), or ASE's
    ground-state cell at any scale.
    """
    atoms = build_crystal(params)
    symbols = set(atoms.get_chemical_symbols())
    if len(symbols) != 1:
        return None
    (symbol,) = symbols
    if params.alloy is not None:
        return symbol if reference_cell(symbol, params) is not None else None
    ground = bulk(symbol)
    if len(ground) != len(atoms):
        return None
    scale = (atoms.get_volume() / ground.get_volume()) ** (1.0 / 3.0)
    same_cell = np.allclose(atoms.get_cell()[:], ground.get_cell()[:] * scale, atol=1e-6)
    same_sites = np.allclose(atoms.get_scaled_positions(), ground.get_scaled_positions(), atol=1e-6)
    return symbol if same_cell and same_sites else None


def dft_bulk_properties(
    params: DftBulkPropertiesParameters, threads: int = 1, check_stop: Callable[[], None] | None = None
) -> DftBulkPropertiesResult:
    """Relax, fit the equation of state and compare with the elements, by GPAW.

    A plain function: it runs in the tenant's worker thread or, pickled with its
    arguments, in another process.

    Args:
        params: validated parameters.
        threads: BLAS/OpenMP threads of the calculation.
        check_stop: called after every optimizer step; raises to abandon.

    Returns:
        The result with the settings, the mesh, the SCF record and the CPU time
        (references computed for it included).

    Raises:
        ParameterError: an element without a setup for the functional.
        InstrumentFault: the SCF did not converge, or no minimum was found (not retryable).
    """
    from threadpoolctl import threadpool_limits

    check_elements(params, params.xc)
    counters: list[CountingCalculator] = []

    def calculator(atoms: Atoms) -> CountingCalculator:
        calc = gpaw_calculator(atoms, params)
        counters.append(calc)
        return calc

    own = _own_reference(params)

    def reference(symbol: str) -> ElementReference:
        if symbol == own:  # the crystal is the element's reference: its own fit, after the fact
            return ElementReference(element=symbol, structure=reference_structure(symbol), energy_per_atom=0.0,
                                    volume_per_atom=1.0)
        return dft_reference(symbol, params, check_stop)

    with threadpool_limits(limits=threads):
        base = compute_bulk_properties(
            params,
            METHOD,
            calculator,
            reference,
            optimizer="BFGS on positions in the starting cell; volume from the EOS scan",
            check_stop=check_stop,
            relax_cell=False,
        )
    if own is not None:
        itself = ElementReference(element=own, structure=reference_structure(own),
                                  energy_per_atom=base.energy_per_atom, volume_per_atom=base.volume_per_atom)
        base = base.model_copy(update={"references": [itself], "formation_energy_per_atom": 0.0})
        with _references_lock:
            own_cell = reference_cell(own, params)
            _references.setdefault(_reference_key(own, params, own_cell[1] if own_cell else None), itself)
    from gpaw.mpi import world

    (calc,) = counters
    code, setups = code_versions()
    return DftBulkPropertiesResult(
        **base.model_dump(),
        dft=DftCalculation(
            code=code,
            setups=setups,
            mode="plane waves",
            xc=params.xc,
            cutoff=params.cutoff,
            kpoint_density=params.kpoint_density,
            kpoints=calc.mesh,
            irreducible_kpoints=max(1, calc.irreducible_kpoints),
            smearing=params.smearing,
            occupations="fermi-dirac",
            spin_polarized=calc.spin_polarized,
            scf_energy_tolerance=SCF_ENERGY_TOLERANCE,
            scf_iterations=calc.scf_iterations,
            energies=calc.energies,
            threads=threads,
            processes=int(world.size),
        ),
    )


class DftSettings(BackendSettings):
    """Options of the DFT backend (``--backend-option threads=N``)."""

    threads: int = Field(default=1, ge=1, le=64, description="BLAS/OpenMP threads of each calculation.")


class DftBackend(AtomisticBackend):
    """Bulk properties by GPAW (plane waves), the functional and settings per request."""

    method: ClassVar[str] = METHOD
    optimizer: ClassVar[str] = "BFGS on positions in the starting cell; volume from the EOS scan"
    settings_model: ClassVar[type[BackendSettings]] = DftSettings

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        self.threads = threads

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        """The backend; refused (a ValueError, reported as an unusable backend) without GPAW."""
        assert isinstance(settings, DftSettings)
        try:
            import gpaw  # noqa: F401
        except ImportError as exc:
            raise ValueError(f"GPAW is not installed ({exc}); install the dft extra: see the README's DFT section") from None
        return cls(threads=settings.threads)

    def supported_elements(self) -> frozenset[str]:
        """Elements with setups for every functional offered."""
        return frozenset.intersection(*(setup_elements(xc) for xc in DFT_FUNCTIONALS))

    def calculator(self) -> Calculator:
        """GPAW at the default settings, its mesh chosen by GPAW from the density (a quick single point)."""
        from gpaw import GPAW, PW, FermiDirac

        defaults = DftBulkPropertiesParameters.model_validate({"alloy": {"composition": {"Cu": 1.0}}})
        calculator = GPAW(mode=PW(defaults.cutoff), xc=defaults.xc,
                    kpts={"density": defaults.kpoint_density, "even": True, "gamma": True},
                    occupations=FermiDirac(defaults.smearing), convergence={"energy": SCF_ENERGY_TOLERANCE},
                    txt=None)
        return cast(Calculator, calculator)  # GPAW's ASECalculator speaks ASE's calculator interface

    def check(self, params: BulkPropertiesParameters) -> None:
        xc = params.xc if isinstance(params, DftBulkPropertiesParameters) else "PBE"
        check_elements(params, xc)

    def compute(self, params: BulkPropertiesParameters,
                check_stop: Callable[[], None] | None = None) -> DftBulkPropertiesResult:
        """The bulk properties by GPAW, in the calling thread (a tenant's worker thread or a Dask worker)."""
        if not isinstance(params, DftBulkPropertiesParameters):
            params = DftBulkPropertiesParameters.model_validate(params.model_dump())
        return dft_bulk_properties(params, self.threads, check_stop)
