"""The learning MLIP of the alloy study: CHGNet fine-tuned on the DFT results a search has bought.

In a campaign with ``[mlip_learning]`` the optimizer daemon asks the CHGNet
tenant to fine-tune itself after every ``every`` new DFT results
(:class:`labweave.optimizer.mlip_learning.FineTuningPlan`), its later screens
name the fine-tuned committee, and screens by a superseded model are left out
of the strategy's observations (still charged). The study
(``python -m benchmarks.alloy_study --learning``) models this faithfully but
affordably:

- when the campaign's plan says a fine-tuning is due, it is the driver's own
  :func:`~labweave.drivers.atomistic.mlip_training.fine_tune` with the plan's
  request (epochs, committee, EOS points, seed) on the DFT table's results of
  the cells the search has confirmed, each built into an example as
  :func:`benchmarks.mlip_finetune.example` builds it; its measured CPU seconds
  are charged to the search's budget;
- the fine-tuned committee then predicts the mixing energy of every cell of
  the pool at once, by single points at the DFT-relaxed geometries (the cell at
  its DFT volume, each element's reference crystal at its DFT volume): each
  member's mixing energy, their mean the value and their variance the
  observation's own noise. A screen after the fine-tuning reads that value and
  is charged its recorded CHGNet CPU seconds times the committee's size (each
  member computes the cell). The single points stand in for the relaxations the
  tenant would run: the ordered cells' atoms sit on symmetry sites and only the
  volume relaxes, so the energy at the DFT volume differs from the committee's
  own minimum by second order in the volume mismatch;
- what one fine-tuning on a set of cells predicts is stored on disk
  (``--learning-cache``), keyed by the sorted training cells and the settings,
  with its CPU seconds: a rerun, or another seed that confirmed the same
  cells, charges the stored seconds without training again.

The examples are given in the order of their composition keys, so that the
training set and the plan alone decide the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labweave.optimizer.mlip_learning import FineTuningPlan

logger = logging.getLogger(__name__)

#: Where the fine-tuned predictions are kept between runs (ignored by git).
DEFAULT_CACHE = Path(__file__).resolve().parent / "data" / "cache" / "alloy_learning"
#: A fine-tuning after this many new DFT results (the campaign's default).
DEFAULT_EVERY = FineTuningPlan().every


@dataclass(frozen=True)
class Prediction:
    """What one fine-tuned committee says of the pool, and what it cost."""

    model: str
    #: Mixing energy (eV/atom) per composition key: the members' mean.
    mean: dict[str, float]
    #: The members' variance per composition key (eV^2/atom^2).
    variance: dict[str, float]
    fine_tuning_cpu_seconds: float
    prediction_cpu_seconds: float
    committee: int


class LearningMlip:
    """Fine-tunes CHGNet on a search's DFT results and predicts the pool with it, cached on disk.

    Args:
        entries: the DFT table's entries of the pool, by composition key.
        cache: the folder of stored predictions.
        plan: when to fine-tune and how (a campaign's ``[mlip_learning]``; its defaults if ``None``).

    Raises:
        pydantic.ValidationError: naming the plan's faulty field.
    """

    def __init__(
        self,
        entries: Mapping[str, Mapping[str, Any]],
        cache: Path = DEFAULT_CACHE,
        plan: FineTuningPlan | Mapping[str, Any] | None = None,
    ) -> None:
        self.entries = dict(entries)
        self.cache = Path(cache)
        self.plan = FineTuningPlan.model_validate(plan or {})

    @property
    def every(self) -> int:
        return self.plan.every

    def key(self, trained_on: Sequence[str]) -> str:
        """The cache key of a training set: a hash of its sorted cells, the plan and the pool."""
        content = {"cells": sorted(set(trained_on)), "plan": self.plan.model_dump(mode="json", exclude={"every"}),
                   "pool": sorted(self.entries)}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def predict(self, trained_on: Sequence[str]) -> Prediction:
        """The committee fine-tuned on these cells' DFT results and its pool predictions (stored or computed).

        Raises:
            KeyError: naming a training cell missing from the pool.
        """
        missing = sorted(set(trained_on) - set(self.entries))
        if missing:
            raise KeyError(f"trained_on: {missing} not in the pool")
        path = self.cache / f"{self.key(trained_on)}.json"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            return Prediction(**stored["prediction"])
        prediction = self._compute(sorted(set(trained_on)))
        self.cache.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps({"trained_on": sorted(set(trained_on)), "prediction": prediction.__dict__}),
                           encoding="utf-8")
        staging.replace(path)
        return prediction

    def _compute(self, trained_on: list[str]) -> Prediction:
        from labweave.drivers.atomistic.chgnet_models import ModelRegistry
        from labweave.drivers.atomistic.mlip_training import fine_tune
        from labweave.schemas.atomistic import MlipFineTuningParameters

        from benchmarks.mlip_finetune import example

        params = MlipFineTuningParameters.model_validate(self.plan.request([example(self.entries[k]) for k in trained_on]))
        with tempfile.TemporaryDirectory(prefix="alloy-learning-") as folder:
            registry = ModelRegistry(Path(folder))
            cpu = time.process_time()
            tuned = fine_tune(params, registry)
            training = time.process_time() - cpu
            members = registry.load(tuned.model).members
            cpu = time.process_time()
            energies = pool_mixing_energies(members, self.entries)
            predicting = time.process_time() - cpu
        logger.info("fine-tuned on %d cells: %.0f CPU s; the pool predicted in %.0f CPU s",
                    len(trained_on), training, predicting)
        keys = list(self.entries)
        return Prediction(
            model=tuned.model,
            mean={k: float(energies[:, i].mean()) for i, k in enumerate(keys)},
            variance={k: float(energies[:, i].var()) for i, k in enumerate(keys)},
            fine_tuning_cpu_seconds=training,
            prediction_cpu_seconds=predicting,
            committee=self.plan.committee,
        )


def pool_mixing_energies(members: Sequence[Any], entries: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
    """Each member's mixing energy (eV/atom) of every entry's cell, ``(members, entries)``.

    Single points: the cell at its DFT volume per atom, each element's reference
    crystal at the volume of the entry's DFT reference; the mixing energy is the
    cell's energy per atom less the fractions' weighted reference energies.
    """
    from labweave.drivers.atomistic.chgnet_models import predict_energies
    from labweave.drivers.atomistic.mlip_training import example_crystal, reference_crystal
    from labweave.schemas.atomistic import ElementReference, MlipTrainingExample

    from benchmarks.mlip_finetune import example

    crystals, where = [], {}
    cells = []
    for key, entry in entries.items():
        data = MlipTrainingExample.model_validate(example(entry))
        cells.append(len(crystals))
        crystals.append(example_crystal(data))
        for reference in data.references:
            ref_key = (reference.element, round(reference.volume_per_atom, 6))
            if ref_key not in where:
                where[ref_key] = len(crystals)
                crystals.append(reference_crystal(ElementReference.model_validate(reference.model_dump())))
    energies = predict_energies(members, crystals)
    out = np.empty((len(members), len(entries)))
    for i, entry in enumerate(entries.values()):
        mixing = energies[:, cells[i]].copy()
        for reference in entry["dft"]["references"]:
            fraction = float(entry["composition"].get(reference["element"], 0.0))
            mixing -= fraction * energies[:, where[(reference["element"], round(reference["volume_per_atom"], 6))]]
        out[:, i] = mixing
    return out
