"""Fine-tuning CHGNet on the lab's DFT results: a versioned committee of fine-tuned models.

The lab's MLIP (:mod:`labweave.drivers.atomistic.mlip`) starts from CHGNet's
pretrained weights; here it learns from what the DFT tenant computed. Each DFT
result gives training cells:

- its crystal, rebuilt from the request's ``alloy``/``structure``/``perovskite``
  with :func:`~labweave.drivers.atomistic.structures.build_crystal` and scaled to
  the result's equilibrium volume V0, with the energy E0 of its Birch-Murnaghan fit;
- the same crystal at a few more volumes (linear strains within +-3 %, the range
  the DFT scan sampled), with energies read off that fit;
- the elemental reference crystals the result carries (each element's ground
  state at its DFT volume, with its DFT energy).

Each cell also carries a stress: the pressure P(V) = -dE/dV of the example's
fitted equation of state (zero at V0 and for the references), which the fit
gives exactly. The energies alone hold the bulk modulus badly: over +-3 % of
strain E(V) rises by 5-40 meV/atom, no more than the mixing-energy errors the
same loss is fixing, and trained on energies only the committee's bulk moduli
got worse than the pretrained model's. The pressures are the slope of E(V) at
every training volume: they fix V0 and B0 directly. The DFT scan kept the
cell's shape, so it says nothing of the stress's deviatoric part (an L1_0 cell
wants c/a != 1): the target keeps the pretrained model's own deviatoric stress
and replaces only its pressure.

The structures are the starting positions scaled to V0, not relaxed ones (a
result reports its cell, not its positions): exact for the ordered cells of the
alloy pool, whose atoms sit on symmetry sites, an approximation for a crystal
with free internal coordinates.

**Energy zeros.** GPAW's total energies are on another zero than CHGNet's
(CHGNet learned Materials Project's VASP/PAW energies), a difference of up to
electronvolts per atom that depends on the element. The target energy of a cell
with n_i atoms of element i is therefore ``E_dft + sum_i n_i mu_i``, with the
per-element shift ``mu_i = E_chgnet(i) - E_dft(i)`` between the pretrained
CHGNet's and DFT's energies per atom of the element's reference crystal (each at
its own equilibrium), taken from the example's own references (the DFT driver
computes an alloy's references in the alloy's cell and mesh, so the same
element's DFT reference differs between examples by the k-point error of their
cells). The targets are on CHGNet's zero, and since the shifts cancel in a
mixing energy, each example's DFT mixing energy is kept exactly.

**Training.** CHGNet's own :class:`chgnet.trainer.Trainer` on a
:class:`chgnet.data.dataset.StructureData` of the cells, on energies, forces
(zero: the atoms of these cells sit where symmetry cancels them) and stresses
(weighted by ``stress_weight``: 1e-3 makes 1 GPa of pressure error weigh as
32 meV/atom of energy error; CHGNet's own 0.1 drowns the mixing energies, whose
errors are tens of meV/atom, under the pressures), Adam, a cosine
learning rate, batches of four cells, a few epochs on the CPU from the
pretrained weights.
By default the embeddings and all but the last interaction layer keep their
pretrained weights (``freeze_lower_layers``), as CHGNet's fine-tuning example
does for a small data set; the composition model (CHGNet's AtomRef) stays as
pretrained, its job being done by the shifts.

**Committee.** ``committee`` members start from the same weights and differ in
their seed and in a bootstrap sample of the examples (the elemental references
are in every sample: they fix the zeros); each is validated on its out-of-bag
examples. The spread of their predictions is the model's uncertainty.

**Calibration.** A few members trained on a few examples agree with each other
more than with DFT: their raw spread covered 20-40 % of the held-out errors
within two standard deviations. Every example is out of bag of some members (a
bootstrap sample leaves out about a third), so the errors of those members on
it are errors on a cell they never saw, measured at training time with nothing
held out. The spread is scaled by the factor that makes these out-of-bag errors
unit-variance in units of the spread, ``s = sqrt(mean(z^2))`` with
``z = (out-of-bag mean - DFT) / spread`` (at least 1), one factor for the
energies (fitted on the formation energies) and one for the bulk modulus; the
factors go in the record, and results by the committee report the scaled
standard deviations (:mod:`~labweave.drivers.atomistic.mlip`).

The committee is stored by :class:`~labweave.drivers.atomistic.chgnet_models.ModelRegistry`
under its version, with its training record.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import all_changes
from ase.stress import voigt_6_to_full_3x3_stress
from ase.units import GPa

from labweave.drivers.atomistic.backend import compute_reference
from labweave.drivers.atomistic.chgnet_models import (
    BASE_MODEL,
    ModelRegistry,
    chgnet_calculator,
    chgnet_model,
    member_fits,
    predict_energies,
)
from labweave.drivers.atomistic.eos import birch_murnaghan_energy, birch_murnaghan_pressure
from labweave.drivers.atomistic.structures import build_crystal
from labweave.drivers.base import ParameterError
from labweave.schemas.atomistic import (
    BulkPropertiesParameters,
    ElementReference,
    MlipFineTuningParameters,
    MlipFineTuningResult,
    MlipMemberTraining,
    MlipTrainingExample,
)

if TYPE_CHECKING:
    from chgnet.model import CHGNet

log = logging.getLogger(__name__)

METHOD = "chgnet"
#: Largest linear strain of the extra EOS volumes (the DFT scan's own range).
EOS_SAMPLE_STRAIN = 0.03
#: Cells per optimizer step.
BATCH_SIZE = 4
#: Two examples' references of one element farther apart than this (eV/atom) come from another functional
#: or code: the references of one functional differ by their cells' k-point errors, tens of meV/atom.
REFERENCE_TOLERANCE = 0.15


@dataclass(frozen=True)
class TrainingCell:
    """One training structure, its target energy per atom on CHGNet's zero and its pressure."""

    atoms: Atoms
    energy_per_atom: float
    #: Index of the example it comes from; None for an elemental reference crystal.
    example: int | None
    label: str
    #: -dE/dV of the example's equation of state at this volume (GPa, positive when compressed).
    pressure: float = 0.0


