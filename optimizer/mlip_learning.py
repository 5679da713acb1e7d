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
  its value (the low-fidelity observation noise of a co-kriging model);
- :class:`CampaignMlip`: what a campaign's requests and results say of its
  MLIP (the fine-tunings asked for, the current model, what is due), read
  back from the server at every turn like everything else the optimizer
  daemon knows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from labweave.schemas.api import RequestDetail
from labweave.schemas.atomistic import (
    MLIP_MAX_EXAMPLES,
    MlipFineTuningParameters,
    MlipTrainingExample,
    PerovskitePrototype,
    SmallAlloyPrototype,
    SmallCrystalStructure,
)
from labweave.schemas.campaign import MlipLearning
from labweave.schemas.core import RequestStatus, ResultInfo

#: The quantity that fine-tunes the MLIP, and the method that serves it.
FINE_TUNING = "mlip_fine_tuning"
MLIP_METHOD = "chgnet"
#: What a training example takes from the DFT request and from its result.
CRYSTAL_FIELDS = ("structure", "alloy", "perovskite")
RESULT_FIELDS = ("energy_per_atom", "volume_per_atom", "bulk_modulus", "bulk_modulus_derivative", "references")
#: The observation value a CHGNet screen's committee variance is handed to the strategy under
#: (the multi-fidelity strategy's ``noise_value``, set by the campaign loader).
NOISE_VALUE = "mlip_variance"
#: The provenance key of a fine-tuning request: what it was asked on (``{"trained_on": n}``).
PROVENANCE_KEY = "mlip_fine_tuning"
#: The provenance key naming the model that informed a proposal (None: the pretrained one).
MODEL_KEY = "mlip_model"
#: The committee standard deviation of each value a CHGNet result reports.
STD_OF = {
    "formation_energy_per_atom": "formation_energy_per_atom_std",
    "energy_per_atom": "energy_per_atom_std",
    "bulk_modulus": "bulk_modulus_std",
}


#: How a training example checks each kind of crystal (small cells only).
_SMALL_CRYSTALS: dict[str, type[BaseModel]] = {
    "structure": SmallCrystalStructure, "alloy": SmallAlloyPrototype, "perovskite": PerovskitePrototype}


def check_small_cell(parameters: Mapping[str, Any]) -> None:
    """Check that a request's crystal is small enough to be a training example.

    Raises:
        ValueError: naming the crystal field and what is wrong with it.
    """
    for field, model in _SMALL_CRYSTALS.items():
        if parameters.get(field) is not None:
            try:
                model.model_validate(parameters[field])
            except ValidationError as exc:
                raise ValueError(_first_error(exc, (field,))) from None


def _first_error(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """A validation error's first problem as ``field.path: message``."""
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in (*prefix, *error['loc']))}: {error['msg']}"


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


