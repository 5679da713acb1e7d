"""The optimizer study: BO against random search on problems with known optima, and its command."""

from __future__ import annotations

import json
import statistics

import pytest

from benchmarks.optimizer import main, run_trace
from benchmarks.problems import Branin


def test_bo_beats_random_search_on_branin_at_20_evaluations() -> None:
    """Three fixed seeds: the median best of BO is far below that of random search."""
    bo, rnd = [], []
    for seed in range(3):
        best, _ = run_trace("branin", "bayesian", seed, 20, {"noiseless": True})
        bo.append(best[-1])
        best, _ = run_trace("branin", "random", seed, 20)
        rnd.append(best[-1])
    assert statistics.median(bo) < 0.6 < statistics.median(rnd)
    assert statistics.median(bo) - Branin.optimal_value < 0.2 * (statistics.median(rnd) - Branin.optimal_value)


def test_command_prints_a_json_line_per_row_and_refuses_unknown_problems(capsys):
    rows = main(["--seeds", "2", "--problems", "branin", "--evaluations", "3", "5", "--no-proposal-timing"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == rows
    assert [(r["strategy"], r["evaluations"]) for r in rows] == [("bayesian", 3), ("bayesian", 5),
                                                                  ("random", 3), ("random", 5)]
    for row in rows:
        assert row["problem"] == "branin" and row["seeds"] == 2 and row["optimum"] == Branin.optimal_value
        low, high = row["iqr_best"]
        assert Branin.optimal_value <= low <= row["median_best"] <= high and row["s_per_proposal"] > 0
    with pytest.raises(SystemExit) as stop:
        main(["--problems", "rosenbrock"])
    assert stop.value.code == 2 and "--problems: unknown rosenbrock; choose from hartmann6, branin, formulation" in \
        capsys.readouterr().err
