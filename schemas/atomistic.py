"""Atomistic-simulation payloads: a crystal in, its bulk properties out.

One quantity, ``bulk_properties``, by several methods of different cost and
accuracy (plane-wave DFT with a choice of functional, a pretrained
machine-learned potential, EMT as a quick stand-in). A crystal is given
either explicitly (:class:`CrystalStructure`) or as a prototype and a composition (:class:`AlloyPrototype`), and the result
carries the equilibrium lattice constant, bulk modulus, energy per atom and
mixing (formation) energy, with the method's cost and convergence record.

JSON form of a structure::

    {"cell": [[3.6, 0, 0], [0, 3.6, 0], [0, 0, 3.6]],      # rows are lattice vectors, angstrom
     "positions": [[0, 0, 0], [0, 1.8, 1.8], ...],          # Cartesian, angstrom, one per atom
     "symbols": ["Cu", "Au", ...],                          # chemical symbols, one per atom
     "pbc": [true, true, true]}                             # bulk properties need all three
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationInfo, field_validator

#: The chemical symbols of the periodic table, Z = 1..118.
ELEMENTS: tuple[str, ...] = tuple(
    (
        "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
        "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb "
        "Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf "
        "Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
    ).split()
)
#: Most atoms a calculation accepts (cost grows with the cell).
MAX_ATOMS = 128

Vector3 = Annotated[list[FiniteFloat], Field(min_length=3, max_length=3)]


def _known_element(symbol: str) -> str:
    if symbol not in ELEMENTS:
        raise ValueError(f"{symbol!r} is not a chemical symbol")
    return symbol


class CrystalStructure(BaseModel):
    """A periodic crystal: cell, Cartesian positions, symbols, periodicity."""

    model_config = ConfigDict(extra="forbid")

    cell: Annotated[list[Vector3], Field(min_length=3, max_length=3)] = Field(
        description="Lattice vectors as rows (3x3).", json_schema_extra={"unit": "angstrom"}
    )
    positions: Annotated[list[Vector3], Field(min_length=1, max_length=MAX_ATOMS)] = Field(
        description="Cartesian positions, one row per atom.", json_schema_extra={"unit": "angstrom"}
    )
    symbols: list[str] = Field(description="Chemical symbol of each atom, in the order of positions.")
    pbc: Annotated[list[bool], Field(min_length=3, max_length=3)] = Field(
        default=[True, True, True], description="Periodicity along each lattice vector."
    )

    @field_validator("cell")
    @classmethod
    def _cell_has_volume(cls, cell: list[list[float]]) -> list[list[float]]:
        a, b, c = cell
        volume = (
            a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0])
        )
        if abs(volume) < 1.0:
            raise ValueError(f"cell volume {volume:.3g} A^3 is degenerate (the vectors must span space)")
        return cell

    @field_validator("symbols")
    @classmethod
    def _symbols_match_positions(cls, symbols: list[str], info: ValidationInfo) -> list[str]:
        for symbol in symbols:
            _known_element(symbol)
        positions = info.data.get("positions")
        if positions is not None and len(positions) != len(symbols):
            raise ValueError(f"{len(symbols)} symbols for {len(positions)} positions")
        return symbols

    @field_validator("pbc")
    @classmethod
    def _bulk_is_periodic(cls, pbc: list[bool]) -> list[bool]:
        if not all(pbc):
            raise ValueError("bulk properties need a crystal periodic in all three directions")
        return pbc


class AlloyPrototype(BaseModel):
    """A substitutional alloy on a lattice prototype.

    The conventional cubic cell of the prototype is repeated ``supercell``
    times along each axis and its sites are given elements in the requested
    fractions (rounded to whole atoms), arranged at random with ``seed``.
    """

    model_config = ConfigDict(extra="forbid")

    prototype: Literal["fcc"] = Field(default="fcc", description="Lattice prototype.")
    composition: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        description="Atomic fraction of each element (0: absent); the fractions sum to 1.",
        json_schema_extra={"unit": "dimensionless"}
    )
    supercell: int = Field(
        default=2, ge=1, le=3, description="Repeats of the conventional cell along each axis (4 n^3 atoms)."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the random site arrangement.")

    @field_validator("composition")
    @classmethod
    def _fractions(cls, composition: dict[str, float]) -> dict[str, float]:
        composition = {symbol: f for symbol, f in composition.items() if f > 0.0}  # 0 means absent
        if not composition:
            raise ValueError("give at least one element with a fraction above 0")
        for symbol in composition:
            _known_element(symbol)
        total = sum(composition.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"fractions sum to {total:.6g}, not 1")
        return composition


class PerovskitePrototype(BaseModel):
    """A cubic ABO3 perovskite (5 atoms): A at the cube corner, B at its centre, the anions on the face centres."""

    model_config = ConfigDict(extra="forbid")

    a_site: str = Field(description="The A cation (12-fold site), a chemical symbol.")
    b_site: str = Field(description="The B cation (6-fold octahedral site), a chemical symbol.")
    anion: str = Field(default="O", description="The anion (X of ABX3).")
    lattice_constant: float = Field(
        default=4.0, ge=3.0, le=6.0, description="Starting cubic lattice constant (relaxed).",
        json_schema_extra={"unit": "angstrom"},
    )

    @field_validator("a_site", "b_site", "anion")
    @classmethod
    def _symbol(cls, symbol: str) -> str:
        return _known_element(symbol)


class BulkPropertiesParameters(BaseModel):
    """What to compute: a crystal (explicit or prototype) and the relaxation settings."""

    model_config = ConfigDict(extra="forbid")

    structure: CrystalStructure | None = Field(default=None, description="An explicit crystal.")
    perovskite: PerovskitePrototype | None = Field(
        default=None, description="A cubic ABO3 perovskite (instead of a structure or an alloy)."
    )
    alloy: AlloyPrototype | None = Field(
        default=None, validate_default=True, description="A prototype alloy (instead of a structure)."
    )
    fmax: float = Field(
        default=0.02,
        ge=0.001,
        le=0.5,
        description="Force (and cell-stress) convergence of the relaxation.",
        json_schema_extra={"unit": "electron_volt / angstrom"},
    )
    max_steps: int = Field(default=200, ge=1, le=1000, description="Most optimizer steps of the relaxation.")

    @field_validator("alloy")
    @classmethod
    def _one_crystal(cls, alloy: AlloyPrototype | None, info: ValidationInfo) -> AlloyPrototype | None:
        given = [alloy is not None, info.data.get("structure") is not None, info.data.get("perovskite") is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'structure', 'perovskite' and 'alloy'")
        return alloy


class ConvergenceInfo(BaseModel):
    """How the calculation converged."""

    model_config = ConfigDict(extra="forbid")

    optimizer: str = Field(description="Optimizer of the relaxation (positions and cell volume).")
    optimizer_steps: int = Field(ge=0)
    max_force: float = Field(
        ge=0, description="Largest residual force after relaxation.", json_schema_extra={"unit": "electron_volt / angstrom"}
    )
    converged: bool = Field(description="Relaxation reached fmax and the EOS minimum lies inside the sampled volumes.")
    eos: str = Field(description="Equation of state fitted.")
    eos_points: int = Field(ge=0)
    eos_fit_residual: float = Field(
        ge=0, description="RMS residual of the EOS fit.", json_schema_extra={"unit": "electron_volt / atom"}
    )


class ElementReference(BaseModel):
    """An elemental reference computed by the same method."""

    model_config = ConfigDict(extra="forbid")

    element: str
    structure: str = Field(description="Crystal structure of the reference (its ground state).")
    energy_per_atom: float = Field(json_schema_extra={"unit": "electron_volt / atom"})
    volume_per_atom: float = Field(gt=0, json_schema_extra={"unit": "angstrom ** 3"})


class BulkPropertiesResult(BaseModel):
    """Equilibrium bulk properties of a crystal by one method."""

    model_config = ConfigDict(extra="forbid")

    method: str
    formula: str
    n_atoms: int = Field(ge=1)
    lattice_constant: float = Field(
        gt=0,
        description="fcc-equivalent cubic lattice constant (4 V0/atom)^(1/3); the lattice constant of an fcc crystal.",
        json_schema_extra={"unit": "angstrom"},
    )
    volume_per_atom: float = Field(gt=0, json_schema_extra={"unit": "angstrom ** 3"})
    bulk_modulus: float = Field(description="B0 of the Birch-Murnaghan fit.", json_schema_extra={"unit": "gigapascal"})
    bulk_modulus_derivative: float = Field(description="B0' of the Birch-Murnaghan fit.")
    energy_per_atom: float = Field(json_schema_extra={"unit": "electron_volt / atom"})
    formation_energy_per_atom: float = Field(
        description="Energy per atom relative to the pure elements in their ground-state structures, same method "
        "(the mixing energy of an alloy of elements that share its lattice).",
        json_schema_extra={"unit": "electron_volt / atom"},
    )
    cell: list[list[float]] = Field(
        description="Relaxed cell at the EOS volume (rows).", json_schema_extra={"unit": "angstrom"}
    )
    references: list[ElementReference]
    convergence: ConvergenceInfo
    cost_cpu_seconds: float = Field(
        ge=0, description="CPU time of this calculation (time.process_time).", json_schema_extra={"unit": "second"}
    )
    wall_seconds: float = Field(ge=0, json_schema_extra={"unit": "second"})


# ----------------------------------------------------------------------------- DFT
#: Most atoms a DFT calculation accepts: plane-wave DFT cost grows as the cube of
#: the cell, and a 4-atom cell already takes about a minute on one core here.
DFT_MAX_ATOMS = 10
#: Exchange-correlation functionals the DFT tenant offers (GPAW's PAW setups exist for both).
DFT_FUNCTIONALS = ("LDA", "PBE")


class SmallCrystalStructure(CrystalStructure):
    """A crystal small enough for plane-wave DFT here (at most :data:`DFT_MAX_ATOMS` atoms)."""

    positions: Annotated[list[Vector3], Field(min_length=1, max_length=DFT_MAX_ATOMS)] = Field(
        description="Cartesian positions, one row per atom.", json_schema_extra={"unit": "angstrom"}
    )


class SmallAlloyPrototype(AlloyPrototype):
    """A prototype alloy in the conventional cubic cell only (4 atoms for fcc)."""

    supercell: int = Field(default=1, ge=1, le=1, description="Repeats of the conventional cell (1: 4 atoms).")


class DftBulkPropertiesParameters(BulkPropertiesParameters):
    """Bulk properties by plane-wave DFT: the crystal, the functional and the convergence settings.

    The defaults are 350 eV, 2.5 k-points per reciprocal angstrom and 0.1 eV
    Fermi-Dirac smearing; their convergence has not been measured systematically
    (coarser settings, 300 eV and 2.0 per angstrom, already put LDA below and PBE
    above the measured lattice constants of the fcc metals; bulk moduli need more
    k-points than that to be trusted to 10 %).
    """

    structure: SmallCrystalStructure | None = Field(default=None, description="An explicit crystal.")
    alloy: SmallAlloyPrototype | None = Field(
        default=None, validate_default=True, description="A prototype alloy (instead of a structure)."
    )
    xc: Literal["LDA", "PBE"] = Field(default="PBE", description="Exchange-correlation functional.")
    cutoff: float = Field(
        default=350.0, ge=200.0, le=800.0, description="Plane-wave cutoff energy.",
        json_schema_extra={"unit": "electron_volt"},
    )
    kpoint_density: float = Field(
        default=2.5,
        ge=1.0,
        le=6.0,
        description="Monkhorst-Pack k-points per reciprocal angstrom along each reciprocal vector (ASE's "
        "convention, n_i = 2 pi density |b_i| rounded up to even), fixed from the starting cell for the "
        "whole calculation.",
        json_schema_extra={"unit": "angstrom"},
    )
    smearing: float = Field(
        default=0.1, ge=0.01, le=0.5, description="Fermi-Dirac smearing width; energies are extrapolated to zero width.",
        json_schema_extra={"unit": "electron_volt"},
    )
    max_scf_iterations: int = Field(
        default=100, ge=1, le=500, description="Most self-consistency iterations of one energy; more is a failure."
    )


class DftCalculation(BaseModel):
    """The settings a DFT result was computed with, and what the calculation took."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Code and version (GPAW x.y.z).")
    setups: str = Field(description="PAW data sets and their version.")
    mode: str = Field(description="Basis: plane waves.")
    xc: str
    cutoff: float = Field(json_schema_extra={"unit": "electron_volt"})
    kpoint_density: float = Field(json_schema_extra={"unit": "angstrom"})
    kpoints: list[int] = Field(description="Monkhorst-Pack mesh of the crystal (Gamma-centred).")
    irreducible_kpoints: int = Field(ge=1, description="k-points after symmetry reduction.")
    smearing: float = Field(json_schema_extra={"unit": "electron_volt"})
    occupations: str
    spin_polarized: bool = Field(description="Spin-polarised (a magnetic element is present).")
    scf_energy_tolerance: float = Field(
        description="SCF convergence: energy change per valence electron.", json_schema_extra={"unit": "electron_volt"}
    )
    scf_iterations: int = Field(ge=0, description="SCF iterations over every energy of the crystal.")
    energies: int = Field(ge=0, description="Self-consistent energies computed for the crystal.")
    threads: int = Field(ge=1, description="BLAS/OpenMP threads.")
    processes: int = Field(ge=1, description="MPI processes (1: serial).")


