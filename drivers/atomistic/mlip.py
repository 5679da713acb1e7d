"""CHGNet: the lab's cheap machine-learned interatomic potential.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) is a graph neural
network trained on the Materials Project trajectory data set (PBE/PBE+U);
its pretrained weights ship inside the ``chgnet`` wheel, so nothing is
downloaded at run time. The model is loaded once per process and shared by
every calculator: lazily on the first calculation here, or, on a Dask cluster,
by the worker plugin when the worker joins (:meth:`ChgnetBackend.warmups`).
On a cluster the calculations prefer workers started with ``--resources GPU=1``
(where there are some) and run on CUDA where torch sees a GPU.

The lab's DFT results teach it: a ``mlip_fine_tuning`` request fine-tunes a
committee of CHGNets on them (:mod:`labweave.drivers.atomistic.mlip_training`),
stored under a version in the tenant's model folder (``model_dir``, by default
``mlip-models`` in its state directory; on a Dask cluster a folder every worker
reads). A ``bulk_properties`` request naming that version (``model``) is
computed by the committee's mean, with the standard deviations of the members'
own equations of state at the committee's relaxed crystal as its uncertainty
(:func:`~labweave.drivers.atomistic.chgnet_models.member_fits`); the result
names the model. Those standard deviations are the members' spreads times the
factors fitted on the committee's out-of-bag examples when it was trained
(``energy_std_scale``, ``bulk_modulus_std_scale``, named in the result). A
fine-tuning runs to its end once started (CHGNet's trainer has no stop between
steps): a safe stop takes effect after it.

Elements: CHGNet covers Z = 1..94, but a formation energy needs each element's
ground state; elements whose reference state in ASE is a crystal (fcc, bcc,
hcp, diamond) or a diatomic molecule (O2, N2, H2, F2, Cl2: oxides such as
the perovskites) are accepted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import ClassVar, Self, cast

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, reference_states
from pydantic import Field

from labweave.drivers.atomistic.backend import (
    AtomisticBackend,
    CalculatorFactory,
    _never,
    compute_bulk_properties,
    compute_reference,
    resident,
)
from labweave.drivers.atomistic.chgnet_models import (
    BASE_MODEL,
    Committee,
    ModelRegistry,
    UnknownModel,
    chgnet_model,
    device,
    member_fits,
)
from labweave.drivers.base import BackendContext, BackendSettings, InstrumentFault, ParameterError
from labweave.drivers.compute import Computation
from labweave.schemas.atomistic import (
    ELEMENTS,
    BulkPropertiesParameters,
    ChgnetBulkPropertiesResult,
    ElementReference,
    MlipFineTuningParameters,
    MlipFineTuningResult,
)

__all__ = ["ChgnetBackend", "ChgnetSettings", "chgnet_elements", "chgnet_model", "device"]

log = logging.getLogger(__name__)

#: Reference states usable as elemental references: crystals, and diatomic molecules in a box.
SOLID_REFERENCES = frozenset({"fcc", "bcc", "hcp", "diamond", "diatom"})
#: Heaviest element in CHGNet's training data.
CHGNET_MAX_Z = 94
#: The model folder under the tenant's state directory when none is given.
MODEL_FOLDER = "mlip-models"


def chgnet_elements() -> frozenset[str]:
    """Elements CHGNet covers that have a crystalline ground-state reference."""
    out = set()
    for symbol in ELEMENTS:
        z = atomic_numbers[symbol]
        state = reference_states[z] if z < len(reference_states) else None
        if z <= CHGNET_MAX_Z and state and state.get("symmetry") in SOLID_REFERENCES:
            out.add(symbol)
    return frozenset(out)


class ChgnetSettings(BackendSettings):
    """Options of the CHGNet backend (``--backend-option model_dir=PATH``)."""

    model_dir: Path | None = Field(
        default=None, description="Folder of the fine-tuned models (default: mlip-models in the state directory)."
    )


#: A committee's elemental references in this process: (model folder, version, element) -> the
#: committee's reference, its relaxed crystal, and each member's own E0 there.
_committee_references: dict[tuple[Path, str, str], tuple[ElementReference, list[float]]] = {}
_committee_lock = threading.Lock()


class ChgnetBackend(AtomisticBackend):
    """Bulk properties by CHGNet (CPU): pretrained, or a fine-tuned committee; and its fine-tuning."""

    method: ClassVar[str] = "chgnet"
    #: An MLIP's forces carry the error of its fit (tens of meV/angstrom for CHGNet): converging
    #: tighter than 10 meV/angstrom is chasing that error.
    force_floor: ClassVar[str] = "10 meV / angstrom"
    resources: ClassVar[dict[str, float]] = {"GPU": 1}
    settings_model: ClassVar[type[BackendSettings]] = ChgnetSettings

    def __init__(self, model_dir: Path = Path(MODEL_FOLDER)) -> None:
        super().__init__()
        self._elements = chgnet_elements()
        self.model_dir = Path(model_dir)

    @classmethod
    def from_settings(cls, settings: BackendSettings, context: BackendContext) -> Self:
        assert isinstance(settings, ChgnetSettings)
        return cls(model_dir=settings.model_dir or context.state_dir / MODEL_FOLDER)

    def identity(self) -> Hashable:
        return (super().identity(), str(self.model_dir))

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.model_dir)

    def supported_elements(self) -> frozenset[str]:
        return self._elements

    def calculator(self) -> Calculator:
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model=chgnet_model(), use_device=device())

    def warmups(self) -> tuple[Callable[[], object], ...]:
        return (chgnet_model,)

    # -- policy --------------------------------------------------------
    def committee(self, version: str) -> Committee:
        """The fine-tuned committee of a version (read once per process).

        Raises:
            ParameterError: naming ``model``: no such version in the model folder.
        """
        try:
            return self.registry.load(version)
        except UnknownModel as exc:
            raise ParameterError("model", str(exc)) from None

    def check_fine_tuning(self, params: MlipFineTuningParameters) -> None:
        """Refuse examples with elements CHGNet cannot handle, naming the example's field."""
        for i, example in enumerate(params.examples):
            self.check(BulkPropertiesParameters.model_validate(
                example.model_dump(include={"structure", "alloy", "perovskite"}, exclude_none=True)),
                prefix=f"examples.{i}.")

    def check(self, params: BulkPropertiesParameters, prefix: str = "") -> None:
        try:
            super().check(params)
        except ParameterError as exc:
            raise ParameterError(prefix + exc.field, exc.message) from None
        version = getattr(params, "model", None)
        if version is not None:
            try:
                self.registry.record(version)
            except UnknownModel as exc:
                raise ParameterError("model", str(exc)) from None

    # -- calculation ---------------------------------------------------
    def compute(self, params: BulkPropertiesParameters,
                check_stop: Callable[[], None] | None = None) -> ChgnetBulkPropertiesResult:
        """The bulk properties by the pretrained model, or by the committee ``params.model`` names."""
        version = getattr(params, "model", None)
        if version is None:
            plain = super().compute(params, check_stop)
            return ChgnetBulkPropertiesResult(**plain.model_dump(), model=None, base_model=f"CHGNet {BASE_MODEL}",
                                              committee=1)
        return self.compute_with_committee(params, self.committee(version), check_stop or _never)

    def compute_with_committee(self, params: BulkPropertiesParameters, committee: Committee,
                               check_stop: Callable[[], None]) -> ChgnetBulkPropertiesResult:
        """The lab's bulk-properties procedure by the committee's mean, and the members' spread."""
        crystals: list[Atoms] = []

        def calculator(atoms: Atoms) -> Calculator:
            crystals.append(atoms)  # relaxed in place and left at the fitted V0
            return committee.calculator()

        result = compute_bulk_properties(params, self.method, calculator,
                                         lambda symbol: self.committee_reference(committee, symbol, check_stop)[0],
                                         self.optimizer, check_stop)
        own = _fits(committee, crystals[0])
        symbols = crystals[0].get_chemical_symbols()
        references = {s: self.committee_reference(committee, s, check_stop)[1] for s in set(symbols)}
        formation = [own[k][0] - float(np.mean([references[s][k] for s in symbols])) for k in range(len(own))]
        ddof = 1 if len(own) > 1 else 0
        # the spreads scaled by the factors fitted on the committee's out-of-bag examples (older records: none)
        energy_scale = committee.record.get("energy_std_scale")
        bulk_scale = committee.record.get("bulk_modulus_std_scale")
        e, b = (energy_scale or 1.0), (bulk_scale or 1.0)
        return ChgnetBulkPropertiesResult(
            **result.model_dump(), model=committee.version, base_model=str(committee.record["base_model"]),
            committee=len(committee.members),
            energy_per_atom_std=e * float(np.std([e0 for e0, _ in own], ddof=ddof)) if ddof else None,
            formation_energy_per_atom_std=e * float(np.std(formation, ddof=ddof)) if ddof else None,
            bulk_modulus_std=b * float(np.std([b0 for _, b0 in own], ddof=ddof)) if ddof else None,
            energy_std_scale=energy_scale if ddof else None, bulk_modulus_std_scale=bulk_scale if ddof else None,
        )

    def committee_reference(self, committee: Committee, symbol: str,
                            check_stop: Callable[[], None]) -> tuple[ElementReference, list[float]]:
        """An element's reference by the committee's mean, and each member's E0 there (cached per process)."""
        key = (self.model_dir.resolve(), committee.version, symbol)
        with _committee_lock:
            cached = _committee_references.get(key)
            if cached is not None:
                return cached
            crystals: list[Atoms] = []

            def calculator(atoms: Atoms) -> Calculator:
                crystals.append(atoms)
                return committee.calculator()

            factory: CalculatorFactory = calculator
            reference = compute_reference(symbol, self.method, factory, check_stop)
            members = [e for e, _ in _fits(committee, crystals[0])]
            _committee_references[key] = (reference, members)
            return reference, members

    async def fine_tune(self, params: MlipFineTuningParameters) -> MlipFineTuningResult:
        """Fine-tune a committee on DFT results and store it (see :mod:`.mlip_training`)."""
        self.check_fine_tuning(params)
        computation = Computation(fine_tuning_task, (self, params), name="chgnet-fine-tuning",
                                  resources=dict(self.resources), warmups=self.warmups(),
                                  local={"running": self._running})
        result: MlipFineTuningResult = await self.executor.run(computation, self._stopped)
        return result


def _fits(committee: Committee, atoms: Atoms) -> list[tuple[float, float]]:
    """Each member's (E0, B0) around the crystal."""
    try:
        return [(f.energy, f.bulk_modulus) for f in member_fits(committee.members, atoms)]
    except ValueError as exc:
        raise InstrumentFault(f"chgnet model {committee.version}: a member's equation of state failed: {exc}",
                              retryable=False) from exc


def fine_tuning_task(backend: ChgnetBackend, params: MlipFineTuningParameters,
                     running: Callable[[int], None] | None = None) -> MlipFineTuningResult:
    """A fine-tuning as an executor runs it: here, or on a Dask worker (which must see the model folder)."""
    from labweave.drivers.atomistic.mlip_training import fine_tune

    if running is not None:
        running(1)
    try:
        return fine_tune(params, cast(ChgnetBackend, resident(backend)).registry)
    finally:
        if running is not None:
            running(-1)