# ----------------------------------------------------------------------------- training cells
def example_crystal(example: MlipTrainingExample) -> Atoms:
    """The example's crystal, rebuilt from its request's parameters and scaled to its V0."""
    params = BulkPropertiesParameters.model_validate(
        example.model_dump(include={"structure", "alloy", "perovskite"}, exclude_none=True))
    atoms = build_crystal(params)
    scale = (example.volume_per_atom * len(atoms) / atoms.get_volume()) ** (1.0 / 3.0)
    atoms.set_cell(atoms.get_cell() * scale, scale_atoms=True)
    return atoms


def reference_crystal(reference: ElementReference) -> Atoms:
    """An element's ground-state crystal (ASE's reference state) at the reference's volume per atom."""
    atoms = bulk(reference.element)
    scale = (reference.volume_per_atom * len(atoms) / atoms.get_volume()) ** (1.0 / 3.0)
    atoms.set_cell(atoms.get_cell() * scale, scale_atoms=True)
    return atoms


_pretrained_references: dict[str, ElementReference] = {}
_pretrained_lock = threading.Lock()


def pretrained_reference(symbol: str) -> ElementReference:
    """An element's ground state by the pretrained CHGNet, relaxed and fitted (cached per process)."""
    with _pretrained_lock:
        if symbol not in _pretrained_references:
            _pretrained_references[symbol] = compute_reference(
                symbol, METHOD, lambda atoms: chgnet_calculator(chgnet_model()))
        return _pretrained_references[symbol]


def dft_references(examples: Sequence[MlipTrainingExample]) -> dict[str, ElementReference]:
    """Each element's DFT reference (the first example's), checked to agree across the examples.

    Raises:
        ParameterError: naming ``examples.<i>.references`` where an element's reference differs from an
            earlier example's by more than :data:`REFERENCE_TOLERANCE` (another functional or code).
    """
    out: dict[str, ElementReference] = {}
    for i, example in enumerate(examples):
        for reference in example.references:
            known = out.setdefault(reference.element, reference)
            if abs(known.energy_per_atom - reference.energy_per_atom) > REFERENCE_TOLERANCE:
                raise ParameterError(
                    f"examples.{i}.references",
                    f"{reference.element}'s reference energy {reference.energy_per_atom:.4f} eV/atom differs from "
                    f"{known.energy_per_atom:.4f} eV/atom of an earlier example: results of another functional",
                )
    return out


def element_shifts(references: dict[str, ElementReference]) -> dict[str, float]:
    """mu_i = E_chgnet(i) - E_dft(i), per atom: what puts DFT energies on the pretrained CHGNet's zero."""
    return {symbol: pretrained_reference(symbol).energy_per_atom - ref.energy_per_atom
            for symbol, ref in sorted(references.items())}


