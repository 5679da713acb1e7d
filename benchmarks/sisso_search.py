"""Study: SISSO-guided search of a candidate pool against Bayesian optimisation and random search.

``python -m benchmarks.sisso_search planted`` — a planted-property pool: a
thousand candidates with ten primary features (four lengths, two energies,
four dimensionless numbers, uniform in their ranges, seeded), the property
``y = 2 r_1 r_2 - 3 E_1 / E_2`` plus Gaussian noise of 2 % of its spread. Each
strategy searches the pool (two proposals per turn, up to ``--budget``
evaluations) until it has evaluated one of the ten best candidates (top 1 %
by the noise-free property). Printed per strategy as JSON lines: the median
(and quartiles) of the evaluations needed over the seeds, how many runs
found one within the budget, and for ``sisso`` how often the ensemble's
leading formula at that point is the planted one (the descriptor
``{r_1 * r_2, E_1 / E_2}``).

``python -m benchmarks.sisso_search perovskite`` — the same race replayed on
the stored table of cubic ABO3 perovskites and their CHGNet bulk moduli
(``benchmarks/data/perovskite_bulk_moduli_chgnet.json``, made by
``python -m benchmarks.perovskite_table``): evaluations to find the stiffest
candidate and one of the five stiffest, and the descriptors SISSO settles on.

The strategies, all seeded per run and given the same pool:

- ``sisso``: :class:`~labweave.optimizer.strategies.sisso.SissoStrategy`
  (expected improvement; 16 members, rung 1, dimension 2);
- ``bayesian``: :class:`~labweave.optimizer.strategies.bayesian.BayesianStrategy`
  over the pool, a GP on the same primary features;
- ``random``: draws from the pool.

Each run's results are stored in ``benchmarks/data/sisso_search_<pool>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies import get_strategy
from labweave.optimizer.strategies.sisso import SissoProposal, SissoStrategy, leading_formulas
from labweave.schemas.campaign import Objective
from labweave.services.process import configure_threads

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
PEROVSKITE_TABLE = DATA_DIR / "perovskite_bulk_moduli_chgnet.json"

#: The planted pool's primary features and units.
PLANTED_FEATURES: dict[str, tuple[str, float, float]] = {
    "r_1": ("angstrom", 0.5, 2.0),
    "r_2": ("angstrom", 0.5, 2.0),
    "r_3": ("angstrom", 0.5, 2.0),
    "r_4": ("angstrom", 0.5, 2.0),
    "E_1": ("eV", 0.5, 3.0),
    "E_2": ("eV", 0.5, 3.0),
    "c_1": ("", 0.0, 1.0),
    "c_2": ("", 0.0, 1.0),
    "c_3": ("", 1.0, 5.0),
    "c_4": ("", 1.0, 5.0),
}
PLANTED_DESCRIPTOR = frozenset({"(r_2 * r_1)", "(E_1 / E_2)"})
STRATEGIES = ("sisso", "bayesian", "random")


def planted_pool(size: int = 1000, noise: float = 0.02, seed: int = 2026) -> dict[str, Any]:
    """The planted-property pool: features, the true property and one noisy measurement each."""
    rng = np.random.default_rng(seed)
    columns = {name: rng.uniform(lo, hi, size) for name, (_, lo, hi) in PLANTED_FEATURES.items()}
    truth = 2.0 * columns["r_1"] * columns["r_2"] - 3.0 * columns["E_1"] / columns["E_2"]
    measured = truth + noise * truth.std() * rng.normal(size=size)
    return {
        "features": {k: v.tolist() for k, v in columns.items()},
        "units": {k: unit for k, (unit, _, _) in PLANTED_FEATURES.items()},
        "truth": truth.tolist(),
        "measured": measured.tolist(),
    }


def feature_space(features: Mapping[str, Sequence[float]], units: Mapping[str, str]) -> SearchSpace:
    """A space whose continuous parameters are the primary features, bounded by the pool."""
    parameters = []
    for name, values in features.items():
        lo, hi = float(min(values)), float(max(values))
        pad = 1e-9 * max(1.0, abs(hi - lo))
        parameters.append({"name": name, "lower": lo - pad, "upper": hi + pad, "unit": units.get(name) or None})
    return SearchSpace.from_parameters(parameters)


def race(
    name: str,
    settings: dict[str, Any],
    space: SearchSpace,
    points: list[dict[str, Any]],
    measured: np.ndarray,
    targets: set[int] | Mapping[str, set[int]],
    budget: int,
    batch: int,
) -> dict[str, Any]:
    """One strategy searching the pool until it evaluates a candidate of each target set (or spends the budget).

    ``targets`` is one set of candidate indices, or several by label (``{"stiffest": {i}, "top 5": {...}}``):
    ``evaluations`` is then a dict of the evaluations to each set's first hit.
    """
    named = dict(targets) if isinstance(targets, Mapping) else {"": set(targets)}
    hits: dict[str, int | None] = dict.fromkeys(named)
    strategy = get_strategy(
        name, {**settings, "pool": {"kind": "explicit", "points": points}},
        space=space, objectives=[Objective(name="y", path="y", direction="maximize")],
    )
    encoded = space.encode(points).numpy()
    observations: list[tuple[dict[str, Any], dict[str, float]]] = []
    formulas: list[str] = []
    leading: frozenset[str] | None = None
    start = time.perf_counter()
    # sisso runs on to its initial design at least, so that the leading formula is read off an ensemble
    floor = settings.get("initial_design", 0) if name == "sisso" else 0
    while len(observations) < budget and (None in hits.values() or len(observations) < floor):
        proposals = strategy.propose(observations, n=min(batch, budget - len(observations)))
        if not proposals:
            break
        for proposal in proposals:
            row = space.encode([proposal.parameters]).numpy()[0]
            index = int(np.argmin(np.abs(encoded - row).max(axis=1)))
            observations.append((points[index], {"y": float(measured[index])}))
            if isinstance(proposal, SissoProposal) and proposal.formulas:
                top = proposal.formulas[0]
                if not formulas or formulas[-1] != top.descriptor:
                    formulas.append(top.descriptor)
            for label, members in named.items():
                if hits[label] is None and index in members:
                    hits[label] = len(observations)
    if isinstance(strategy, SissoStrategy):
        # the descriptor the ensemble leads with on the data of the run's end (a hit in the design included)
        leading = frozenset(leading_formulas(strategy.fit(observations))[0].descriptor.split("; "))
    return {
        "evaluations": hits if isinstance(targets, Mapping) else hits[""],
        "leading": sorted(leading) if leading is not None else None,
        "formula_history": formulas,
        "seconds": time.perf_counter() - start,
    }


def summarise(runs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    """Median and quartiles of evaluations to a hit (runs without one count as budget + 1)."""
    needed = sorted(r["evaluations"] if r["evaluations"] is not None else budget + 1 for r in runs)
    q = np.percentile(needed, [25, 50, 75])
    return {
        "median": float(q[1]),
        "q25": float(q[0]),
        "q75": float(q[2]),
        "found": sum(r["evaluations"] is not None for r in runs),
        "runs": len(runs),
        "seconds_per_run": round(statistics.mean(r["seconds"] for r in runs), 2),
    }


#: The sisso strategy's initial design in this run (``--sisso-design``).
SISSO_DESIGN = {"design": "maximin"}


def strategy_settings(name: str, seed: int, sisso: Mapping[str, Any]) -> dict[str, Any]:
    """Each contender's settings: the same initial design size."""
    if name == "sisso":
        return {"seed": seed, "initial_design": 8, **SISSO_DESIGN, **sisso}
    if name == "bayesian":
        return {"seed": seed, "initial_design": 8}
    return {"seed": seed}


