"""The optimizer's side of an MLIP that learns: when to fine-tune, on what, and what the model's results say.

A multi-fidelity campaign over crystals screens with the MLIP (``chgnet``) and
confirms with DFT (``dft``). As DFT results arrive the MLIP tenant can be asked
to fine-tune itself on them (quantity ``mlip_fine_tuning``); its later
``bulk_properties`` requests name the fine-tuned model (``model``), and each of
their results carries the model's version and its committee's standard
deviations. This module turns the campaign's records into those requests and
reads those results, on the wire's JSON only (the optimizer imports no driver):

- :func:`training_example`: one DFT request and its result as a fine-tuning example;
- :class:`FineTuningPlan`: a fine-tuning after every ``every`` new DFT results,
  and the request that asks for it;
- :func:`with_model`: a CHGNet request's parameters naming the model;
- :func:`observation_noise`: the variance a CHGNet result's committee puts on
  its value (the low-fidelity observation noise of a co-kriging model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labweave.schemas.atomistic import MLIP_MAX_EXAMPLES, MlipFineTuningParameters, MlipTrainingExample

#: The quantity that fine-tunes the MLIP, and the method that serves it.
FINE_TUNING = "mlip_fine_tuning"
MLIP_METHOD = "chgnet"
#: What a training example takes from the DFT request and from its result.
CRYSTAL_FIELDS = ("structure", "alloy", "perovskite")
RESULT_FIELDS = ("energy_per_atom", "volume_per_atom", "bulk_modulus", "bulk_modulus_derivative", "references")
#: The committee standard deviation of each value a CHGNet result reports.
STD_OF = {
    "formation_energy_per_atom": "formation_energy_per_atom_std",
    "energy_per_atom": "energy_per_atom_std",
    "bulk_modulus": "bulk_modulus_std",
}


def training_example(parameters: Mapping[str, Any], result: Mapping[str, Any], request_id: str | None = None,
                     result_id: str | None = None) -> dict[str, Any]:
    """One DFT result as a fine-tuning example (validated; the wire's JSON).

    Args:
        parameters: the DFT request's parameters (its crystal: ``alloy``, ``structure`` or ``perovskite``).
        result: the DFT result's data (its equation of state and elemental references).
        request_id: the request, recorded in the fine-tuned model's provenance.
        result_id: the result, likewise.

    Raises:
        pydantic.ValidationError: the pair is no small-cell DFT result.
    """
    example = {k: parameters[k] for k in CRYSTAL_FIELDS if parameters.get(k) is not None}
    example |= {k: result[k] for k in RESULT_FIELDS}
    example |= {"request_id": request_id, "result_id": result_id}
    return MlipTrainingExample.model_validate(example).model_dump(mode="json", exclude_none=True)


class FineTuningPlan(BaseModel):
    """When a campaign asks the MLIP to learn, and how.

    A fine-tuning is due once ``every`` DFT results have arrived since the last
    one was asked for (the first after ``every`` results); it trains on every
    DFT result so far, newest last, the newest :data:`~labweave.schemas.atomistic.MLIP_MAX_EXAMPLES` of them.
    """

    model_config = ConfigDict(extra="forbid")

    every: int = Field(default=5, ge=1, description="New DFT results between two fine-tunings.")
    epochs: int = Field(default=10, ge=1, le=50)
    committee: int = Field(default=3, ge=1, le=5)
    seed: int = Field(default=0, ge=0)

    def due(self, dft_results: int, trained_on: int) -> bool:
        """Whether to fine-tune now, with ``dft_results`` in hand and the last model trained on ``trained_on``."""
        return dft_results - trained_on >= self.every

    def request(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The parameters of the fine-tuning request (validated) on ``examples`` (from :func:`training_example`)."""
        params = MlipFineTuningParameters.model_validate({
            "examples": list(examples)[-MLIP_MAX_EXAMPLES:], "epochs": self.epochs, "committee": self.committee,
            "seed": self.seed})
        return params.model_dump(mode="json", exclude_none=True)


def with_model(parameters: Mapping[str, Any], model: str | None) -> dict[str, Any]:
    """A CHGNet request's parameters naming the fine-tuned ``model`` (None: the pretrained one)."""
    out = {k: v for k, v in parameters.items() if k != "model"}
    if model is not None:
        out["model"] = model
    return out


def observation_noise(result: Mapping[str, Any], value: str = "formation_energy_per_atom") -> float | None:
    """The variance the committee puts on one value of a CHGNet result (None: one model, no committee).

    Raises:
        KeyError: a value whose uncertainty the result does not report.
    """
    std = result.get(STD_OF[value])
    return None if std is None else float(std) ** 2
