"""The fidelity study: its stored EMT and CHGNet calculations, the multi-fidelity search against the
baselines on them, and its command (``python -m benchmarks.fidelity``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import fidelity as bench

BUDGET = 200.0


@pytest.fixture(scope="module")
def oracle() -> bench.AlloyOracle:
    return bench.AlloyOracle(bench.load_alloy_table())


def test_table_holds_real_calculations_of_every_candidate(oracle):
    assert len(oracle) == 168
    table = bench.load_alloy_table()
    for entry in table["entries"]:
        for method in ("emt", "chgnet"):
            assert entry[method]["converged"], (entry["composition"], method)
            assert entry[method]["cost_cpu_seconds"] > 0
    with_al = np.array(["Al" in e["composition"] for e in table["entries"]])
    emt = np.array([e["emt"]["formation_energy_per_atom"] for e in table["entries"]])
    mlip = np.array([e["chgnet"]["formation_energy_per_atom"] for e in table["entries"]])
    # CHGNet tracks EMT for the late transition and noble metals, not once aluminium is present
    assert np.corrcoef(emt[~with_al], mlip[~with_al])[0, 1] > 0.8
    assert abs(np.corrcoef(emt[with_al], mlip[with_al])[0, 1]) < 0.3
    # so the cheapest screen's favourite is not the reference's
    assert "Al" in oracle.ranking("chgnet")[0] and "Al" not in oracle.ranking("emt")[0]

def test_multifidelity_beats_emt_random_and_mlip_screen_then_confirm(oracle):
    seeds = range(5)
    regret = {"multifidelity": [], "emt_random": [], "mlip_screen_confirm": []}
    for seed in seeds:
        regret["multifidelity"].append(bench.replay_multifidelity(oracle, BUDGET, seed, refit_every=3)["regret"])
        regret["emt_random"].append(bench.replay_emt_random(oracle, BUDGET, seed)["regret"])
        regret["mlip_screen_confirm"].append(bench.replay_mlip_screen_confirm(oracle, BUDGET, seed)["regret"])
    mean = {k: float(np.mean(v)) for k, v in regret.items()}
    assert mean["multifidelity"] < mean["emt_random"]
    assert mean["multifidelity"] < mean["mlip_screen_confirm"]
    # the EMT optimum (Cu0.5Pt0.5, 55th in CHGNet's ranking) in several runs; the baselines never find it
    assert sum(r <= 1e-9 for r in regret["multifidelity"]) >= 3
    assert min(regret["emt_random"]) > 0 and min(regret["mlip_screen_confirm"]) > 0


def test_benchmark_rows_are_json_ready(oracle):
    rows = bench.run_benchmarks(seeds=(0,), budgets=(60.0, 10.0))
    assert {r["strategy"] for r in rows} == {"multifidelity", "emt_only_model", "emt_random", "mlip_screen_confirm"}
    json.dumps(rows, allow_nan=False)
    for row in rows:
        assert row["cost_spent"] <= row["budget"]
        if row["budget"] == 60.0:
            assert row["regret"] >= 0 and row["emt_evaluations"] >= 1
        else:  # too little for one EMT run: nothing found, and nothing spent on screens that cannot be confirmed
            assert row["regret"] is None and row["cost_spent"] == 0
    summary = bench.summarise(rows)
    assert len(summary) == 8 and all(s["runs"] == 1 for s in summary)
    assert all(s["mean_regret"] == pytest.approx(rows[0]["worst_regret"]) for s in summary if s["budget"] == 10.0)

@pytest.mark.slow
@pytest.mark.parametrize("cells", sorted(bench.TABLES))
def test_table_matches_fresh_driver_calculations(cells):
    table = bench.load_alloy_table(cells)
    settings = table["settings"]
    assert {k: settings[k] for k in bench.TABLES[cells][1]} == bench.TABLES[cells][1]
    from labweave.drivers.atomistic.emt import EmtBackend
    from labweave.drivers.atomistic.mlip import ChgnetBackend

    entry = next(e for e in table["entries"] if e["composition"] == {"Au": 0.5, "Cu": 0.5})
    for method, backend in (("emt", EmtBackend()), ("chgnet", ChgnetBackend())):
        fresh = bench._calculate(
            backend, entry["composition"], settings["supercell"], settings["seed"], settings["fmax"]
        )
        assert fresh["formation_energy_per_atom"] == pytest.approx(entry[method]["formation_energy_per_atom"], abs=2e-3)
        assert fresh["lattice_constant"] == pytest.approx(entry[method]["lattice_constant"], abs=5e-3)

def test_the_demos_ordered_cells_keep_the_trap_and_the_search_beats_random():
    """The demo computes ordered 4-atom cells: CHGNet still tracks EMT without Al and not with it, and
    the strategy still finds better alloys than EMT at random for the demo's budget (ten EMT runs)."""
    oracle = bench.AlloyOracle(bench.load_alloy_table("ordered4"))
    values = {m: np.array([oracle.value(p, m) for p in oracle.candidates()]) for m in ("chgnet", "emt")}
    with_al = np.array(["Al" in c for c in oracle.compositions])
    assert np.corrcoef(values["chgnet"][~with_al], values["emt"][~with_al])[0, 1] > 0.8
    assert np.corrcoef(values["chgnet"][with_al], values["emt"][with_al])[0, 1] < 0.0
    seeds = range(3)
    found = [bench.replay_multifidelity(oracle, 200.0, s)["best_emt"] for s in seeds]
    drawn = [bench.replay_emt_random(oracle, 200.0, s)["best_emt"] for s in seeds]
    assert np.mean(found) < np.mean(drawn) - 0.03
    with pytest.raises(KeyError, match="table: unknown 'cubic'"):
        bench.load_alloy_table("cubic")


def rows_of(output: str) -> dict[str, dict]:
    return {row["strategy"]: row for row in (json.loads(line) for line in output.splitlines())}


def test_command_prints_a_row_per_strategy_and_refuses_bad_budgets(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--budgets", "20,abc"])
    assert stop.value.code == 2 and "--budgets: expected positive numbers" in capsys.readouterr().err
    bench.main(["--seeds", "1", "--budgets", "60"])
    random32 = rows_of(capsys.readouterr().out)
    assert set(random32) == {"multifidelity", "emt_only_model", "emt_random", "mlip_screen_confirm"}
    assert all(row["budget"] == 60.0 and row["runs"] == 1 and row["mean_regret"] >= 0 for row in random32.values())
    with pytest.raises(SystemExit) as stop:
        bench.main(["--cells", "cubic"])
    assert stop.value.code == 2 and "--cells: unknown 'cubic'; choose from random32, ordered4" in capsys.readouterr().err
    bench.main(["--cells", "ordered4", "--seeds", "1", "--budgets", "60"])
    ordered = rows_of(capsys.readouterr().out)
    # another table: the same strategies, other numbers (the ordered cells' optimum is Ni3Pt, not CuPt)
    assert set(ordered) == set(random32)
    assert ordered["emt_random"]["mean_regret"] != random32["emt_random"]["mean_regret"]


def test_tables_are_the_studys_data_never_the_packages(tmp_path):
    data = bench.DATA_DIR
    assert data.parent.name == "benchmarks" and data.is_dir()
    assert {path.parent for path, _ in bench.TABLES.values()} == {data}
    assert all(path.is_file() for path, _ in bench.TABLES.values())
    with pytest.raises(FileNotFoundError, match=r"none\.json: run `python -m benchmarks\.fidelity --table` first"):
        bench.load_alloy_table(tmp_path / "none.json")
