"""Study: the alloy search against DFT (PBE) as the truth, at CPU-second budgets (``python -m benchmarks.alloy_study``).

The pool is every ordered 4-atom fcc alloy cell present in the stored DFT
table (``fcc_alloys_dft_pbe_ordered4.json``, written by
``python -m benchmarks.alloy_dft_table``; binaries first, so a partial table
is a pool of binaries) that the CHGNet table of the same cells
(``fcc_alloys_emt_chgnet_ordered.json``) also holds; ``--max-components 2``
keeps the binaries only. The truth is the DFT mixing energy; the fidelities
are CHGNet (cheap) and DFT (the target). Every evaluation costs the CPU
seconds its calculation recorded, per candidate and method, and a run ends at
the first evaluation that would take it past its budget. Budgets are given as
multiples of the pool's median DFT cost ("DFT equivalents") and printed in CPU
seconds.

Searches, each spending the same budget:

- ``multifidelity``: the cost-aware strategy of
  :mod:`labweave.optimizer.strategies.multifidelity` with its defaults
  (co-kriging, its scale basis chosen by leave-one-out on what it has seen,
  augmented expected improvement per cost);
- ``multifidelity_multitask``: the same strategy on BoTorch's ``MultiTaskGP``;
- ``multifidelity_entropy``: BoTorch's ``MultiTaskGP`` with multi-fidelity
  max-value entropy per cost;
- ``dft_random``: DFT on candidates drawn at random;
- ``screen_confirm``: CHGNet on candidates drawn at random while the screens
  stay within :data:`SCREEN_FRACTION` of the budget, then DFT on the
  best-screened candidates in CHGNet's order with the rest;
- ``multifidelity_learning`` (with ``--learning``): ``multifidelity`` with the
  learning MLIP of :mod:`benchmarks.alloy_learning`: CHGNet fine-tuned on the
  search's DFT results after every ``--learning-every`` new ones, each
  fine-tuning's CPU seconds charged to the budget, later screens by the
  fine-tuned committee (its variance the observation's noise). The
  fine-tunings are stored in ``--learning-cache`` keyed by their training
  cells, so a rerun trains nothing again.

The strategies know each fidelity's cost only as the campaign does, from the
cost model fitted to ``optimizer/campaigns/fidelity_costs.json`` (a 4-atom
cell), and learn each spent evaluation's measured cost from its result
(``cost_value``). The cheap fidelity's values come from a table of the
EMT/CHGNet format (``--cheap``, ``--cheap-method``): a fine-tuned potential's
table can replace CHGNet's, and a record's ``formation_energy_per_atom_variance``
(a committee's variance, eV^2/atom^2) then enters the model as that
observation's own noise.

This study may import the drivers' data; the strategies may not.

Usage, from the root of a clone::

    python -m benchmarks.alloy_study                          # 20 seeds at 5, 10, 20 DFT equivalents
    python -m benchmarks.alloy_study --seeds 5 --budgets 10   # quicker
    python -m benchmarks.alloy_study --max-components 2       # binaries only
    python -m benchmarks.alloy_study --seeds 3 --searches multifidelity --learning   # with the learning MLIP
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labweave.optimizer.costs import CostModel, CostRecord
from labweave.optimizer.pools import ExplicitPool
from labweave.optimizer.strategies.multifidelity import MultiFidelitySettings, MultiFidelityStrategy
from labweave.services.process import configure_threads

from benchmarks.alloy_learning import DEFAULT_CACHE, DEFAULT_EVERY, LearningMlip, Prediction
from benchmarks.fidelity import FORMATION_ENERGY, AlloyCandidates, alloy_space, composition_key

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The truth: DFT (PBE) results of the ordered 4-atom cells.
DFT_TABLE = DATA_DIR / "fcc_alloys_dft_pbe_ordered4.json"
#: The cheap fidelity: CHGNet (and EMT) results of the same cells.
CHEAP_TABLE = DATA_DIR / "fcc_alloys_emt_chgnet_ordered.json"
#: The measured costs the campaign's cost model is fitted to (what the strategy knows before it starts).
COST_RECORDS = Path(__file__).resolve().parent.parent / "optimizer" / "campaigns" / "fidelity_costs.json"
#: The property searched.
QUANTITY = "formation_energy_per_atom"
#: The value of a cheap record holding its own noise variance, when the cheap method reports one.
VARIANCE_KEY = "formation_energy_per_atom_variance"
#: The share of the budget screen-then-confirm spends on screens.
SCREEN_FRACTION = 0.1
#: Budgets in DFT equivalents (multiples of the pool's median DFT cost).
DEFAULT_BUDGETS: tuple[float, ...] = (5.0, 10.0, 20.0)
#: The strategy's hyperparameter refit interval in the study (see the README's profile).
REFIT_EVERY = 4
#: The value of an observation the strategy reads its measured cost from.
COST_VALUE = "cost_cpu_seconds"
NOISE_VALUE = "noise_variance"


@dataclass(frozen=True)
class Evaluation:
    """One tabulated calculation: the property, its CPU seconds and its own noise variance (0 if none)."""

    value: float
    cpu_seconds: float
    variance: float = 0.0


class StudyTable(AlloyCandidates):
    """The pool and its calculations: the cheap method's and DFT's, per candidate.

    Args:
        dft: the DFT table (``{"settings", "entries": [{"composition", "dft": result}]}``).
        cheap: a table of the EMT/CHGNet format holding ``cheap_method`` for the same cells.
        cheap_method: the cheap fidelity's method (``chgnet``).
        max_components: keep alloys of at most this many elements.

    Raises:
        ValueError: naming ``dft`` when no candidate of it has a cheap record.
    """

    def __init__(
        self,
        dft: Mapping[str, Any],
        cheap: Mapping[str, Any],
        cheap_method: str = "chgnet",
        max_components: int = 3,
    ) -> None:
        self.methods: tuple[str, str] = (cheap_method, "dft")
        cheap_by_key = {composition_key(e["composition"]): e[cheap_method] for e in cheap["entries"]
                        if cheap_method in e}
        compositions: list[dict[str, float]] = []
        self.entries: dict[str, Mapping[str, Any]] = {}
        self._calcs: dict[str, dict[str, Evaluation]] = {}
        for entry in dft["entries"]:
            composition = {e: float(x) for e, x in entry["composition"].items() if x > 0}
            key = composition_key(composition)
            if len(composition) > max_components or key not in cheap_by_key or key in self._calcs:
                continue
            low, top = cheap_by_key[key], entry["dft"]
            compositions.append(composition)
            self.entries[key] = entry
            self._calcs[key] = {
                cheap_method: Evaluation(float(low[QUANTITY]), float(low["cost_cpu_seconds"]),
                                         float(low.get(VARIANCE_KEY, 0.0))),
                "dft": Evaluation(float(top[QUANTITY]), float(top["cost_cpu_seconds"])),
            }
        if not self._calcs:
            raise ValueError("dft: no candidate of the DFT table has a record of the cheap method")
        super().__init__(dft["settings"]["elements"], compositions)
        ranking = sorted(self._calcs, key=lambda k: self._calcs[k]["dft"].value)
        self.rank = {k: i for i, k in enumerate(ranking)}
        self.optimum = self._calcs[ranking[0]]["dft"].value
        self.worst = self._calcs[ranking[-1]]["dft"].value
        self.median_dft_seconds = statistics.median(c["dft"].cpu_seconds for c in self._calcs.values())

    def evaluation(self, parameters: Mapping[str, Any], method: str) -> Evaluation:
        """The tabulated calculation of a candidate by a method.

        Raises:
            KeyError: naming the composition or method missing from the table.
        """
        return self._calcs[self.key(parameters)][method]

    def dft_value(self, key: str) -> float:
        """The DFT value of a candidate by its composition key."""
        return self._calcs[key]["dft"].value

    def best(self, k: int = 1) -> list[str]:
        """Keys of the ``k`` candidates of lowest DFT value."""
        return sorted(self.rank, key=self.rank.__getitem__)[:k]


def load_study_table(
    dft_path: Path = DFT_TABLE, cheap_path: Path = CHEAP_TABLE, cheap_method: str = "chgnet", max_components: int = 3
) -> StudyTable:
    """Read the two tables into a :class:`StudyTable`.

    Raises:
        FileNotFoundError: naming the command that writes a missing table.
    """
    if not dft_path.exists():
        raise FileNotFoundError(f"{dft_path.name}: not computed yet; run python -m benchmarks.alloy_dft_table")
    if not cheap_path.exists():
        raise FileNotFoundError(f"{cheap_path.name}: run python -m benchmarks.fidelity --table --cells ordered4")
    dft = json.loads(dft_path.read_text(encoding="utf-8"))
    cheap = json.loads(cheap_path.read_text(encoding="utf-8"))
    return StudyTable(dft, cheap, cheap_method, max_components)


def nominal_costs(methods: Sequence[str], records: Path = COST_RECORDS, atoms: int = 4) -> dict[str, float]:
    """What each method is expected to cost before the search starts: the campaign's cost model.

    The power law of :class:`~labweave.optimizer.costs.CostModel` fitted to the
    campaign's measured records, for a cell of ``atoms`` atoms at the median
    k-points measured for that size (as ``materials-dft.toml`` prices its fidelities).
    A method without records (a fine-tuned potential) is priced as CHGNet.
    """
    data = [CostRecord.model_validate(r) for r in json.loads(records.read_text(encoding="utf-8"))]
    model = CostModel(data)
    costs = {}
    for method in methods:
        priced = method if method in model.methods else "chgnet"
        kpoints = [r.kpoints for r in data if r.method == priced and r.n_atoms == atoms] or [1]
        costs[method] = model.seconds(priced, atoms, int(statistics.median(kpoints)))
    return costs


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    """What a search bought: ``(parameters, method)`` in order, and what they cost."""

    table: StudyTable
    budget: float
    evaluations: list[tuple[dict[str, Any], str]]
    spent: float = 0.0
    #: CPU seconds of the MLIP's fine-tunings (in ``spent``), and how many there were.
    fine_tuning_seconds: float = 0.0
    fine_tunings: int = 0
    #: ``spent`` right after each evaluation, in order.
    spent_after: list[float] = field(default_factory=list)

    def buy(self, parameters: Mapping[str, Any], method: str, calc: Evaluation | None = None) -> Evaluation | None:
        """Evaluate if the cost fits the budget left; ``None`` (the run is over) if not.

        ``calc`` replaces the table's calculation (a fine-tuned MLIP's screen).
        """
        calc = calc or self.table.evaluation(parameters, method)
        if self.spent + calc.cpu_seconds > self.budget + 1e-9:
            return None
        self.spent += calc.cpu_seconds
        self.evaluations.append((dict(parameters), method))
        self.spent_after.append(self.spent)
        return calc

    def fine_tune(self, cpu_seconds: float) -> bool:
        """Charge a fine-tuning if it fits the budget left; ``False`` (not run) if not."""
        if self.spent + cpu_seconds > self.budget + 1e-9:
            return False
        self.spent += cpu_seconds
        self.fine_tuning_seconds += cpu_seconds
        self.fine_tunings += 1
        return True

    def summary(self) -> dict[str, Any]:
        """Regret (meV/atom) of the best DFT value bought, its rank, evaluations and CPU seconds (in all,
        and spent when that best value was bought)."""
        confirmed = [self.table.key(p) for p, m in self.evaluations if m == "dft"]
        best = min(confirmed, key=self.table.rank.__getitem__) if confirmed else None
        value = self.table.dft_value(best) if best else self.table.worst
        found = next((i for i, (p, m) in enumerate(self.evaluations) if m == "dft" and self.table.key(p) == best), None)
        return {
            "regret_mev": 1000.0 * (value - self.table.optimum),
            "rank": self.table.rank[best] if best else len(self.table),
            "best": best,
            "dft_evaluations": len(confirmed),
            "cheap_evaluations": len(self.evaluations) - len(confirmed),
            "cpu_seconds": self.spent,
            "cpu_seconds_to_best": self.spent_after[found] if found is not None else None,
            "fine_tunings": self.fine_tunings,
            "fine_tuning_cpu_seconds": self.fine_tuning_seconds,
        }


def run_strategy(table: StudyTable, budget: float, seed: int, learning: LearningMlip | None = None,
                 **settings: Any) -> Run:
    """Replay the multi-fidelity strategy on the table until it stops or its next evaluation does not fit.

    With ``learning``, the campaign's plan decides when the MLIP is fine-tuned on every DFT result so
    far (:mod:`benchmarks.alloy_learning`); one is asked for only while the budget left covers the
    last one's CPU seconds, and run only if its own fit. As the optimizer daemon does, the run is
    charged its CPU seconds and the strategy is told them (``spent_elsewhere``); later screens read
    the fine-tuned committee's predictions, its variance as the observation's noise; screens by a
    superseded model (the pretrained one included) leave the strategy's observations, their CPU
    seconds moving to ``spent_elsewhere``, and the strategy screens again where it still wants to.
    """
    costs = nominal_costs(table.methods)
    labels = {table.methods[0]: "MLIP screen", "dft": "DFT (PBE) confirm"}
    options: dict[str, Any] = {
        "seed": seed,
        "budget": budget,
        "fidelities": [{"method": m, "cost": costs[m], "label": labels[m]} for m in table.methods],
        "pool": ExplicitPool(points=table.candidates()),
        "objective_unit": "eV/atom",
        "refit_every": REFIT_EVERY,
        "cost_value": COST_VALUE,
        **settings,
    }
    if options.get("model", "cokriging") == "cokriging":
        options.setdefault("noise_value", NOISE_VALUE)
    strategy = MultiFidelityStrategy(
        alloy_space(table.elements, table.methods), [FORMATION_ENERGY], MultiFidelitySettings(**options)
    )
    run = Run(table, budget, [])
    observations: list[tuple[dict[str, Any], dict[str, float]]] = []
    confirmed: list[str] = []
    trained_on = 0
    mlip: Prediction | None = None
    last_fine_tuning = 0.0
    while True:
        proposals = strategy.propose(observations, pending=[], n=1)
        if not proposals:
            return run
        parameters = proposals[0].parameters
        method = str(parameters["method"])
        calc = run.buy(parameters, method, _screen(table, parameters, mlip) if method != "dft" else None)
        if calc is None:
            return run
        values = {FORMATION_ENERGY.name: calc.value, COST_VALUE: calc.cpu_seconds}
        if calc.variance > 0:
            values[NOISE_VALUE] = calc.variance
        observations.append((parameters, values))
        if method == "dft":
            confirmed.append(table.key(parameters))
        if (learning is not None and learning.plan.due(len(confirmed), trained_on)
                and run.budget - run.spent >= last_fine_tuning):
            prediction = learning.predict(confirmed)
            trained_on = len(confirmed)
            last_fine_tuning = prediction.fine_tuning_cpu_seconds
            if run.fine_tune(prediction.fine_tuning_cpu_seconds):
                mlip = prediction
                superseded = [o for o in observations if o[0]["method"] != "dft"]
                observations = [o for o in observations if o[0]["method"] == "dft"]
                strategy.spent_elsewhere += prediction.fine_tuning_cpu_seconds + sum(
                    v[COST_VALUE] for _, v in superseded)


def _screen(table: StudyTable, parameters: Mapping[str, Any], mlip: Prediction | None) -> Evaluation | None:
    """A screen by the fine-tuned committee: its mean and variance, the recorded CHGNet cost per member;
    ``None`` (the table's pretrained screen) before any fine-tuning."""
    if mlip is None:
        return None
    key = table.key(parameters)
    recorded = table.evaluation(parameters, table.methods[0]).cpu_seconds
    return Evaluation(mlip.mean[key], mlip.committee * recorded, mlip.variance[key])


def run_dft_random(table: StudyTable, budget: float, seed: int) -> Run:
    """DFT on candidates in a seeded random order until the next one does not fit."""
    candidates = table.candidates()
    run = Run(table, budget, [])
    for i in np.random.default_rng(seed).permutation(len(candidates)):
        if run.buy(candidates[i], "dft") is None:
            break
    return run


def run_screen_confirm(table: StudyTable, budget: float, seed: int, fraction: float = SCREEN_FRACTION) -> Run:
    """Screen a seeded random subset with the cheap method within ``fraction`` of the budget, then DFT
    on the screened candidates from the best screened value on, until the next one does not fit."""
    cheap = table.methods[0]
    candidates = table.candidates()
    screening = Run(table, fraction * budget, [])
    for i in np.random.default_rng(seed).permutation(len(candidates)):
        if screening.buy(candidates[i], cheap) is None:
            break
    run = Run(table, budget, list(screening.evaluations), screening.spent, spent_after=list(screening.spent_after))
    screened = sorted((p for p, _ in screening.evaluations), key=lambda p: table.evaluation(p, cheap).value)
    for parameters in screened:
        if run.buy(parameters, "dft") is None:
            break
    return run


#: The searches of the study, by name (``multifidelity_learning`` runs with ``--learning``).
SEARCHES: dict[str, Callable[[StudyTable, float, int], Run]] = {
    "multifidelity": lambda t, b, s: run_strategy(t, b, s),
    "multifidelity_multitask": lambda t, b, s: run_strategy(t, b, s, model="multitask"),
    "multifidelity_entropy": lambda t, b, s: run_strategy(t, b, s, model="multitask", acquisition="entropy"),
    "dft_random": run_dft_random,
    "screen_confirm": run_screen_confirm,
}
#: The multi-fidelity search with the learning MLIP (it needs the fine-tunings' cache: ``--learning``).
LEARNING_SEARCH = "multifidelity_learning"


def run_study(
    table: StudyTable,
    seeds: Sequence[int],
    budgets_dft: Sequence[float] = DEFAULT_BUDGETS,
    searches: Sequence[str] = tuple(SEARCHES),
    learning: LearningMlip | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (search, budget, seed).

    Args:
        table: the pool and its calculations.
        seeds: seeds of each search.
        budgets_dft: budgets in DFT equivalents (multiples of the pool's median DFT CPU seconds).
        searches: names of :data:`SEARCHES`, or :data:`LEARNING_SEARCH` (with ``learning``).
        learning: the learning MLIP of :data:`LEARNING_SEARCH`.
        on_row: called with each row as soon as its run is done.

    Returns:
        JSON-ready rows with the budget in CPU seconds, the run's summary and its wall seconds.
    """
    rows = []
    for multiple in budgets_dft:
        budget = multiple * table.median_dft_seconds
        for name in searches:
            for seed in seeds:
                start = time.perf_counter()
                if name == LEARNING_SEARCH:
                    if learning is None:
                        raise ValueError(f"searches: {LEARNING_SEARCH} needs the learning MLIP")
                    run = run_strategy(table, budget, seed, learning=learning)
                else:
                    run = SEARCHES[name](table, budget, seed)
                rows.append({"search": name, "budget_dft": multiple, "budget_cpu_seconds": budget, "seed": seed,
                             **run.summary(), "wall_seconds": time.perf_counter() - start})
                logger.info("%s %g DFT seed %d: regret %.1f meV/atom", name, multiple, seed, rows[-1]["regret_mev"])
                if on_row is not None:
                    on_row(rows[-1])
    return rows


def summarise(rows: Sequence[Mapping[str, Any]], pool: int) -> list[dict[str, Any]]:
    """Per (search, budget): median and interquartile range of the regret (meV/atom), the share of seeds
    whose best DFT value is the pool's best and one of its best three, CPU and wall seconds."""
    groups: dict[tuple[str, float], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["search"], row["budget_dft"]), []).append(row)
    out = []
    for (name, multiple), group in groups.items():
        regret = np.array([r["regret_mev"] for r in group])
        q1, q3 = np.percentile(regret, [25, 75])
        out.append({
            "search": name,
            "budget_dft": multiple,
            "budget_cpu_seconds": round(group[0]["budget_cpu_seconds"], 1),
            "pool": pool,
            "seeds": len(group),
            "median_regret_mev": round(float(np.median(regret)), 2),
            "iqr_regret_mev": [round(float(q1), 2), round(float(q3), 2)],
            "found_best": sum(r["rank"] == 0 for r in group) / len(group),
            "found_top3": sum(r["rank"] < 3 for r in group) / len(group),
            "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in group), 1),
            "median_cpu_seconds_to_best": _median_or_none(r.get("cpu_seconds_to_best") for r in group),
            "median_dft_evaluations": statistics.median(r["dft_evaluations"] for r in group),
            "median_cheap_evaluations": statistics.median(r["cheap_evaluations"] for r in group),
            "median_fine_tunings": statistics.median(r.get("fine_tunings", 0) for r in group),
            "median_fine_tuning_cpu_seconds": round(
                statistics.median(r.get("fine_tuning_cpu_seconds", 0.0) for r in group), 1),
            "wall_seconds": round(sum(r["wall_seconds"] for r in group), 2),
        })
    return out


def _median_or_none(values: Iterable[float | None]) -> float | None:
    """The median of the values given (``None`` where there are none), to 0.1."""
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def _positive_numbers(text: str, option: str) -> list[float]:
    try:
        numbers = [float(b) for b in text.split(",") if b.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(not math.isfinite(b) or b <= 0 for b in numbers):
        raise ValueError(f"{option}: expected positive numbers separated by commas, not {text!r}")
    return numbers


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Command-line entry point: a line describing the pool, then one JSON line per (search, budget).

    Returns:
        The summary rows.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alloy_study", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per search and budget (default 20)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed (default 0): split a study's seeds between processes")
    parser.add_argument("--budgets", default=",".join(f"{b:g}" for b in DEFAULT_BUDGETS),
                        help="budgets in DFT equivalents, multiples of the pool's median DFT CPU seconds")
    parser.add_argument("--searches", default=",".join(SEARCHES), help=f"comma-separated, of {', '.join(SEARCHES)}")
    parser.add_argument("--max-components", type=int, default=3, choices=(2, 3), help="2: binaries only")
    parser.add_argument("--dft-table", type=Path, default=DFT_TABLE, help="the DFT (truth) table")
    parser.add_argument("--cheap", type=Path, default=CHEAP_TABLE, help="the cheap fidelity's table")
    parser.add_argument("--cheap-method", default="chgnet", help="the cheap fidelity's method in that table")
    parser.add_argument("--rows", action="store_true", help="also print every run's row, as soon as it is done")
    parser.add_argument("--learning", action="store_true",
                        help=f"also run {LEARNING_SEARCH}: the search with CHGNet fine-tuned on its DFT results")
    parser.add_argument("--learning-every", type=int, default=DEFAULT_EVERY,
                        help=f"new DFT results between two fine-tunings (default {DEFAULT_EVERY})")
    parser.add_argument("--learning-cache", type=Path, default=DEFAULT_CACHE,
                        help="where the fine-tuned predictions are kept, keyed by the training cells")
    args = parser.parse_args(argv)
    if args.learning_every < 1:
        parser.error(f"--learning-every: at least 1, not {args.learning_every}")
    if args.seeds < 1:
        parser.error(f"--seeds: at least 1, not {args.seeds}")
    if args.first_seed < 0:
        parser.error(f"--first-seed: at least 0, not {args.first_seed}")
    try:
        budgets = _positive_numbers(args.budgets, "--budgets")
    except ValueError as error:
        parser.error(str(error))
    searches = [s.strip() for s in args.searches.split(",") if s.strip()]
    unknown = [s for s in searches if s not in SEARCHES]
    if unknown or not searches:
        parser.error(f"--searches: unknown {unknown}; choose from {', '.join(SEARCHES)}")
    if args.learning:
        searches.append(LEARNING_SEARCH)
    try:
        table = load_study_table(args.dft_table, args.cheap, args.cheap_method, args.max_components)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    configure_threads(1)  # small dense algebra: one thread is fastest on a shared machine
    learning = LearningMlip(table.entries, args.learning_cache, {"every": args.learning_every}) if args.learning else None
    head = {
        "pool": len(table),
        "best": table.best(3),
        "optimum_ev_per_atom": table.optimum,
        "median_dft_cpu_seconds": round(table.median_dft_seconds, 1),
        "budgets_cpu_seconds": {f"{b:g}": round(b * table.median_dft_seconds, 1) for b in budgets},
        "nominal_costs": {m: round(c, 3) for m, c in nominal_costs(table.methods).items()},
    }
    sys.stdout.write(json.dumps(head) + "\n")
    start = time.perf_counter()
    def write(row: Mapping[str, Any]) -> None:
        sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows = run_study(table, seeds, budgets, searches, learning, write if args.rows else None)
    summary = summarise(rows, len(table))
    for row in summary:
        write(row)
    sys.stdout.write(json.dumps({"wall_seconds": round(time.perf_counter() - start, 1)}) + "\n")
    return summary


if __name__ == "__main__":
    main()
