"""Study: strategies against the simulated PLD chamber, in process (``python -m benchmarks.pld``).

The demo's PLD campaign (two objectives: roughness down, RHEED oscillations
up) is run as the optimizer daemon would run it, one proposal and one growth
at a time, but without the server: the strategy proposes, the chamber's
driver grows the film, the campaign reads the result. A growth of 200 pulses
takes under a second, so several seeds of each strategy fit in minutes and
the comparison is one of distributions, not of one lucky run.

Figures (one JSON line per variant): the hypervolume after the budget (the
reference point is the objectives' thresholds) for each seed, its mean and
the mean seconds per proposal. Each seed gets its own chamber seed, the same
for every variant.

Usage, from the root of a clone::

    python -m benchmarks.pld --variants random,nehvi+fast --seeds 4 --budget 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from labweave.optimizer import analytics
from labweave.optimizer.campaign import Campaign
from labweave.schemas.campaign import CampaignSpec
from labweave.services.demo.campaigns import FAST_ACQUISITION, THOROUGH_ACQUISITION, demo_campaign

#: Variants: the random baseline, and the Bayesian strategy with either multi-objective method and
#: either the fast or the thorough acquisition search (``nehvi+thorough``...).
VARIANTS = ("random", "parego+fast", "parego+thorough", "nehvi+fast", "nehvi+thorough")
CHAMBER_SEED_OFFSET = 100


def variant_campaign(variant: str, seed: int) -> Campaign:
    """The demo's PLD campaign (or its random baseline) with a variant's strategy settings.

    Raises:
        ValueError: naming the variant if it is not one of :data:`VARIANTS`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: unknown {variant!r}; choose from {', '.join(VARIANTS)}")
    demo = demo_campaign("pld", seed=seed)
    if variant == "random":
        return demo.baseline
    method, _, search = variant.partition("+")
    data = demo.optimised.spec.model_dump(mode="json")
    data["strategy"]["settings"] |= {"multi_objective": method,
                                     **(THOROUGH_ACQUISITION if search == "thorough" else FAST_ACQUISITION)}
    return Campaign(CampaignSpec.model_validate(data))


async def replay(campaign: Campaign, budget: int, chamber_seed: int) -> tuple[float, float]:
    """Run ``budget`` growths proposed one at a time; the hypervolume and seconds per proposal."""
    from labweave.drivers.pld.frontend import PldChamber
    from labweave.drivers.pld.sim import SimulatedPldBackend

    chamber = PldChamber(SimulatedPldBackend(seed=chamber_seed))
    strategy = campaign.make_strategy()
    observations: list[tuple[dict[str, Any], dict[str, float]]] = []
    proposing = 0.0
    while len(observations) < budget:
        started = time.perf_counter()
        [proposal] = strategy.propose(observations, [], 1)
        proposing += time.perf_counter() - started
        request = campaign.build_request(proposal.parameters)
        method = request["methods"][0]
        result = await chamber.perform(request["quantity"], method, request["parameters"][method])
        observations.append((proposal.parameters, campaign.read_values(result)))
    objectives = campaign.spec.objectives
    seen = [analytics.Observation(n, values, point, "pld_growth", campaign.feasible(values))
            for n, (point, values) in enumerate(observations, start=1)]
    return analytics.hypervolume(seen, objectives, analytics.reference_point(objectives, seen)), proposing / budget


def run_benchmarks(variants: Sequence[str] = ("random", "parego+fast", "nehvi+thorough"),
                   seeds: int = 5, budget: int = 20) -> list[dict[str, Any]]:
    """One row per variant: hypervolume per seed, mean, and seconds per proposal."""
    rows = []
    for variant in variants:
        volumes, seconds = [], []
        for seed in range(seeds):
            volume, per_proposal = asyncio.run(replay(variant_campaign(variant, seed), budget,
                                                      CHAMBER_SEED_OFFSET + seed))
            volumes.append(round(volume, 4))
            seconds.append(per_proposal)
        rows.append({"benchmark": "pld_campaign_hypervolume", "variant": variant, "budget": budget,
                     "hypervolumes": volumes, "mean_hypervolume": round(statistics.fmean(volumes), 4),
                     "seconds_per_proposal": round(statistics.fmean(seconds), 3)})
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Command-line entry point: one JSON line per variant.

    Args:
        argv: command-line arguments (``sys.argv[1:]`` if ``None``).

    Returns:
        The rows.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pld", description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="random,parego+fast,nehvi+thorough",
                        help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per variant")
    parser.add_argument("--budget", type=int, default=20, help="growths per run (at least 2)")
    args = parser.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if not chosen or unknown:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}")
    if args.seeds < 1:
        parser.error(f"--seeds: at least 1, not {args.seeds}")
    if args.budget < 2:
        parser.error(f"--budget: at least 2 growths, not {args.budget}")
    rows = run_benchmarks(chosen, seeds=args.seeds, budget=args.budget)
    for row in rows:
        sys.stdout.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    main()
