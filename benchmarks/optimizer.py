"""Study: the strategies on problems with known optima (``python -m benchmarks.optimizer``).

Runs each strategy sequentially (one proposal per evaluation, noiseless
evaluations) from several seeds, and reports the median and interquartile range
of the best value found after given numbers of evaluations, with the wall-clock
seconds per proposal; plus the time of one BO proposal with 100 observations in
six dimensions.

Seeds may run in parallel processes (``workers``), but the machine's cores are
shared: with ``workers > 1`` the seconds per proposal are inflated by
contention, so :func:`run_benchmarks` can re-time a single seed alone
(``quiet_timing``) and reports both figures.

Usage, from the root of a clone (one JSON line per figure, then a table on standard error)::

    python -m benchmarks.optimizer --seeds 10 --workers 2
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import PROBLEMS, Hartmann6, get_problem
from labweave.optimizer.strategies import get_strategy

logger = logging.getLogger(__name__)

#: The default BO configuration, as benchmarked: the strategy's defaults for
#: exact (noiseless) evaluations.
DEFAULT_BO_SETTINGS: dict[str, Any] = {"noiseless": True}


def run_trace(
    problem: str,
    strategy: str,
    seed: int,
    evaluations: int,
    settings: Mapping[str, Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Run one sequential optimisation and record its progress.

    Args:
        problem: problem name (``hartmann6``, ``branin``).
        strategy: strategy name (``bayesian``, ``random``).
        seed: seed of the strategy (and of the problem's noise).
        evaluations: number of evaluations.
        settings: strategy settings besides the seed.

    Returns:
        The best value of the first objective after each evaluation, and the
        wall-clock seconds of each proposal.
    """
    bench = get_problem(problem, seed=seed)
    chosen = get_strategy(
        strategy, {**(settings or {}), "seed": seed}, space=bench.space, objectives=bench.objectives
    )
    name = bench.objectives[0].name
    observations: list[tuple[dict[str, Any], dict[str, float]]] = []
    best: list[float] = []
    seconds: list[float] = []
    pick = max if bench.maximize else min
    for _ in range(evaluations):
        start = time.perf_counter()
        (proposal,) = chosen.propose(observations, pending=[], n=1)
        seconds.append(time.perf_counter() - start)
        (values,) = bench.evaluate([proposal.parameters])
        observations.append((proposal.parameters, values))
        best.append(values[name] if not best else pick(best[-1], values[name]))
    return best, seconds


def _run_trace_job(args: tuple[str, str, int, int, dict[str, Any]]) -> tuple[list[float], list[float]]:
    return run_trace(*args)