class DftBulkPropertiesResult(BulkPropertiesResult):
    """Bulk properties by DFT, with the settings and the cost record."""

    dft: DftCalculation


# ----------------------------------------------------------------------------- MLIP fine-tuning
#: Most DFT results one fine-tuning takes (each gives a few training cells; cost grows with them).
MLIP_MAX_EXAMPLES = 200
#: Most epochs and committee members of one fine-tuning (CPU minutes, not hours).
MLIP_MAX_EPOCHS = 50
MLIP_MAX_COMMITTEE = 5
#: A fine-tuned model's version: the first hex digits of the SHA-256 of its weights and training record.
MODEL_VERSION_PATTERN = r"^[0-9a-f]{12}$"


class MlipTrainingExample(BaseModel):
    """One DFT result as a training example of the MLIP: the small cell it computed and its equation of state.

    The crystal is given as the DFT request gave it (exactly one of ``structure``,
    ``alloy`` and ``perovskite``, at most :data:`DFT_MAX_ATOMS` atoms); it is rebuilt
    and scaled to ``volume_per_atom``. The energies are the DFT result's own: its
    Birch-Murnaghan fit (E0, V0, B0, B0') and its elemental references, by the same
    functional and settings.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(default=None, max_length=64, description="The DFT request the result answered.")
    result_id: str | None = Field(default=None, max_length=64, description="The DFT result.")
    structure: SmallCrystalStructure | None = Field(default=None, description="An explicit crystal.")
    perovskite: PerovskitePrototype | None = Field(default=None, description="A cubic ABO3 perovskite.")
    alloy: SmallAlloyPrototype | None = Field(
        default=None, validate_default=True, description="A prototype alloy (the conventional cell)."
    )
    energy_per_atom: FiniteFloat = Field(description="E0 of the DFT Birch-Murnaghan fit.",
                                         json_schema_extra={"unit": "electron_volt / atom"})
    volume_per_atom: float = Field(gt=1.0, le=200.0, description="V0 of the fit.",
                                   json_schema_extra={"unit": "angstrom ** 3"})
    bulk_modulus: float = Field(gt=0.0, le=1000.0, description="B0 of the fit.", json_schema_extra={"unit": "gigapascal"})
    bulk_modulus_derivative: float = Field(ge=0.0, le=20.0, description="B0' of the fit.")
    references: list[ElementReference] = Field(
        min_length=1, max_length=10, description="The elemental references of the DFT result (same settings)."
    )

    @field_validator("alloy")
    @classmethod
    def _one_crystal(cls, alloy: SmallAlloyPrototype | None, info: ValidationInfo) -> SmallAlloyPrototype | None:
        given = [alloy is not None, info.data.get("structure") is not None, info.data.get("perovskite") is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'structure', 'perovskite' and 'alloy'")
        return alloy


class MlipFineTuningParameters(BaseModel):
    """Fine-tune the MLIP from its pretrained weights on DFT results: a committee of a few members."""

    model_config = ConfigDict(extra="forbid")

    examples: list[MlipTrainingExample] = Field(
        min_length=1, max_length=MLIP_MAX_EXAMPLES, description="The DFT results to learn from."
    )
    epochs: int = Field(default=10, ge=1, le=MLIP_MAX_EPOCHS, description="Passes over the training cells.")
    committee: int = Field(
        default=3, ge=1, le=MLIP_MAX_COMMITTEE,
        description="Members fine-tuned from the same weights with different seeds and bootstrap samples of the "
        "examples; their spread is the model's uncertainty (1: no uncertainty).",
    )
    eos_points: int = Field(
        default=4, ge=0, le=6, multiple_of=2,
        description="Volumes of each example's own equation of state given as training energies besides V0, in "
        "pairs at linear strains within +-3 % (they carry the bulk modulus).",
    )
    learning_rate: float = Field(default=1e-3, ge=1e-6, le=1e-2, description="Adam's learning rate.")
    stress_weight: float = Field(
        default=1e-3, ge=0.0, le=1.0,
        description="Weight of the stress loss (GPa^2) against the energy loss ((eV/atom)^2) in CHGNet's trainer: "
        "each training cell's stress is the pressure -dE/dV of its example's fitted equation of state, which holds "
        "the bulk modulus and the equilibrium volume. At 1e-3 a pressure error of 1 GPa weighs as much as an "
        "energy error of 32 meV/atom (CHGNet's own 0.1 lets the pressures drown the mixing energies); 0: energies "
        "(and forces) only.",
    )
    freeze_lower_layers: bool = Field(
        default=True,
        description="Train only the last interaction layer and the readout (the embeddings and the other "
        "interaction layers keep their pretrained weights), as CHGNet's fine-tuning example does.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the first member (the others follow).")


class MlipMemberTraining(BaseModel):
    """How one committee member trained."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    training_cells: int = Field(ge=1, description="Cells of its bootstrap sample (with repeats).")
    validation_cells: int = Field(ge=0, description="Out-of-bag cells it was validated on (0: validated on its own).")
    training_mae: float = Field(ge=0, description="Energy MAE on its training cells after the last epoch.",
                                json_schema_extra={"unit": "electron_volt / atom"})
    validation_mae: float = Field(ge=0, description="Energy MAE on its validation cells after the last epoch.",
                                  json_schema_extra={"unit": "electron_volt / atom"})


