"""Study: multi-fidelity materials search on real EMT and CHGNet calculations (``python -m benchmarks.fidelity``).

The candidates are fcc alloys of the seven metals EMT is parametrised for,
binaries and ternaries on a grid of quarter fractions, in one of two cells
(:data:`TABLES`): ``random32``, random substitutional 32-atom cells relaxed to
0.05 eV/A (the example campaign's; about an hour on one core), and
``ordered4``, the ordered 4-atom cubic cell of each composition (L1_2 for A3B,
L1_0 for AB) relaxed to 0.1 eV/A (the demo's; about three minutes).
:func:`compute_alloy_table` computes every candidate's bulk properties by both
methods through the atomistic drivers and stores them in ``benchmarks/data/``
(it resumes where it stopped); the study and the tests then read the table, so
a campaign can be replayed in seconds with real numbers.

:func:`run_benchmarks` spends the same cost budget three ways and reports the
best true (EMT) formation energy found against the cost spent:

- ``multifidelity``: the cost-aware strategy of
  :mod:`labweave.optimizer.strategies.multifidelity`;
- ``emt_random``: EMT on candidates drawn at random;
- ``mlip_screen_confirm``: CHGNet on as many candidates as the budget allows
  (keeping enough for one EMT run), then EMT on the best CHGNet picks with the
  rest;

and, as an ablation, ``emt_only_model``: the same strategy given the EMT
fidelity only (Bayesian optimisation over the pool without the MLIP, two
design points).

This study (like the tests) may import the drivers; the strategies may not.

Usage, from the root of a clone::

    python -m benchmarks.fidelity --cells ordered4    # one JSON line per strategy and budget
    python -m benchmarks.fidelity --table             # (re)compute the random32 table
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labweave.optimizer.pools import ExplicitPool, composition_grid
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies.multifidelity import MultiFidelitySettings, MultiFidelityStrategy
from labweave.services.process import configure_threads
from labweave.schemas.campaign import CategoricalParameter, ContinuousParameter, LinearConstraint, Objective

logger = logging.getLogger(__name__)

#: The studies' stored tables (data of the clone, never of the installed package).
DATA_DIR = Path(__file__).resolve().parent / "data"
#: The cached calculations of the example campaign's cells.
TABLE_PATH = DATA_DIR / "fcc_alloys_emt_chgnet.json"
#: The tables: file and the cell each candidate is computed in (supercell, arrangement seed, fmax).
TABLES: dict[str, tuple[Path, dict[str, Any]]] = {
    "random32": (TABLE_PATH, {"supercell": 2, "seed": 0, "fmax": 0.05}),
    "ordered4": (DATA_DIR / "fcc_alloys_emt_chgnet_ordered.json", {"supercell": 1, "seed": 0, "fmax": 0.1}),
}
#: The metals EMT is parametrised for (Jacobsen, Stoltze & Norskov, Surf. Sci. 366, 394 (1996)).
ALLOY_ELEMENTS: tuple[str, ...] = ("Ag", "Al", "Au", "Cu", "Ni", "Pd", "Pt")
#: Methods of the table, cheapest first; the last is the reference ("truth").
TABLE_METHODS: tuple[str, ...] = ("chgnet", "emt")
#: Properties kept per calculation.
TABLE_PROPERTIES: tuple[str, ...] = (
    "formation_energy_per_atom",
    "bulk_modulus",
    "lattice_constant",
    "energy_per_atom",
    "cost_cpu_seconds",
)
#: Relative costs of the benchmark: an EMT run stands for a DFT relaxation worth
#: twenty MLIP relaxations (real DFT is dearer still; CHGNet is in fact the slower
#: of the two here, so the costs are notional, as in any stand-in).
BENCH_COSTS: dict[str, float] = {"chgnet": 1.0, "emt": 20.0}


def fraction_name(element: str) -> str:
    """Name of the campaign parameter holding an element's atomic fraction (``x_Cu``)."""
    return f"x_{element}"


def composition_key(composition: Mapping[str, float]) -> str:
    """A canonical text key of a composition, e.g. ``Au0.25Cu0.75`` (elements sorted, zeros dropped)."""
    return "".join(f"{e}{composition[e]:.4g}" for e in sorted(composition) if composition[e] > 0)