def eos_strains(points: int) -> list[float]:
    """Linear strains of the extra EOS volumes: ``points`` (even) of them, in pairs, within +-3 %."""
    half = points // 2
    return [s * EOS_SAMPLE_STRAIN * k / half for k in range(1, half + 1) for s in (-1.0, 1.0)]


def training_cells(examples: Sequence[MlipTrainingExample], eos_points: int) -> list[TrainingCell]:
    """The cells of the examples (each at V0 and at ``eos_points`` more volumes) and of their elements.

    Each example's energies are shifted by its own references (:func:`element_shifts`).

    Raises:
        ParameterError: naming ``examples.<i>`` where an element lacks its reference.
    """
    cells: list[TrainingCell] = []
    for i, example in enumerate(examples):
        atoms = example_crystal(example)
        counts = Counter(atoms.get_chemical_symbols())
        missing = sorted(set(counts) - {r.element for r in example.references})
        if missing:
            raise ParameterError(f"examples.{i}.references", f"no reference for {', '.join(missing)}")
        shifts = element_shifts({r.element: r for r in example.references})
        shift = sum(n * shifts[s] for s, n in counts.items()) / len(atoms)
        label = example.result_id or example.request_id or atoms.get_chemical_formula()
        cells.append(TrainingCell(atoms, example.energy_per_atom + shift, i, label))
        for strain in eos_strains(eos_points):
            strained = atoms.copy()
            strained.set_cell(atoms.get_cell() * (1.0 + strain), scale_atoms=True)
            volume = strained.get_volume() / len(strained)
            eos = (example.volume_per_atom, example.bulk_modulus, example.bulk_modulus_derivative)
            energy = birch_murnaghan_energy(volume, example.energy_per_atom, *eos)
            cells.append(TrainingCell(strained, energy + shift, i, f"{label}@{strain:+.3f}",
                                      birch_murnaghan_pressure(volume, *eos)))
    for symbol, reference in sorted(dft_references(examples).items()):
        if reference.structure == "diatom":
            continue  # a molecule in a box: its shift is used, the box is no crystal to learn
        # E_dft(i) + mu_i: the pretrained CHGNet's own energy, now at DFT's volume
        cells.append(TrainingCell(reference_crystal(reference), pretrained_reference(symbol).energy_per_atom, None,
                                  f"{symbol} ({reference.structure})"))
    return cells


# ----------------------------------------------------------------------------- the committee
def freeze_lower_layers(model: CHGNet) -> None:
    """Keep the embeddings and all but the last interaction layer at their pretrained weights."""
    frozen = [model.atom_embedding, model.bond_embedding, model.angle_embedding, model.bond_basis_expansion,
              model.angle_basis_expansion, *model.atom_conv_layers[:-1], *model.bond_conv_layers,
              *model.angle_layers]
    for layer in frozen:
        if layer is not None:
            for parameter in layer.parameters():
                parameter.requires_grad = False


def copy_model(model: CHGNet) -> CHGNet:
    """An independent copy of a CHGNet (its weights and its construction arguments)."""
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its size on construction
        return CHGNet.from_dict(_clone(model.as_dict()))