class MlipFineTuningResult(BaseModel):
    """A fine-tuned MLIP committee, stored under its version, with its errors against the training energies."""

    model_config = ConfigDict(extra="forbid")

    method: str
    model: str = Field(pattern=MODEL_VERSION_PATTERN, description="Version of the fine-tuned committee.")
    base_model: str = Field(description="The pretrained model it started from (name and version).")
    examples: int = Field(ge=1)
    training_cells: int = Field(ge=1, description="Cells the examples gave (crystals, EOS volumes, elements).")
    epochs: int = Field(ge=1)
    committee: int = Field(ge=1)
    element_shifts: dict[str, float] = Field(
        description="Per-element energy shifts added to the DFT energies (pretrained MLIP reference minus DFT "
        "reference), which put them on the MLIP's zero and keep the DFT mixing energies.",
        json_schema_extra={"unit": "electron_volt / atom"},
    )
    mae_before: float = Field(ge=0, description="Energy MAE of the pretrained model on the training cells.",
                              json_schema_extra={"unit": "electron_volt / atom"})
    mae_after: float = Field(ge=0, description="Energy MAE of the committee's mean on the training cells.",
                             json_schema_extra={"unit": "electron_volt / atom"})
    members: list[MlipMemberTraining]
    energy_std_scale: float | None = Field(
        default=None, ge=1.0,
        description="Factor the committee's energy spread is multiplied by to give its standard deviations, fitted "
        "on the out-of-bag examples (each predicted by the members that did not train on it); none: a committee "
        "of one, or no example out of bag.",
    )
    bulk_modulus_std_scale: float | None = Field(
        default=None, ge=1.0, description="The same factor for the bulk modulus's spread.",
    )
    calibration_examples: int = Field(
        default=0, ge=0, description="Examples out of bag of at least one member, which the factors were fitted on.",
    )
    cost_cpu_seconds: float = Field(ge=0, json_schema_extra={"unit": "second"})
    wall_seconds: float = Field(ge=0, json_schema_extra={"unit": "second"})


