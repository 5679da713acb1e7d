"""CHGNet models of the lab: the pretrained one, and fine-tuned committees stored by version.

The pretrained CHGNet (weights in the ``chgnet`` wheel, nothing downloaded) is
loaded once per process (:func:`chgnet_model`). A fine-tuned committee
(:mod:`labweave.drivers.atomistic.mlip_training` makes them) is stored under its
version, the first 12 hex digits of the SHA-256 of its weights and training
record, in a folder of its own, ``<root>/<version>/``: one weights file per
member (CHGNet's own ``as_dict``, read back with ``weights_only``) and
``model.json``, the record (base model, the examples' ids and compositions,
settings, per-member errors, CPU seconds). :meth:`ModelRegistry.load` reads a
version once per process and keeps it; a committee computes as the mean of its
members (:class:`CommitteeCalculator`), and the spread of the members' own
equations of state is its uncertainty (:func:`member_fits`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from labweave.drivers.atomistic.eos import EOS_STRAINS, EosFit, fit_birch_murnaghan
from labweave.schemas.atomistic import MODEL_VERSION_PATTERN

if TYPE_CHECKING:
    from chgnet.model import CHGNet

log = logging.getLogger(__name__)

#: The pretrained CHGNet the lab runs and fine-tunes (weights in the wheel).
BASE_MODEL = "0.3.0"
#: Name of the record file of a stored model.
RECORD = "model.json"

_model: CHGNet | None = None
_model_lock = threading.Lock()


def chgnet_model() -> CHGNet:
    """The pretrained CHGNet model, loaded from the wheel on first use.

    Returns:
        The shared model instance.
    """
    global _model
    with _model_lock:
        if _model is None:
            from chgnet.model import CHGNet

            log.info("loading the pretrained CHGNet model from the wheel")
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its size on construction
                _model = CHGNet.load(model_name=BASE_MODEL, verbose=False)
        return _model



def device() -> str:
    """``cuda`` where torch sees a GPU (a GPU worker of a cluster), else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def predict_energies(models: Sequence[CHGNet], atoms: Sequence[Atoms]) -> np.ndarray:
    """Energies per atom (eV) of each crystal by each model: shape (models, crystals)."""
    out = np.empty((len(models), len(atoms)))
    for m, model in enumerate(models):
        calculator = chgnet_calculator(model)
        for a, crystal in enumerate(atoms):
            calculator.calculate(crystal, ["energy"], all_changes)
            out[m, a] = float(calculator.results["energy"]) / len(crystal)
    return out


@dataclass
class Committee:
    """A fine-tuned committee: its members and its record."""

    version: str
    members: list[CHGNet]
    record: dict[str, Any]

    def calculator(self) -> CommitteeCalculator:
        return CommitteeCalculator(self.members)


class CommitteeCalculator(Calculator):
    """The committee's mean energy, forces and stress behind ASE's calculator interface."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, members: Sequence[CHGNet]) -> None:
        super().__init__()
        self.calculators = [chgnet_calculator(m) for m in members]

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        outputs = []
        for calculator in self.calculators:
            calculator.calculate(self.atoms, ["energy", "forces", "stress"], all_changes)
            outputs.append(dict(calculator.results))
        for key in ("energy", "forces", "stress"):
            self.results[key] = np.mean([np.asarray(o[key]) for o in outputs], axis=0)
        self.results["energy"] = float(self.results["energy"])
        self.results["free_energy"] = self.results["energy"]


class UnknownModel(LookupError):
    """No stored model of that version."""


_loaded: dict[tuple[Path, str], Committee] = {}
_loaded_lock = threading.Lock()


class ModelRegistry:
    """Fine-tuned committees on disk, one folder per version.

    Args:
        root: the folder of the versions (created on the first save).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """The stored versions, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if re.match(MODEL_VERSION_PATTERN, p.name)
                      and (p / RECORD).is_file())

    def save(self, members: Sequence[CHGNet], record: dict[str, Any]) -> str:
        """Store a committee; its version is the hash of its weights and record (less its cost): the same
        content has the same version.

        Returns:
            The version.
        """
        import torch

        content = {k: v for k, v in record.items() if not k.startswith("cost_")}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
        for member in members:
            for name, tensor in sorted(member.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().numpy().tobytes())
        version = digest.hexdigest()[:12]
        folder = self.root / version
        if (folder / RECORD).is_file():
            return version
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.root))
        for k, member in enumerate(members):
            torch.save(member.as_dict(), staging / f"member-{k}.pt")
        (staging / RECORD).write_text(json.dumps({"version": version, **record}, indent=1, sort_keys=True),
                                      encoding="utf-8")
        try:
            os.replace(staging, folder)  # atomic: a reader sees the whole model or none
        except OSError:  # stored meanwhile by another process
            for path in staging.iterdir():
                path.unlink()
            staging.rmdir()
        return version

    def record(self, version: str) -> dict[str, Any]:
        """The stored record of a version.

        Raises:
            UnknownModel: no such version here.
        """
        path = self._folder(version) / RECORD
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def load(self, version: str) -> Committee:
        """The committee of a version, read once per process and kept.

        Raises:
            UnknownModel: no such version here.
        """
        import torch
        from chgnet.model import CHGNet

        folder = self._folder(version)
        key = (folder.resolve(), version)
        with _loaded_lock:
            if key not in _loaded:
                record = self.record(version)
                members = []
                for k in range(int(record["committee"])):
                    state = torch.load(folder / f"member-{k}.pt", map_location="cpu", weights_only=True)
                    with contextlib.redirect_stdout(io.StringIO()):
                        member = CHGNet.from_dict(state)
                    member.eval()
                    members.append(member)
                _loaded[key] = Committee(version, members, record)
                log.info("loaded fine-tuned CHGNet %s (%d members)", version, len(members))
            return _loaded[key]

    def _folder(self, version: str) -> Path:
        if not re.match(MODEL_VERSION_PATTERN, version):
            raise UnknownModel(f"{version!r} is not a model version (12 hex digits)")
        folder = self.root / version
        if not (folder / RECORD).is_file():
            known = self.versions()
            raise UnknownModel(f"no fine-tuned model {version} (stored: {', '.join(known) or 'none'})")
        return folder


def chgnet_calculator(model: CHGNet) -> Calculator:
    """CHGNet's ASE calculator of a model, on the CPU (quietly: it prints the device it runs on)."""
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNetCalculator(model=model, use_device="cpu")


def member_fits(members: Sequence[CHGNet], atoms: Atoms) -> list[EosFit]:
    """Each member's own equation of state around a crystal, positions kept (no relaxation).

    The energies of the lab's EOS scan (linear strains -3 % ... +3 %) by each
    member, fitted with the same Birch-Murnaghan form: their spread is the
    committee's uncertainty of E0, B0 and (with the elements') the formation energy.

    Raises:
        ValueError: a member's energies have no minimum near the crystal's volume.
    """
    n = len(atoms)
    cell = atoms.get_cell().copy()
    crystals = []
    for strain in EOS_STRAINS:
        strained = atoms.copy()
        strained.set_cell(cell * (1.0 + strain), scale_atoms=True)
        crystals.append(strained)
    volumes = np.array([c.get_volume() / n for c in crystals])
    energies = predict_energies(members, crystals)
    return [fit_birch_murnaghan(volumes, energies[k]) for k in range(len(members))]