def time_bo_proposal(observations: int = 100, dim: int = 6, repeats: int = 3, seed: int = 0) -> float:
    """Seconds for one default BO proposal given ``observations`` points in ``dim``-D.

    The data are Sobol points of Hartmann6 (``dim`` must be 6), so the GP fit and
    the acquisition landscape are realistic.

    Args:
        observations: number of observations.
        dim: dimension (6).
        repeats: proposals timed (a fresh strategy each time: no warm start); the median is returned.
        seed: seed of the points.

    Returns:
        Median wall-clock seconds of one proposal.
    """
    if dim != 6:
        raise ValueError(f"dim: only 6 (Hartmann6) is available, got {dim}")
    bench = Hartmann6()
    points = bench.space.sample_points(observations, seed=seed)
    observed = list(zip(points, bench.evaluate(points)))
    times = []
    for r in range(repeats):
        strategy = get_strategy(
            "bayesian", {**DEFAULT_BO_SETTINGS, "seed": r}, space=bench.space, objectives=bench.objectives
        )
        start = time.perf_counter()
        strategy.propose(observed, n=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_benchmarks(
    seeds: int = 10,
    problems: Sequence[str] = ("hartmann6", "branin"),
    evaluations: Sequence[int] = (20, 50),
    strategies: Sequence[str] = ("bayesian", "random"),
    workers: int = 1,
    quiet_timing: bool = True,
    proposal_100x6: bool = True,
    bo_settings: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Benchmark strategies over seeds.

    Args:
        seeds: number of seeds (0 .. seeds - 1).
        problems: problem names.
        evaluations: evaluation counts at which to report the best value.
        strategies: strategy names; ``bayesian`` runs with :data:`DEFAULT_BO_SETTINGS`
            updated by ``bo_settings``.
        workers: parallel processes for the seeds.
        quiet_timing: with ``workers > 1``, re-run seed 0 of each BO problem alone
            and report its seconds per proposal as ``s_per_proposal`` (the parallel
            figure stays in ``s_per_proposal_parallel``).
        proposal_100x6: add a row timing one BO proposal with 100 observations in 6-D.
        bo_settings: overrides of the BO settings.

    Returns:
        One dict per (problem, strategy, evaluations) with keys ``problem``,
        ``strategy``, ``seeds``, ``evaluations``, ``median_best``, ``iqr_best``
        (``[q25, q75]``), ``optimum``, ``s_per_proposal``; then, if asked, a row
        with ``problem = "bo_proposal_100x6"`` and its ``s_per_proposal``.
    """
    budget = max(evaluations)
    settings = {**DEFAULT_BO_SETTINGS, **(bo_settings or {})}
    rows: list[dict[str, Any]] = []
    for problem in problems:
        optimum = get_problem(problem).optimal_value
        for strategy in strategies:
            config = settings if strategy == "bayesian" else {}
            jobs = [(problem, strategy, seed, budget, dict(config)) for seed in range(seeds)]
            traces = _map(jobs, workers)
            per_proposal = float(np.mean([t for _, seconds in traces for t in seconds]))
            parallel = None
            if workers > 1 and quiet_timing and strategy == "bayesian":
                parallel = per_proposal
                _, seconds = run_trace(problem, strategy, 0, budget, config)
                per_proposal = float(np.mean(seconds))
            for n in evaluations:
                bests = np.array([best[n - 1] for best, _ in traces])
                q25, median, q75 = np.percentile(bests, [25, 50, 75])
                row = {
                    "problem": problem,
                    "strategy": strategy,
                    "seeds": seeds,
                    "evaluations": n,
                    "median_best": float(median),
                    "iqr_best": [float(q25), float(q75)],
                    "optimum": optimum,
                    "s_per_proposal": per_proposal,
                }
                if parallel is not None:
                    row["s_per_proposal_parallel"] = parallel
                rows.append(row)
                logger.info("%s %s n=%d median best %.4f", problem, strategy, n, median)
    if proposal_100x6:
        rows.append(
            {
                "problem": "bo_proposal_100x6",
                "strategy": "bayesian",
                "seeds": 3,
                "evaluations": 100,
                "median_best": None,
                "iqr_best": None,
                "optimum": None,
                "s_per_proposal": time_bo_proposal(),
            }
        )
    return rows


def _map(jobs: list[tuple[str, str, int, int, dict[str, Any]]], workers: int) -> list[tuple[list[float], list[float]]]:
    if workers <= 1:
        return [_run_trace_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_run_trace_job, jobs))


def render_table(rows: Iterable[Mapping[str, Any]], title: str = "labweave optimizer benchmark") -> Any:
    """Render benchmark rows as a ``rich`` table.

    Args:
        rows: rows from :func:`run_benchmarks`.
        title: table title.

    Returns:
        A ``rich.table.Table``.
    """
    from rich.table import Table

    table = Table(title=title)
    for column in ("problem", "strategy", "seeds", "evals", "median best", "IQR", "optimum", "s/proposal"):
        table.add_column(column, justify="left" if column in ("problem", "strategy") else "right")
    for row in rows:
        median = row.get("median_best")
        iqr = row.get("iqr_best")
        seconds = f"{row['s_per_proposal']:.3f}" if row.get("s_per_proposal") is not None else "—"
        if row.get("s_per_proposal_parallel") is not None:
            seconds += f" ({row['s_per_proposal_parallel']:.3f} in parallel)"
        table.add_row(
            row["problem"],
            row["strategy"],
            str(row["seeds"]),
            str(row["evaluations"]),
            "—" if median is None else f"{median:.4f}",
            "—" if iqr is None else f"[{iqr[0]:.4f}, {iqr[1]:.4f}]",
            "—" if row.get("optimum") is None else f"{row['optimum']:g}",
            seconds,
        )
    return table


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Command-line entry point: run the study, print one JSON line per row and the table.

    Args:
        argv: command-line arguments (``sys.argv[1:]`` if ``None``).

    Returns:
        The rows.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per problem and strategy")
    parser.add_argument("--problems", nargs="+", default=["hartmann6", "branin"])
    parser.add_argument("--evaluations", nargs="+", type=int, default=[20, 50],
                        help="evaluation counts at which the best value is reported")
    parser.add_argument("--strategies", nargs="+", default=["bayesian", "random"])
    parser.add_argument("--workers", type=int, default=1, help="parallel processes for the seeds")
    parser.add_argument("--no-proposal-timing", action="store_true",
                        help="skip the timing of one BO proposal with 100 observations in 6-D")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: at least 1, not {args.seeds}")
    if min(args.evaluations) < 1:
        parser.error(f"--evaluations: positive counts, not {args.evaluations}")
    unknown = [name for name in args.problems if name not in PROBLEMS]
    if unknown:
        parser.error(f"--problems: unknown {', '.join(unknown)}; choose from {', '.join(PROBLEMS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rows = run_benchmarks(
        seeds=args.seeds,
        problems=args.problems,
        evaluations=args.evaluations,
        strategies=args.strategies,
        workers=args.workers,
        proposal_100x6=not args.no_proposal_timing,
    )
    for row in rows:
        sys.stdout.write(json.dumps(row) + "\n")
    from rich.console import Console

    Console(stderr=True).print(render_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