# ----------------------------------------------------------------------- the table
def _calculate(backend: Any, composition: Mapping[str, float], supercell: int, seed: int, fmax: float) -> dict:
    """One bulk-properties calculation through a driver backend."""
    from labweave.schemas.atomistic import BulkPropertiesParameters

    params = BulkPropertiesParameters(
        alloy={"composition": dict(composition), "supercell": supercell, "seed": seed}, fmax=fmax
    )
    result = asyncio.run(backend.bulk_properties(params))
    record = {name: float(getattr(result, name)) for name in TABLE_PROPERTIES}
    record["converged"] = bool(result.convergence.converged)
    record["formula"] = result.formula
    return record


def compute_alloy_table(
    path: Path = TABLE_PATH,
    elements: Sequence[str] = ALLOY_ELEMENTS,
    divisions: int = 4,
    max_components: int = 3,
    supercell: int = 2,
    seed: int = 0,
    fmax: float = 0.05,
) -> dict[str, Any]:
    """Compute (or complete) the table of EMT and CHGNet bulk properties of the alloy pool.

    Each composition of :func:`composition_grid` with two or more elements is
    built as an fcc supercell, its sites filled in a seeded random order (the
    same arrangement for both methods; one conventional cell is an ordered
    structure),
    relaxed and fitted by each method's driver backend. The file is rewritten
    after every composition, and entries already present are kept, so an
    interrupted run resumes.

    Args:
        path: the JSON file.
        elements: the alloying elements.
        divisions: fractions are multiples of ``1 / divisions``.
        max_components: most elements per alloy.
        supercell: repeats of the conventional fcc cell (``4 supercell^3`` atoms).
        seed: seed of the random site arrangement.
        fmax: force convergence of the relaxations (eV/angstrom).

    Returns:
        The table: ``{"settings": ..., "entries": [{"composition", "<method>": {...}}]}``.

    Raises:
        ValueError: if the file holds a table made with other settings.
    """
    from labweave.drivers.atomistic.emt import EmtBackend
    from labweave.drivers.atomistic.mlip import ChgnetBackend

    settings = {
        "elements": list(elements),
        "divisions": divisions,
        "max_components": max_components,
        "prototype": "fcc",
        "supercell": supercell,
        "seed": seed,
        "fmax": fmax,
        "methods": list(TABLE_METHODS),
    }
    table: dict[str, Any] = {"settings": settings, "entries": []}
    if path.exists():
        table = json.loads(path.read_text(encoding="utf-8"))
        if table.get("settings") != settings:
            raise ValueError(f"settings: {path.name} was made with {table.get('settings')}, not {settings}")
    done = {composition_key(e["composition"]) for e in table["entries"]}
    backends = {"emt": EmtBackend(), "chgnet": ChgnetBackend()}
    grid = [c for c in composition_grid(list(elements), divisions, 2, max_components)]
    for i, composition in enumerate(grid):
        composition = {e: x for e, x in composition.items() if x > 0}
        key = composition_key(composition)
        if key in done:
            continue
        start = time.perf_counter()
        entry: dict[str, Any] = {"composition": composition}
        for method in TABLE_METHODS:
            entry[method] = _calculate(backends[method], composition, supercell, seed, fmax)
        table["entries"].append(entry)
        path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        logger.info(
            "%d/%d %s: emt %.4f, chgnet %.4f eV/atom (%.0f s)",
            i + 1,
            len(grid),
            key,
            entry["emt"]["formation_energy_per_atom"],
            entry["chgnet"]["formation_energy_per_atom"],
            time.perf_counter() - start,
        )
    return table


def load_alloy_table(which: str | Path = "random32") -> dict[str, Any]:
    """Read a table written by :func:`compute_alloy_table`.

    Args:
        which: a name of :data:`TABLES` (``"random32"``, ``"ordered4"``) or a file.

    Raises:
        KeyError: for a name that is not in :data:`TABLES`.
        FileNotFoundError: naming the command that makes it.
    """
    if isinstance(which, Path):
        path, how = which, ""
    elif which in TABLES:
        path, how = TABLES[which][0], f" --cells {which}"
    else:
        raise KeyError(f"table: unknown {which!r}; choose from {', '.join(TABLES)}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: run `python -m benchmarks.fidelity --table{how}` first")
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------- replaying campaigns
def alloy_space(elements: Sequence[str] = ALLOY_ELEMENTS, methods: Sequence[str] = TABLE_METHODS) -> SearchSpace:
    """The campaign's search space: one fraction per element (summing to one) and the method.

    Args:
        elements: the alloying elements.
        methods: choices of the fidelity parameter ``method``.

    Returns:
        The space.
    """
    parameters: list[Any] = [
        ContinuousParameter(
            name=fraction_name(e), lower=0.0, upper=1.0, unit="1", description=f"atomic fraction of {e}"
        )
        for e in elements
    ]
    parameters.append(CategoricalParameter(name="method", choices=list(methods)))
    constraint = LinearConstraint(
        coefficients={fraction_name(e): 1.0 for e in elements},
        relation="==",
        rhs=1.0,
        description="fractions sum to one",
    )
    return SearchSpace.from_parameters(parameters, [constraint])


