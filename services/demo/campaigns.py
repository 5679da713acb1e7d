"""Demo-sized copies of the example campaigns, each paired with a random-search baseline.

The example files in ``optimizer/campaigns/`` describe campaigns of a real lab
(tens of experiments, operator approval, long growths). The demo runs the same
campaigns, made small enough to finish in minutes on a laptop: a smaller
budget and initial design, no approval step, no early stopping (so that a
campaign and its baseline spend the same number of experiments), lighter
acquisition optimisation, and shorter experiments where the file lets the
demo fix a parameter (fewer PLD pulses, one substrate). Each campaign is run
twice against the same instruments: with its own strategy and with
``random``, under the names ``NAME`` and ``NAME-random``.

A multi-fidelity campaign (a ``fidelities`` ladder in its strategy's
settings) is budgeted in cost: the demo budget is that many evaluations at the
target fidelity, which the strategy may spend on any mix of cheap screens and
dear confirmations; its baseline evaluates candidates of the same pool, drawn
at random, at the target fidelity only, as many as the budget.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labweave.optimizer.campaign import EXAMPLES, Campaign, CampaignFileError, load_campaign
from labweave.optimizer.strategies import settings_model
from labweave.schemas.campaign import CampaignSpec

log = logging.getLogger(__name__)

#: Suffix of the baseline campaign's name.
BASELINE_SUFFIX = "-random"

#: Acquisition settings that keep a proposal to seconds on a small machine (applied where the
#: strategy has them): fewer optimiser starts, raw samples and quasi-MC samples, capped iterations.
FAST_ACQUISITION = {"num_restarts": 3, "raw_samples": 96, "mc_samples": 32, "maxiter": 60}
#: Acquisition settings for campaigns whose experiments take longer than a proposal anyway.
THOROUGH_ACQUISITION = {"num_restarts": 8, "raw_samples": 384, "mc_samples": 64, "maxiter": 120}


class CampaignUnavailable(Exception):
    """A demo campaign cannot run on this installation (its file, strategy or instrument is missing)."""


@dataclass(frozen=True)
class DemoRecipe:
    """How one example campaign becomes a demo campaign.

    Args:
        key: the name used on the command line (``pld``).
        title: one line for people.
        example: file name in ``optimizer/campaigns/``.
        tenants: names of the demo tenants (see :mod:`labweave.services.demo.tenants`) it needs.
        budget: default experiments per run.
        initial_design: most space-filling points before the model takes over.
        fixed: parameters fixed for the demo: ``{name: value}``; each is removed from the
            search space and written into the request template instead.
        settings: strategy settings for the demo (applied where the strategy knows them).
        request_defaults: request parameters added where the campaign file leaves them out
            (``{method: {field: value}}``), for fields the capability requires.
        request_overrides: request parameters the demo sets (``{method: {field: value}}``, nested
            objects merged field by field), for shorter experiments.
        replicates: measurements of each run's recommended point once that run ends, for noisy
            instruments; the runs are then compared on the replicates' mean (0: on the best result).
        batch_size: requests in flight per run (default: the campaign file's).
    """

    key: str
    title: str
    example: str
    tenants: tuple[str, ...]
    budget: int
    initial_design: int
    fixed: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=lambda: dict(FAST_ACQUISITION))
    request_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    replicates: int = 0
    batch_size: int | None = None


RECIPES: dict[str, DemoRecipe] = {
    "pld": DemoRecipe(
        key="pld",
        title="PLD of SrTiO3 on SrTiO3: smooth films and layer-by-layer growth (two objectives)",
        example="pld.toml",
        tenants=("pld-chamber",),
        budget=20,
        initial_design=4,
        fixed={"pulses": 200, "substrate": "SrTiO3"},
        # A growth takes under a second: proposals set the pace. `python -m benchmarks.pld --seeds 4` (20 growths):
        # qLogNEHVI with the fast search 9.74-10.12 (mean 9.86) at 2.3 s a proposal, with the thorough one
        # 9.71-10.19 (mean 9.95) at 4.2 s, random 8.59-9.43 (mean 9.06). The fast search keeps nearly all
        # of the gain over random for half the time.
        settings=dict(FAST_ACQUISITION),
    ),
    "electrolyte": DemoRecipe(
        key="electrolyte",
        title="Electrolyte formulation (EC/PC/EMC/LiPF6 with the additives VC and FEC) maximising the cycle life of coin cells",
        example="electrolyte.toml",
        tenants=("degradation-workflow-1", "degradation-workflow-2", "coin-cell-robot", "cycler-1", "cycler-2"),
        budget=16,
        initial_design=4,
        # FINALES2's degradation_workflow capability requires cell_info (an empty object will do).
        request_defaults={"degradation_workflow": {"cell_info": {}}},
        # A cell cycles for seconds while a proposal is made: the acquisition can afford a wider search
        # of the constrained formulation simplex (noisy cells make its surface flat near the top).
        settings=dict(THOROUGH_ACQUISITION),
        # Cells from one electrolyte differ by several cycles (a standard deviation of 4-7 here): the best
        # of 16 formulations is partly luck. With five replicates (of 3 cells) per run the standard error of
        # the difference of two means is about 2.5 cycles, so the report tells apart means about 5 apart.
        replicates=5,
    ),
    "materials": DemoRecipe(
        key="materials",
        title="Alloy materials search mixing MLIP (CHGNet) and EMT fidelities",
        example="materials.toml",
        tenants=("emt-code", "mlip-code"),
        budget=10,  # the cost of ten EMT calculations, spent on CHGNet screens and EMT confirmations
        initial_design=6,
        # One request at a time: each choice sees every result before it. Replayed on the demo's cells
        # (`python -m benchmarks.fidelity --cells ordered4` data, cost 200, seeds 0-11) the strategy found the best
        # alloy but one (regret 0.009 eV/atom) in 10 of 12 runs one at a time and in 7 of 12 two at a time
        # (mean regret 0.027 against 0.046; EMT at random 0.063); on the 32-atom cells 9 and 7 of 12. The
        # screens take under a second each, so the campaign still ends before the electrolyte's.
        batch_size=1,
        # The same calculation for both methods, demo-sized: the ordered 4-atom cubic fcc cell of each
        # composition (quarters fit it exactly: L1_2 for A3B, L1_0 for AB) instead of a random 32-atom
        # one, relaxed to 0.1 eV/A. A CHGNet run then takes under a second instead of about ten (mean CPU
        # over the 168 candidates: 0.6 s against 9.3 s), and CHGNet still tracks EMT where it did
        # (correlation 0.84 without Al, 0.89 for the 32-atom cells) and misses it with Al.
        request_overrides={"chgnet": {"fmax": 0.1, "alloy": {"supercell": 1}},
                           "emt": {"fmax": 0.1, "alloy": {"supercell": 1}}},
    ),
    "perovskite": DemoRecipe(
        key="perovskite",
        title="Stiffest cubic ABO3 perovskite: SISSO-guided search of MLIP (CHGNet) bulk moduli",
        example="perovskite.toml",
        tenants=("mlip-code",),
        # A CHGNet relaxation and equation of state of a 5-atom cell takes 5-15 s here (each new element's
        # reference a few more): `--budget 8` (8 + 8 calculations on one tenant) took 5.5 minutes on a loaded
        # two-core machine, so it is not in the default set. Replayed over 20 seeds on the stored table:
        # `python -m benchmarks.sisso_search perovskite`.
        budget=16,
        initial_design=6,
        settings={},
    ),
}

#: The campaigns ``labweave demo`` runs unless told otherwise (about six minutes together here).
DEFAULT_CAMPAIGNS: tuple[str, ...] = ("pld", "electrolyte", "materials")


@dataclass(frozen=True)
class DemoCampaign:
    """A demo campaign and its random-search baseline.

    Args:
        recipe: where it comes from.
        optimised: the campaign with its own strategy.
        baseline: the same campaign with the ``random`` strategy.
    """

    recipe: DemoRecipe
    optimised: Campaign
    baseline: Campaign


def demo_campaign(key: str, budget: int | None = None, seed: int = 0,
                  available: Callable[[str], str | None] = lambda tenant: None) -> DemoCampaign:
    """Build the demo copy of an example campaign and its baseline.

    Args:
        key: ``electrolyte``, ``pld``, ``materials`` or ``perovskite``.
        budget: experiments per run (default: the recipe's).
        seed: seed of both strategies.
        available: returns why a demo tenant cannot run here, or ``None`` if it can.

    Returns:
        The pair of campaigns.

    Raises:
        KeyError: for an unknown key, naming the known ones.
        ValueError: naming ``budget`` if it is below 1.
        CampaignUnavailable: if its file, strategy or instruments are missing here.
    """
    try:
        recipe = RECIPES[key]
    except KeyError:
        raise KeyError(f"campaigns: unknown campaign {key!r}; choose from {', '.join(RECIPES)}") from None
    if budget is not None and budget < 1:
        raise ValueError(f"budget: must be at least 1, not {budget}")
    for tenant in recipe.tenants:
        reason = available(tenant)
        if reason:
            raise CampaignUnavailable(f"{key}: {reason}")
    path = EXAMPLES / recipe.example
    if not path.exists():
        raise CampaignUnavailable(f"{key}: the campaign file optimizer/campaigns/{recipe.example} is not installed")
    try:
        spec = load_campaign(path)
    except CampaignFileError as exc:
        raise CampaignUnavailable(f"{key}: {exc}") from None
    budget = budget or recipe.budget
    data = shrink(spec, recipe, budget, seed)
    baseline = copy.deepcopy(data)
    baseline["name"] = data["name"] + BASELINE_SUFFIX
    baseline["description"] = f"Random-search baseline of {data['name']}."
    baseline["strategy"] = {"name": "random", "settings": {"seed": seed}}
    ladder = data["strategy"]["settings"].get("fidelities")
    if ladder:
        _target_fidelity_only(baseline, data["strategy"]["settings"].get("fidelity_parameter", "method"),
                              ladder[-1]["method"], budget)
    if data["strategy"]["settings"].get("pool") is not None:  # the same candidates, drawn at random
        baseline["strategy"]["settings"]["pool"] = data["strategy"]["settings"]["pool"]
    return DemoCampaign(recipe, _campaign(data), _campaign(baseline))


def _target_fidelity_only(data: dict[str, Any], parameter: str, target: str, budget: int) -> None:
    """Make a multi-fidelity campaign's baseline evaluate at the target fidelity only, ``budget`` times.

    The fidelity parameter leaves the space and the request names the target method alone, so
    that the baseline spends the same cost as the multi-fidelity run (``budget`` target
    evaluations) on random points.
    """
    data["space"]["parameters"] = [p for p in data["space"]["parameters"] if p["name"] != parameter]
    data["request"]["methods"] = [target]
    data["request"]["parameters"] = {target: data["request"]["parameters"].get(target, {})}
    data["budget"] = budget
    data["initial_design"] = min(data["initial_design"], budget)


def shrink(spec: CampaignSpec, recipe: DemoRecipe, budget: int, seed: int) -> dict[str, Any]:
    """The campaign file's content, demo-sized (see the module docstring).

    Args:
        spec: the example campaign.
        recipe: the demo's changes.
        budget: experiments per run; with several fidelities, the cost of that many evaluations at
            the target fidelity (the ladder's last), spent on any mix of fidelities.
        seed: the strategy's seed.

    Returns:
        The campaign as a dict, ready for :class:`CampaignSpec`.

    Raises:
        CampaignUnavailable: if a fixed parameter is not in the campaign.
    """
    data = spec.model_dump(mode="json")
    data["budget"] = budget
    data["initial_design"] = min(budget, recipe.initial_design, max(2, round(budget / 3)))
    ladder = data["strategy"]["settings"].get("fidelities")
    if ladder:  # a cost budget: `budget` evaluations at the target fidelity, spent on any mix
        costs = [float(f["cost"]) for f in ladder]
        data["strategy"]["settings"]["budget"] = budget * costs[-1]
        data["budget"] = int(budget * costs[-1] // min(costs))
        data["initial_design"] = min(recipe.initial_design, data["budget"])
    if recipe.batch_size is not None:
        data["batch_size"] = recipe.batch_size
    data["requires_approval"] = False
    data["stopping"] = {"no_improvement_in": None, "stop_on_targets": False}
    names = {p["name"] for p in data["space"]["parameters"]}
    for name, value in recipe.fixed.items():
        if name not in names:
            raise CampaignUnavailable(f"{recipe.key}: fixed parameter {name!r} is not in {recipe.example}")
        data["request"]["parameters"] = _fix(data["request"]["parameters"], name, value)
    for method, defaults in recipe.request_defaults.items():
        data["request"]["parameters"][method] = {**defaults, **data["request"]["parameters"].get(method, {})}
    for method, overrides in recipe.request_overrides.items():
        data["request"]["parameters"][method] = _merged(data["request"]["parameters"].get(method, {}), overrides)
    data["space"]["parameters"] = [p for p in data["space"]["parameters"] if p["name"] not in recipe.fixed]
    data["space"]["constraints"] = [c for c in data["space"]["constraints"]
                                    if not set(c["coefficients"]) & set(recipe.fixed)]
    known = settings_model(data["strategy"]["name"]).model_fields
    settings = dict(data["strategy"]["settings"])
    settings.update({k: v for k, v in recipe.settings.items() if k in known})
    settings["seed"] = seed
    data["strategy"]["settings"] = settings
    return data


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied, nested objects merged field by field."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _fix(node: Any, name: str, value: Any) -> Any:
    """Replace the placeholder ``{name}`` in a request template by ``value``."""
    if isinstance(node, dict):
        return {k: _fix(v, name, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix(v, name, value) for v in node]
    if node == "{" + name + "}":
        return value
    if isinstance(node, str) and "{" + name + "}" in node:
        return node.replace("{" + name + "}", str(value))
    return node


def _campaign(data: dict[str, Any]) -> Campaign:
    """Validate a campaign dict as a campaign file would be, strategy settings included."""
    data = copy.deepcopy(data)
    settings = dict(data["strategy"].get("settings", {}))
    settings["initial_design"] = data["initial_design"]
    checked = settings_model(data["strategy"]["name"]).model_validate(settings)
    data["strategy"]["settings"] = checked.model_dump(mode="json")
    return Campaign(CampaignSpec.model_validate(data))


def select(keys: Sequence[str], budget: int | None, seed: int,
           available: Callable[[str], str | None]) -> tuple[list[DemoCampaign], list[str]]:
    """The demo campaigns that can run here, and why the others cannot.

    Args:
        keys: campaign keys in the order asked for.
        budget: experiments per run (default: each recipe's).
        seed: seed of the strategies.
        available: see :func:`demo_campaign`.

    Returns:
        ``(campaigns, reasons)``: the runnable campaigns and one sentence per campaign left out.

    Raises:
        KeyError: for an unknown key.
    """
    campaigns, reasons = [], []
    for key in keys:
        try:
            campaigns.append(demo_campaign(key, budget, seed, available))
        except CampaignUnavailable as exc:
            log.warning("campaign left out: %s", exc)
            reasons.append(str(exc))
    return campaigns, reasons