def run_planted(seeds: int, budget: int, batch: int, strategies: Sequence[str]) -> list[dict[str, Any]]:
    pool = planted_pool()
    features, units = pool["features"], pool["units"]
    space = feature_space(features, units)
    names = list(features)
    points = [{n: float(features[n][i]) for n in names} for i in range(len(pool["truth"]))]
    truth = np.asarray(pool["truth"])
    targets = {int(i) for i in np.argsort(truth)[-len(truth) // 100:]}
    measured = np.asarray(pool["measured"])
    rows = []
    for name in strategies:
        runs = []
        for seed in range(seeds):
            settings = strategy_settings(name, seed, {"features": {"kind": "parameters"}})
            runs.append(race(name, settings, space, points, measured, targets, budget, batch))
            logger.info("%s seed %d: %s", name, seed, runs[-1]["evaluations"])
        row = {"pool": "planted", "strategy": name, "target": "top 1% (10 of 1000)", **summarise(runs, budget)}
        if name == "sisso":
            row["leading_is_planted"] = sum(frozenset(r["leading"] or ()) == PLANTED_DESCRIPTOR for r in runs)
            row["leading_formulas"] = dict(Counter("; ".join(r["leading"] or ()) for r in runs).most_common(3))
        row["runs_detail"] = [r["evaluations"] for r in runs]
        rows.append(row)
    return rows


def run_perovskite(seeds: int, budget: int, batch: int, strategies: Sequence[str]) -> list[dict[str, Any]]:
    table = json.loads(PEROVSKITE_TABLE.read_text(encoding="utf-8"))
    rows_in = [r for r in table["rows"] if r.get("bulk_modulus") is not None]
    names = list(table["units"])
    features = {n: [r["features"][n] for r in rows_in] for n in names}
    space = feature_space(features, table["units"])
    points = [{n: float(r["features"][n]) for n in names} for r in rows_in]
    values = np.asarray([r["bulk_modulus"] for r in rows_in])
    order = np.argsort(values)
    targets = {"stiffest": {int(order[-1])}, "top 5": {int(i) for i in order[-5:]}}
    out = []
    for name in strategies:
        runs = []
        for seed in range(seeds):  # one run per seed serves both targets (the top 5 hold the stiffest)
            settings = strategy_settings(name, seed, {"features": {"kind": "parameters"}, "objective_unit": "GPa"})
            runs.append(race(name, settings, space, points, values, targets, budget, batch))
            logger.info("%s seed %d: %s", name, seed, runs[-1]["evaluations"])
        for label in targets:
            per_target = [r | {"evaluations": r["evaluations"][label]} for r in runs]
            row = {"pool": "perovskite", "strategy": name, "target": label, "candidates": len(points),
                   **summarise(per_target, budget)}
            if name == "sisso":
                row["leading_formulas"] = dict(Counter("; ".join(r["leading"] or ()) for r in runs).most_common(3))
            row["runs_detail"] = [r["evaluations"] for r in per_target]
            out.append(row)
    return out


def settled_descriptor(n_models: int = 16, seed: int = 0) -> dict[str, Any]:
    """The sisso strategy's ensemble fitted to the whole perovskite table: the descriptor it settles on."""
    table = json.loads(PEROVSKITE_TABLE.read_text(encoding="utf-8"))
    rows = [r for r in table["rows"] if r.get("bulk_modulus") is not None]
    names = list(table["units"])
    features = {n: [r["features"][n] for r in rows] for n in names}
    space = feature_space(features, table["units"])
    points = [{n: float(r["features"][n]) for n in names} for r in rows]
    strategy = get_strategy(
        "sisso", {"seed": seed, "n_models": n_models, "objective_unit": "GPa", "features": {"kind": "parameters"},
                  "pool": {"kind": "explicit", "points": points}},
        space=space, objectives=[Objective(name="bulk_modulus", path="bulk_modulus", direction="maximize")],
    )
    assert isinstance(strategy, SissoStrategy)
    observations = [(p, {"bulk_modulus": float(r["bulk_modulus"])}) for p, r in zip(points, rows)]
    ensemble = strategy.fit(observations)
    mean, _ = ensemble.predict(strategy.features, strategy.featurizer.names)
    y = np.array([r["bulk_modulus"] for r in rows])
    return {"pool": "perovskite", "fit": f"all {len(rows)} candidates",
            "leading_formulas": [f.model_dump() for f in leading_formulas(ensemble)],
            "ensemble_rmse_GPa": float(np.sqrt(np.mean((mean - y) ** 2))), "std_GPa": float(y.std())}


def stored_rows(pool: str) -> list[dict[str, Any]]:
    """The rows stored for ``pool`` by earlier runs (every ``sisso_search_<pool>*.json``), each with its command."""
    rows = []
    for path in sorted(DATA_DIR.glob(f"sisso_search_{pool}*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        rows += [row | {"command": payload["command"]} for row in payload["rows"] if "strategy" in row]
    return rows


def comparison_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table: per strategy (and design), evaluations to each target, median (quartiles), hits."""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    lines = ["| strategy | " + " | ".join(targets) + " | seconds per run |", "|---" * (len(targets) + 2) + "|"]
    keyed: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        design = row.get("design", "maximin") if row["strategy"] == "sisso" else None
        label = row["strategy"] + (f", {design} design" if design else "")
        keyed.setdefault(label, {})[row["target"]] = row
    for label, by_target in keyed.items():
        cells = []
        for target in targets:
            r = by_target.get(target)
            cells.append("-" if r is None else
                         f"{r['median']:g} ({r['q25']:g}-{r['q75']:g}), {r['found']} of {r['runs']}")
        seconds = next(iter(by_target.values()))["seconds_per_run"]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {seconds:g} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sisso_search", description=__doc__.splitlines()[0])
    parser.add_argument("pool", choices=["planted", "perovskite"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=80, help="most evaluations per run")
    parser.add_argument("--batch", type=int, default=2, help="proposals per turn")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--no-store", action="store_true", help="do not write benchmarks/data/")
    parser.add_argument("--sisso-design", choices=["maximin", "random"], default="maximin",
                        help="the sisso strategy's initial design (random: the same draws as bayesian's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="compute threads (torch, BLAS); one by default, as the labweave CLI")
    parser.add_argument("--table", action="store_true",
                        help="print the stored results of every strategy as one table (and, for the perovskites, "
                             "the descriptor SISSO settles on fitted to the whole table); run nothing")
    args = parser.parse_args(argv)
    if args.table:
        stored = stored_rows(args.pool)
        sys.stdout.write(comparison_table(stored) + "\n")
        if args.pool == "perovskite":
            sys.stdout.write(json.dumps(settled_descriptor()) + "\n")
        return stored
    # Two torch threads on a loaded two-core machine made a 30-point Cholesky 1300 times slower than one.
    configure_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    SISSO_DESIGN["design"] = args.sisso_design
    run = run_planted if args.pool == "planted" else run_perovskite
    rows = run(args.seeds, args.budget, args.batch, args.strategies)
    for row in rows:
        if row["strategy"] == "sisso":
            row["design"] = args.sisso_design
    if args.pool == "perovskite" and "sisso" in args.strategies:
        rows.append(settled_descriptor())
    for row in rows:
        sys.stdout.write(json.dumps({k: v for k, v in row.items() if k != "runs_detail"}) + "\n")
    if not args.no_store:
        part = "" if set(args.strategies) == set(STRATEGIES) else "_" + "_".join(args.strategies)
        part += "" if args.sisso_design == "maximin" or "sisso" not in args.strategies else "_random_design"
        path = DATA_DIR / f"sisso_search_{args.pool}{part}.json"
        payload = {"command": "python -m benchmarks.sisso_search " + " ".join(argv or sys.argv[1:]), "rows": rows}
        path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
