"""CHGNet: the lab's cheap machine-learned interatomic potential.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) is a graph neural
network trained on the Materials Project trajectory data set (PBE/PBE+U);
its pretrained weights ship inside the ``chgnet`` wheel, so nothing is
downloaded at run time. The model is loaded once per process and shared by
every calculator: lazily on the first calculation here, or, on a Dask cluster,
by the worker plugin when the worker joins (:meth:`ChgnetBackend.warmups`).
On a cluster the calculations prefer workers started with ``--resources GPU=1``
(where there are some) and run on CUDA where torch sees a GPU.

Elements: CHGNet covers Z = 1..94, but a formation energy needs each element's
ground state; elements whose reference state in ASE is a crystal (fcc, bcc,
hcp, diamond) or a diatomic molecule (O2, N2, H2, F2, Cl2: oxides such as
the perovskites) are accepted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, reference_states

from labweave.drivers.atomistic.backend import AtomisticBackend
from labweave.schemas.atomistic import ELEMENTS

if TYPE_CHECKING:
    from chgnet.model import CHGNet

log = logging.getLogger(__name__)

#: Reference states usable as elemental references: crystals, and diatomic molecules in a box.
SOLID_REFERENCES = frozenset({"fcc", "bcc", "hcp", "diamond", "diatom"})
#: The pretrained CHGNet the lab runs and fine-tunes (weights in the wheel).
BASE_MODEL = "0.3.0"
#: Heaviest element in CHGNet's training data.
CHGNET_MAX_Z = 94

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
            _model = CHGNet.load(model_name=BASE_MODEL, verbose=False)
        return _model


def chgnet_elements() -> frozenset[str]:
    """Elements CHGNet covers that have a crystalline ground-state reference."""
    out = set()
    for symbol in ELEMENTS:
        z = atomic_numbers[symbol]
        state = reference_states[z] if z < len(reference_states) else None
        if z <= CHGNET_MAX_Z and state and state.get("symmetry") in SOLID_REFERENCES:
            out.add(symbol)
    return frozenset(out)


class ChgnetBackend(AtomisticBackend):
    """Bulk properties by the pretrained CHGNet potential (CPU)."""

    method: ClassVar[str] = "chgnet"
    #: An MLIP's forces carry the error of its fit (tens of meV/angstrom for CHGNet): converging
    #: tighter than 10 meV/angstrom is chasing that error.
    force_floor: ClassVar[str] = "10 meV / angstrom"
    resources: ClassVar[dict[str, float]] = {"GPU": 1}

    def __init__(self) -> None:
        super().__init__()
        self._elements = chgnet_elements()

    def supported_elements(self) -> frozenset[str]:
        return self._elements

    def calculator(self) -> Calculator:
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model=chgnet_model(), use_device=device())

    def warmups(self) -> tuple[Callable[[], object], ...]:
        return (chgnet_model,)


def device() -> str:
    """``cuda`` where torch sees a GPU (a GPU worker of a cluster), else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