#: The objective: the mixing energy of the random alloy, lower is more stable.
FORMATION_ENERGY = Objective(name="formation_energy", path="formation_energy_per_atom", direction="minimize")


class AlloyCandidates:
    """The alloys of a pool: campaign parameters of each, and the composition key of campaign parameters.

    Args:
        elements: the elements of the space (one ``x_<element>`` parameter each).
        compositions: the pool's compositions (element -> fraction).
    """

    def __init__(self, elements: Sequence[str], compositions: Sequence[Mapping[str, float]]) -> None:
        self.elements: list[str] = list(elements)
        self.compositions: list[dict[str, float]] = [dict(c) for c in compositions]

    def __len__(self) -> int:
        return len(self.compositions)

    def candidates(self) -> list[dict[str, float]]:
        """Every composition as campaign parameters (``x_<element>``, without the method)."""
        return [{fraction_name(e): float(c.get(e, 0.0)) for e in self.elements} for c in self.compositions]

    def key(self, parameters: Mapping[str, Any]) -> str:
        """Composition key of campaign parameters."""
        return composition_key({e: float(parameters[fraction_name(e)]) for e in self.elements})


class AlloyOracle(AlloyCandidates):
    """Answers evaluations from the table, as the atomistic tenants would.

    Args:
        table: the table of :func:`load_alloy_table`.
        costs: cost per evaluation of each method.
        quantity: the property read from each calculation.
    """

    def __init__(
        self,
        table: Mapping[str, Any],
        costs: Mapping[str, float] = BENCH_COSTS,
        quantity: str = "formation_energy_per_atom",
    ) -> None:
        super().__init__(table["settings"]["elements"], [e["composition"] for e in table["entries"]])
        self.costs = dict(costs)
        self.quantity = quantity
        self._values = {
            composition_key(e["composition"]): {m: float(e[m][quantity]) for m in TABLE_METHODS}
            for e in table["entries"]
        }

    def value(self, parameters: Mapping[str, Any], method: str) -> float:
        """The tabulated property of a candidate by a method.

        Raises:
            KeyError: naming the composition missing from the table.
        """
        key = self.key(parameters)
        if key not in self._values:
            raise KeyError(f"composition {key} is not in the table")
        return self._values[key][method]

    def optimum(self, method: str = "emt") -> float:
        """The lowest value of the property by ``method`` over the table."""
        return min(v[method] for v in self._values.values())

    def ranking(self, method: str) -> list[str]:
        """Composition keys from the lowest to the highest value by ``method``."""
        return sorted(self._values, key=lambda k: self._values[k][method])


def multifidelity_settings(
    oracle: AlloyOracle, budget: float, seed: int, methods: Sequence[str] = TABLE_METHODS, **extra: Any
) -> MultiFidelitySettings:
    """The strategy's settings for a replay on the table.

    Args:
        oracle: the table.
        budget: cost units.
        seed: seed of the design.
        methods: the fidelity ladder (cheapest first); ``("emt",)`` for the ablation.
        **extra: other settings (``initial_design``, ``refit_every``...); the scale
            factor depends on the elements present unless ``scale_basis`` says otherwise.

    Returns:
        The settings.
    """
    labels = {"chgnet": "MLIP screen", "emt": "EMT confirm"}
    settings: dict[str, Any] = {
        "seed": seed,
        "budget": budget,
        "fidelities": [{"method": m, "cost": oracle.costs[m], "label": labels.get(m, "")} for m in methods],
        "pool": ExplicitPool(points=oracle.candidates()),
        "scale_basis": "presence",
        "objective_unit": "eV/atom",
    }
    return MultiFidelitySettings(**{**settings, **extra})