def _clone(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _structures(cells: Sequence[TrainingCell]) -> list[Any]:
    from pymatgen.io.ase import AseAtomsAdaptor

    return [AseAtomsAdaptor.get_structure(c.atoms) for c in cells]


def stress_targets(base: CHGNet, cells: Sequence[TrainingCell]) -> list[list[list[float]]]:
    """Each cell's target stress in the form CHGNet's ``StructureData`` reads (VASP's: kbar, positive
    when compressed): the pretrained model's own deviatoric stress, with the cell's pressure as its trace."""
    calculator = chgnet_calculator(base)
    out = []
    for cell in cells:
        calculator.calculate(cell.atoms, ["stress"], all_changes)
        stress = np.asarray(calculator.results["stress"]).reshape(-1)
        tensor = (voigt_6_to_full_3x3_stress(stress) if stress.size == 6 else stress.reshape(3, 3)) / GPa
        deviatoric = tensor - np.trace(tensor) / 3.0 * np.eye(3)
        ase_sign = deviatoric - cell.pressure * np.eye(3)  # ASE's stress, GPa: -P on the diagonal
        out.append((-10.0 * ase_sign).tolist())  # StructureData multiplies by -0.1
    return out


def train_member(base: CHGNet, cells: Sequence[TrainingCell], settings: MlipFineTuningParameters,
                 seed: int, bootstrap: bool,
                 stresses: Sequence[Sequence[Sequence[float]]] | None = None,
                 ) -> tuple[CHGNet, MlipMemberTraining, set[int]]:
    """One committee member: the base model fine-tuned by CHGNet's Trainer on a bootstrap sample.

    Args:
        base: the pretrained model (left unchanged).
        cells: every training cell.
        settings: epochs, learning rate, freezing.
        seed: torch's seed, the data seed and the bootstrap's.
        bootstrap: sample the examples with replacement (a committee of one trains on all).
        stresses: each cell's target stress (:func:`stress_targets`); none: energies and forces only.

    Returns:
        The trained model (in evaluation mode), its training record and the examples it trained on.
    """
    import torch
    from chgnet.data.dataset import StructureData, collate_graphs
    from chgnet.trainer import Trainer
    from torch.utils.data import DataLoader, SubsetRandomSampler

    rng = np.random.default_rng(seed)
    examples = sorted({c.example for c in cells if c.example is not None})
    chosen = list(rng.choice(examples, size=len(examples), replace=True)) if bootstrap else examples
    by_example: dict[int | None, list[int]] = {}
    for index, cell in enumerate(cells):
        by_example.setdefault(cell.example, []).append(index)
    train = [i for e in chosen for i in by_example[e]] + by_example.get(None, [])
    out_of_bag = [i for e in examples if e not in set(chosen) for i in by_example[e]]
    validation = out_of_bag or sorted(set(train))

    model = copy_model(base)
    if settings.freeze_lower_layers:
        freeze_lower_layers(model)
    quiet = io.StringIO()  # CHGNet's dataset and trainer print their progress; it goes to the debug log
    with contextlib.redirect_stdout(quiet):
        data = StructureData(structures=_structures(cells), energies=[c.energy_per_atom for c in cells],
                             forces=[np.zeros((len(c.atoms), 3)).tolist() for c in cells],
                             stresses=None if stresses is None else list(stresses), shuffle=False)
        order = torch.Generator().manual_seed(seed)
        train_loader = DataLoader(data, batch_size=BATCH_SIZE, collate_fn=collate_graphs,
                                  sampler=SubsetRandomSampler(train, generator=order))
        val_loader = DataLoader(data, batch_size=BATCH_SIZE, collate_fn=collate_graphs,
                                sampler=SubsetRandomSampler(validation, generator=order))
        trainer = Trainer(model=model, targets="ef" if stresses is None else "efs",
                          stress_loss_ratio=settings.stress_weight, optimizer="Adam", scheduler="CosLR", criterion="MSE",
                          epochs=settings.epochs, learning_rate=settings.learning_rate, print_freq=1 << 30,
                          torch_seed=seed, data_seed=seed + 1, use_device="cpu")
        trainer.train(train_loader, val_loader, save_dir="")  # "": no checkpoint files
    log.debug("CHGNet trainer (seed %d):\n%s", seed, quiet.getvalue())
    model.eval()
    history = trainer.training_history["e"]
    return model, MlipMemberTraining(seed=seed, training_cells=len(train), validation_cells=len(out_of_bag),
                                     training_mae=float(history["train"][-1]),
                                     validation_mae=float(history["val"][-1])), {int(e) for e in chosen}


# ----------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """Factors that turn the committee's spreads into standard deviations, from its out-of-bag errors."""

    energy_std_scale: float | None
    bulk_modulus_std_scale: float | None
    #: Examples out of bag of at least one member (the factors' sample).
    examples: int


def spread_scale(errors: Sequence[float], spreads: Sequence[float]) -> float | None:
    """sqrt(mean((error / spread)^2)), at least 1; none without a usable pair (spread zero or no pairs)."""
    z = [e / s for e, s in zip(errors, spreads) if s > 0]
    if not z:
        return None
    return max(1.0, float(np.sqrt(np.mean(np.square(z)))))


def calibrate(members: Sequence[CHGNet], in_bag: Sequence[set[int]],
              examples: Sequence[MlipTrainingExample]) -> Calibration:
    """Fit the spread factors on the examples each member did not train on.

    For every example out of bag of at least one member: each member's formation
    energy and bulk modulus, from its own equations of state around the example's
    crystal and its elements' crystals at their DFT volumes, as a committee result
    reports its spread (:func:`~labweave.drivers.atomistic.chgnet_models.member_fits`);
    the error is that of the mean of the members that did not see it against DFT,
    the spread the standard deviation of all members.
    """
    if len(members) < 2:
        return Calibration(None, None, 0)
    references = dft_references(examples)
    element_e0: dict[str, np.ndarray] = {}
    formation_errors, formation_spreads, bulk_errors, bulk_spreads = [], [], [], []
    used = 0
    for i, example in enumerate(examples):
        outside = [k for k, bag in enumerate(in_bag) if i not in bag]
        if not outside:
            continue
        crystal = example_crystal(example)
        symbols = crystal.get_chemical_symbols()
        try:
            fits = member_fits(members, crystal)
            for symbol in set(symbols) - set(element_e0):
                element_e0[symbol] = np.array([f.energy for f in member_fits(members, reference_crystal(
                    references[symbol]))])
        except ValueError as exc:  # a member's E(V) without a minimum: no figure for this example
            log.warning("calibration: example %d skipped: %s", i, exc)
            continue
        used += 1
        own = {r.element: r.energy_per_atom for r in example.references}
        formation = np.array([f.energy for f in fits]) - np.mean([element_e0[s] for s in symbols], axis=0)
        bulk = np.array([f.bulk_modulus for f in fits])
        formation_errors.append(abs(formation[outside].mean() - (example.energy_per_atom
                                                                 - np.mean([own[s] for s in symbols]))))
        formation_spreads.append(float(formation.std(ddof=1)))
        bulk_errors.append(abs(bulk[outside].mean() - example.bulk_modulus))
        bulk_spreads.append(float(bulk.std(ddof=1)))
    return Calibration(spread_scale(formation_errors, formation_spreads), spread_scale(bulk_errors, bulk_spreads),
                       used)


# ----------------------------------------------------------------------------- fine-tuning
def fine_tune(params: MlipFineTuningParameters, registry: ModelRegistry) -> MlipFineTuningResult:
    """Fine-tune a committee from the pretrained CHGNet on DFT results and store it.

    Runs on the calling thread with the process's torch threads (the tenant sets them once,
    ``labweave --threads``); seeded: the same examples and settings on the same threads give
    the same weights, hence the same version.

    Args:
        params: validated parameters.
        registry: where the committee is stored.

    Returns:
        Its version, the shifts, the errors on the training cells before and after, and the cost.

    Raises:
        ParameterError: examples of mixed DFT settings, or an element without its reference.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    base = chgnet_model()
    shifts = element_shifts(dft_references(params.examples))  # reported: each element's first example's
    cells = training_cells(params.examples, params.eos_points)
    stresses = stress_targets(base, cells) if params.stress_weight > 0 else None
    members, records, bags = [], [], []
    for k in range(params.committee):
        member, record, bag = train_member(base, cells, params, params.seed + k, bootstrap=params.committee > 1,
                                           stresses=stresses)
        members.append(member)
        records.append(record)
        bags.append(bag)
    calibration = calibrate(members, bags, params.examples)
    targets = np.array([c.energy_per_atom for c in cells])
    crystals = [c.atoms for c in cells]
    before = float(np.mean(np.abs(predict_energies([base], crystals)[0] - targets)))
    after = float(np.mean(np.abs(predict_energies(members, crystals).mean(axis=0) - targets)))
    training = {
        "base_model": f"CHGNet {BASE_MODEL}",
        "examples": [{"request_id": e.request_id, "result_id": e.result_id,
                      "formula": example_crystal(e).get_chemical_formula()} for e in params.examples],
        "settings": params.model_dump(mode="json", exclude={"examples"}),
        "element_shifts": shifts,
        "committee": params.committee,
        "training_cells": len(cells),
    }
    version = registry.save(members, training | {
        "members": [r.model_dump(mode="json") for r in records],
        "mae_before": before, "mae_after": after,
        "energy_std_scale": calibration.energy_std_scale,
        "bulk_modulus_std_scale": calibration.bulk_modulus_std_scale,
        "calibration_examples": calibration.examples,
        "cost_cpu_seconds": time.process_time() - cpu,
    })
    log.info("fine-tuned CHGNet %s on %d examples (%d cells): MAE %.1f -> %.1f meV/atom", version,
             len(params.examples), len(cells), 1000 * before, 1000 * after)
    return MlipFineTuningResult(
        method=METHOD, model=version, base_model=f"CHGNet {BASE_MODEL}", examples=len(params.examples),
        training_cells=len(cells), epochs=params.epochs, committee=params.committee, element_shifts=shifts,
        mae_before=before, mae_after=after, members=records,
        energy_std_scale=calibration.energy_std_scale, bulk_modulus_std_scale=calibration.bulk_modulus_std_scale,
        calibration_examples=calibration.examples,
        cost_cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - wall,
    )