class FineTuningPlan(MlipLearning):
    """When a campaign asks the MLIP to learn, and how (the campaign file's ``[mlip_learning]``).

    A fine-tuning is due once ``every`` DFT results have arrived since the last
    one was asked for (the first after ``every`` results); it trains on every
    DFT result so far, newest last, the newest :data:`~labweave.schemas.atomistic.MLIP_MAX_EXAMPLES` of them.
    """

    def due(self, dft_results: int, trained_on: int) -> bool:
        """Whether to fine-tune now, with ``dft_results`` in hand and the last model trained on ``trained_on``."""
        return dft_results - trained_on >= self.every

    def request(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The parameters of the fine-tuning request (validated) on ``examples`` (from :func:`training_example`)."""
        params = MlipFineTuningParameters.model_validate({
            "examples": list(examples)[-MLIP_MAX_EXAMPLES:], "epochs": self.epochs, "committee": self.committee,
            "eos_points": self.eos_points, "seed": self.seed})
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


# ------------------------------------------------------------------ a campaign's MLIP, read back
def is_fine_tuning(request: RequestDetail) -> bool:
    """Whether a campaign's request is one of its MLIP fine-tunings (not an evaluation of a point)."""
    return request.request.quantity == FINE_TUNING


@dataclass(frozen=True)
class FineTuning:
    """One fine-tuning a campaign asked for.

    Args:
        request_uuid: its request.
        status: the request's status.
        trained_on: the target-fidelity results the campaign had when it asked (its provenance).
        model: the version of the model it made, once resolved.
        cpu_seconds: the CPU seconds its result records, once resolved.
    """

    request_uuid: str
    status: str
    trained_on: int
    model: str | None = None
    cpu_seconds: float | None = None

    @property
    def in_flight(self) -> bool:
        return self.status in (RequestStatus.PROPOSED, RequestStatus.PENDING, RequestStatus.RESERVED)


def fine_tunings(requests: Iterable[RequestDetail], live: Mapping[str, ResultInfo]) -> list[FineTuning]:
    """The fine-tunings among a campaign's requests, in the order they were asked for.

    Args:
        requests: the campaign's requests (any status, any quantity).
        live: by request, the result that stands for it (:func:`labweave.optimizer.analytics.live_results`).
    """
    out = []
    for r in sorted((r for r in requests if is_fine_tuning(r)), key=lambda r: r.ctime):
        asked = r.provenance.get(PROVENANCE_KEY)
        trained_on = asked.get("trained_on") if isinstance(asked, Mapping) else None
        data = live[r.uuid].result.data if r.status == RequestStatus.RESOLVED and r.uuid in live else {}
        model = data.get("model")
        seconds = data.get("cost_cpu_seconds")
        out.append(FineTuning(r.uuid, r.status.value,
                              int(trained_on) if isinstance(trained_on, int) else 0,
                              model if isinstance(model, str) else None,
                              float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) else None))
    return out


def current_model(asked: Sequence[FineTuning]) -> str | None:
    """The campaign's current model: the one made by the resolved fine-tuning on the most results
    (the latest asked among equals); None, the pretrained one, before any."""
    made = [(f.trained_on, i, f.model) for i, f in enumerate(asked) if f.model is not None]
    return max(made)[2] if made else None


def fine_tuning_charges(learning: MlipLearning, asked: Sequence[FineTuning]) -> tuple[float, float]:
    """``(done, in_flight)``: what the fine-tunings cost a cost budget, in its units.

    A resolved fine-tuning is charged ``learning.cost`` if the campaign names one, else the
    CPU seconds its result records (the campaign's budget is then in CPU seconds, which its
    loader checks). One in flight is charged ``learning.cost``, else the CPU seconds of the last
    one that recorded them (none before the first: its cost is not known until it has run).
    A failed or retracted one is charged nothing, as a failed evaluation is not.
    """
    done = in_flight = 0.0
    last = 0.0
    for f in asked:
        if f.status == RequestStatus.RESOLVED:
            seconds = f.cpu_seconds or 0.0
            done += learning.cost if learning.cost is not None else seconds
            last = seconds or last
        elif f.in_flight:
            in_flight += learning.cost if learning.cost is not None else last
    return done, in_flight