def replay_multifidelity(
    oracle: AlloyOracle,
    budget: float,
    seed: int,
    methods: Sequence[str] = TABLE_METHODS,
    batch_size: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """Run the multi-fidelity strategy against the table until it stops proposing.

    Args:
        oracle: the table.
        budget: cost units.
        seed: seed of the strategy.
        methods: the fidelity ladder.
        batch_size: proposals per turn (all evaluated before the next turn).
        **extra: other strategy settings.

    Returns:
        The run: ``proposals`` (parameters, method, reason...), ``trace`` of
        ``(cost spent, best emt so far)`` and the totals.
    """
    settings = multifidelity_settings(oracle, budget, seed, methods, **extra)
    strategy = MultiFidelityStrategy(alloy_space(oracle.elements), [FORMATION_ENERGY], settings)
    observations: list[tuple[dict[str, Any], dict[str, float]]] = []
    log: list[dict[str, Any]] = []
    while True:
        proposals = strategy.propose(observations, pending=[], n=batch_size)
        if not proposals:
            break
        for p in proposals:
            method = p.parameters["method"]
            value = oracle.value(p.parameters, method)
            observations.append((p.parameters, {FORMATION_ENERGY.name: value}))
            log.append({"parameters": p.parameters, "method": method, "value": value, "proposal": p})
    return _summarise_run(oracle, [(e["parameters"], e["method"]) for e in log], extra_log=log)


def replay_emt_random(oracle: AlloyOracle, budget: float, seed: int) -> dict[str, Any]:
    """EMT on candidates drawn at random without replacement until the budget is spent."""
    rng = np.random.default_rng(seed)
    candidates = oracle.candidates()
    order = rng.permutation(len(candidates))
    k = min(len(candidates), int(budget // oracle.costs["emt"] + 1e-9))
    return _summarise_run(oracle, [(candidates[i], "emt") for i in order[:k]])


def replay_mlip_screen_confirm(oracle: AlloyOracle, budget: float, seed: int) -> dict[str, Any]:
    """CHGNet on random candidates while one EMT run stays affordable, then EMT on the best CHGNet picks."""
    rng = np.random.default_rng(seed)
    candidates = oracle.candidates()
    order = rng.permutation(len(candidates))
    c_mlip, c_emt = oracle.costs["chgnet"], oracle.costs["emt"]
    screens = int(min(len(candidates), max(0.0, (budget - c_emt) // c_mlip + 1e-9)))
    screened = [candidates[i] for i in order[:screens]]
    screened.sort(key=lambda p: oracle.value(p, "chgnet"))
    confirms = int((budget - screens * c_mlip) // c_emt + 1e-9)
    plan = [(p, "chgnet") for p in screened] + [(p, "emt") for p in screened[:confirms]]
    return _summarise_run(oracle, plan)


def _summarise_run(
    oracle: AlloyOracle, evaluations: Sequence[tuple[Mapping[str, Any], str]], extra_log: list | None = None
) -> dict[str, Any]:
    spent, best = 0.0, math.inf
    trace = []
    for parameters, method in evaluations:
        spent += oracle.costs[method]
        if method == "emt":
            best = min(best, oracle.value(parameters, "emt"))
        trace.append((spent, best))
    return {
        "cost_spent": spent,
        "best_emt": best,
        "regret": best - oracle.optimum("emt"),
        "emt_evaluations": sum(1 for _, m in evaluations if m == "emt"),
        "mlip_evaluations": sum(1 for _, m in evaluations if m == "chgnet"),
        "trace": trace,
        "evaluations": list(evaluations),
        "log": extra_log or [],
    }


def best_after(trace: Sequence[tuple[float, float]], cost: float) -> float:
    """Best EMT value found once at most ``cost`` units were spent (``inf`` before the first)."""
    found = [best for spent, best in trace if spent <= cost + 1e-9]
    return found[-1] if found else math.inf


def run_benchmarks(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    budgets: Sequence[float] = (100.0, 200.0, 300.0),
    table: Mapping[str, Any] | None = None,
    refit_every: int = 1,
) -> list[dict[str, Any]]:
    """Best true (EMT) formation energy found against cost spent, per strategy, budget and seed.

    Args:
        seeds: seeds of each run.
        budgets: cost budgets (EMT costs 20, CHGNet 1).
        table: the table (read from :data:`TABLE_PATH` if ``None``).
        refit_every: hyperparameter refit interval of the strategy.

    Returns:
        One JSON-ready row per (strategy, budget, seed): ``best_emt`` and ``regret``
        (eV/atom; regret against the best EMT value in the table; ``None`` when no
        EMT value was bought), whether the optimum was found, evaluations per
        method, cost spent, seconds, and the best found at half the budget.
    """
    oracle = AlloyOracle(table if table is not None else load_alloy_table())
    optimum = oracle.optimum("emt")
    worst = max(oracle.value(p, "emt") for p in oracle.candidates())
    runners = {
        "multifidelity": lambda b, s: replay_multifidelity(oracle, b, s, refit_every=refit_every),
        "emt_only_model": lambda b, s: replay_multifidelity(
            oracle, b, s, methods=("emt",), initial_design=2, refit_every=refit_every
        ),
        "emt_random": lambda b, s: replay_emt_random(oracle, b, s),
        "mlip_screen_confirm": lambda b, s: replay_mlip_screen_confirm(oracle, b, s),
    }
    rows = []
    for budget in budgets:
        for name, runner in runners.items():
            for seed in seeds:
                start = time.perf_counter()
                run = runner(budget, seed)
                rows.append(
                    {
                        "benchmark": "fcc_alloys_formation_energy",
                        "strategy": name,
                        "budget": budget,
                        "seed": seed,
                        "candidates": len(oracle),
                        "cost_spent": run["cost_spent"],
                        "best_emt": _finite(run["best_emt"]),
                        "regret": _finite(run["regret"]),
                        "found_optimum": bool(run["regret"] <= 1e-9),
                        "best_emt_at_half_budget": _finite(best_after(run["trace"], budget / 2)),
                        "emt_evaluations": run["emt_evaluations"],
                        "mlip_evaluations": run["mlip_evaluations"],
                        "optimum_emt": optimum,
                        "worst_regret": worst - optimum,
                        "seconds": time.perf_counter() - start,
                    }
                )
                logger.info("%s budget %g seed %d: regret %.4f", name, budget, seed, run["regret"])
    return rows


def _finite(value: float) -> float | None:
    """``value``, or ``None`` for infinity (nothing found), so that the rows are strict JSON."""
    return value if math.isfinite(value) else None


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Median regret, share of runs finding the optimum and median seconds per (strategy, budget).

    A run that bought no EMT value counts with the regret of the worst candidate.
    """
    groups: dict[tuple[str, float], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], row["budget"]), []).append(row)

    def regret(row: Mapping[str, Any]) -> float:
        return row["regret"] if row["regret"] is not None else row["worst_regret"]

    return [
        {
            "strategy": name,
            "budget": budget,
            "runs": len(group),
            "median_regret": statistics.median(regret(r) for r in group),
            "mean_regret": statistics.fmean(regret(r) for r in group),
            "found_optimum": sum(r["found_optimum"] for r in group) / len(group),
            "median_emt_evaluations": statistics.median(r["emt_evaluations"] for r in group),
            "median_seconds": statistics.median(r["seconds"] for r in group),
        }
        for (name, budget), group in groups.items()
    ]


def _budgets(text: str) -> list[float]:
    """Cost budgets from ``"100,200"``; ``ValueError`` unless all are positive numbers."""
    try:
        costs = [float(b) for b in text.split(",") if b.strip()]
    except ValueError:
        costs = []
    if not costs or any(not math.isfinite(c) or c <= 0 for c in costs):
        raise ValueError(f"--budgets: expected positive numbers separated by commas, not {text!r}")
    return costs


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Command-line entry point: one JSON line per (strategy, budget), or (re)compute a table.

    Args:
        argv: command-line arguments (``sys.argv[1:]`` if ``None``).

    Returns:
        The summary rows (none with ``--table``).
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="random32",
                        help="the stored calculations: random32 (the example campaign's random 32-atom cells) "
                             "or ordered4 (the demo's ordered 4-atom cells)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per strategy and budget")
    parser.add_argument("--budgets", default="100,200,300", help="comma-separated cost budgets (EMT costs 20)")
    parser.add_argument("--rows", action="store_true", help="also print every run's row")
    parser.add_argument("--table", action="store_true", help="compute or complete the table of calculations")
    args = parser.parse_args(argv)
    if args.cells not in TABLES:
        parser.error(f"--cells: unknown {args.cells!r}; choose from {', '.join(TABLES)}")
    if args.seeds < 1:
        parser.error(f"--seeds: at least 1, not {args.seeds}")
    try:
        budgets = _budgets(args.budgets)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    configure_threads(1)  # small dense algebra: one thread is fastest on a shared machine
    if args.table:
        path, cell = TABLES[args.cells]
        compute_alloy_table(path, **cell)
        return []
    rows = run_benchmarks(seeds=range(args.seeds), budgets=budgets, table=load_alloy_table(args.cells))
    summary = summarise(rows)
    for row in (rows if args.rows else []) + summary:
        sys.stdout.write(json.dumps(row) + "\n")
    return summary


if __name__ == "__main__":
    main()