class ChgnetBulkPropertiesParameters(BulkPropertiesParameters):
    """Bulk properties by CHGNet: the pretrained model, or a fine-tuned committee by its version."""

    model: str | None = Field(
        default=None, pattern=MODEL_VERSION_PATTERN,
        description="Version of a fine-tuned committee (from an mlip_fine_tuning result); none: the pretrained model.",
    )


class ChgnetBulkPropertiesResult(BulkPropertiesResult):
    """Bulk properties by CHGNet, naming the model, with a committee's standard deviations."""

    model: str | None = Field(description="Version of the fine-tuned committee; none: the pretrained model.")
    base_model: str = Field(description="The pretrained model (name and version).")
    committee: int = Field(ge=1, description="Models averaged (1: no uncertainty).")
    energy_per_atom_std: float | None = Field(
        default=None, ge=0, description="Committee standard deviation of E0 (members' own EOS fits at the "
        "committee's relaxed crystal).", json_schema_extra={"unit": "electron_volt / atom"},
    )
    formation_energy_per_atom_std: float | None = Field(
        default=None, ge=0, description="Committee standard deviation of the formation energy.",
        json_schema_extra={"unit": "electron_volt / atom"},
    )
    bulk_modulus_std: float | None = Field(
        default=None, ge=0, description="Committee standard deviation of B0.", json_schema_extra={"unit": "gigapascal"},
    )
    energy_std_scale: float | None = Field(
        default=None, ge=1.0,
        description="Factor by which the members' spread of E0 and of the formation energy was multiplied to give "
        "the two standard deviations above (fitted on the committee's out-of-bag examples when it was trained); "
        "none: the spread as it is.",
    )
    bulk_modulus_std_scale: float | None = Field(
        default=None, ge=1.0, description="The same factor for B0's spread.",
    )