@dataclass(frozen=True)
class CampaignMlip:
    """What a campaign's records say of its MLIP, this turn.

    Args:
        plan: the campaign's ``[mlip_learning]``.
        target: the target fidelity's method (its results are the training examples).
        asked: the fine-tunings asked for so far (:func:`fine_tunings`).
        examples: the target-fidelity results that are training examples, in the order they arrived.
        skipped: by request, why a target-fidelity result is no training example.
    """

    plan: FineTuningPlan
    target: str
    asked: tuple[FineTuning, ...]
    examples: tuple[dict[str, Any], ...]
    skipped: dict[str, str]

    @classmethod
    def read(cls, learning: MlipLearning, target: str, requests: Sequence[RequestDetail],
             live: Mapping[str, ResultInfo]) -> CampaignMlip:
        """Read it from the campaign's requests (any status) and, by request, the result that stands for it
        (:func:`labweave.optimizer.analytics.live_results`)."""
        answered = [(live[r.uuid], r) for r in requests
                    if r.status == RequestStatus.RESOLVED and r.uuid in live and not is_fine_tuning(r)
                    and live[r.uuid].result.method == [target]]
        answered.sort(key=lambda pair: (pair[0].ctime, pair[1].ctime))
        examples, skipped = [], {}
        for info, request in answered:
            try:
                examples.append(training_example(request.request.parameters.get(target, {}), info.result.data,
                                                 request.uuid, info.uuid))
            except ValidationError as exc:
                skipped[request.uuid] = _first_error(exc)
            except KeyError as exc:
                skipped[request.uuid] = f"the result has no {exc.args[0]!r}"
        plan = FineTuningPlan.model_validate(learning.model_dump())
        return cls(plan, target, tuple(fine_tunings(requests, live)), tuple(examples), skipped)

    @property
    def model(self) -> str | None:
        """The current model's version (None: the pretrained one)."""
        return current_model(self.asked)

    @property
    def in_flight(self) -> bool:
        return any(f.in_flight for f in self.asked)

    @property
    def trained_on(self) -> int:
        """The results the latest fine-tuning asked for was given (0 before any). A failed one counts as
        asked: the next is due ``every`` results later, so a fine-tuning that fails is not asked again and again."""
        return max((f.trained_on for f in self.asked), default=0)

    def due(self) -> bool:
        """Whether to ask for a fine-tuning now: due by the plan, and none in flight."""
        return bool(self.examples) and not self.in_flight and self.plan.due(len(self.examples), self.trained_on)

    def request(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fine-tuning request's parameters and the provenance that finds it again after a restart."""
        return self.plan.request(self.examples), {PROVENANCE_KEY: {"trained_on": len(self.examples)}}

    def screen(self, data: Mapping[str, Any], value: str) -> tuple[bool, float | None]:
        """Whether the strategy learns from an MLIP screen (a ``chgnet`` result's data), and its noise variance.

        Only screens by the current model are learnt from; screens by a superseded model (the
        pretrained one included, once a fine-tuned one exists) are left out, and the strategy
        screens again, with the current model, wherever its acquisition still wants a screen.
        Why not keep them with a larger noise: the co-kriging model takes the cheap fidelity for
        one function, related to the target by a fitted scale and a smooth discrepancy; the
        screens of two models are two functions (fine-tuning moves some alloys' mixing energies
        by tens of meV/atom and others hardly: ``python -m benchmarks.mlip_finetune``), so mixed together they bias the fitted relation, and the
        committee's spread says how far the members of one model disagree, not how far two models
        do, so no variance known here would stand for the difference. A screen costs seconds
        beside a target evaluation's minutes: computing it again is cheap; it stays charged to
        the budget (the caller's ``spent_elsewhere``) and stays in the campaign's records.

        Args:
            data: the screen's result data (it names the ``model`` that computed it).
            value: the path of the objective read from it (``formation_energy_per_atom``).

        Returns:
            ``(by the current model, the committee's variance of ``value`` or None)``.
        """
        current = data.get("model") == self.model
        return current, observation_noise(data, value) if current and value in STD_OF else None

    def charges(self) -> tuple[float, float]:
        """``(done, in_flight)`` the fine-tunings cost the budget (:func:`fine_tuning_charges`)."""
        return fine_tuning_charges(self.plan, self.asked)

    def summary(self) -> dict[str, Any]:
        """For the campaign's state: the current model and every fine-tuning asked for."""
        return {"model": self.model, "target_results": len(self.examples), "every": self.plan.every,
                "fine_tunings": [{"request_uuid": f.request_uuid, "status": f.status, "trained_on": f.trained_on,
                                  "model": f.model, "cpu_seconds": f.cpu_seconds} for f in self.asked],
                "skipped": self.skipped}
