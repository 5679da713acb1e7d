"""The alloy study against the DFT (PBE) truth (``python -m benchmarks.alloy_study``): its pool, its
CPU-second accounting, the screen-then-confirm rule, and its command.

The pool is a fixture: the first real cells of the DFT table, so the tests do not depend on how far
``python -m benchmarks.alloy_dft_table`` has got; the cheap fidelity is the stored CHGNet table.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks import alloy_study as study

FIXTURE = Path(__file__).parent / "data" / "fcc_alloys_dft_pbe_ordered4_part.json"


@pytest.fixture(scope="module")
def dft() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def cheap() -> dict:
    return json.loads(study.CHEAP_TABLE.read_text())


@pytest.fixture(scope="module")
def table(dft, cheap) -> study.StudyTable:
    return study.StudyTable(dft, cheap)


def test_the_pool_is_the_dft_cells_with_a_cheap_record(dft, cheap, table):
    assert len(table) == len(dft["entries"]) >= 3
    values = sorted(e["dft"]["formation_energy_per_atom"] for e in dft["entries"])
    assert table.optimum == values[0] and table.worst == values[-1]
    assert table.dft_value(table.best(1)[0]) == values[0]
    costs = sorted(e["dft"]["cost_cpu_seconds"] for e in dft["entries"])
    assert min(costs) <= table.median_dft_seconds <= max(costs)
    first = table.candidates()[0]
    chgnet = next(e["chgnet"] for e in cheap["entries"] if e["composition"] == dft["entries"][0]["composition"])
    assert table.evaluation(first, "chgnet").value == chgnet["formation_energy_per_atom"]
    assert table.evaluation(first, "chgnet").cpu_seconds == chgnet["cost_cpu_seconds"]
    assert table.evaluation(first, "chgnet").variance == 0.0
    # a ternary in the DFT table is left out of a binaries-only pool
    ternary = copy.deepcopy(dft)
    ternary["entries"].append({"composition": {"Ag": 0.5, "Au": 0.25, "Cu": 0.25},
                               "dft": {"formation_energy_per_atom": -1.0, "cost_cpu_seconds": 100.0}})
    assert len(study.StudyTable(ternary, cheap)) == len(table) + 1
    assert len(study.StudyTable(ternary, cheap, max_components=2)) == len(table)
    with pytest.raises(ValueError, match="dft: no candidate of the DFT table has a record of the cheap method"):
        study.StudyTable(dft, cheap, cheap_method="mace")


def test_missing_tables_name_the_command_that_writes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none\.json: not computed yet; run python -m benchmarks\.alloy_dft_table"):
        study.load_study_table(tmp_path / "none.json")
    with pytest.raises(FileNotFoundError, match=r"cheap\.json: run python -m benchmarks\.fidelity --table"):
        study.load_study_table(FIXTURE, tmp_path / "cheap.json")


@pytest.mark.parametrize("search", sorted(study.SEARCHES))
def test_every_search_spends_recorded_cpu_seconds_within_its_budget(table, search):
    budget = 2.5 * table.median_dft_seconds
    run = study.SEARCHES[search](table, budget, 0)
    charged = sum(table.evaluation(p, m).cpu_seconds for p, m in run.evaluations)
    assert run.spent == pytest.approx(charged) and run.spent <= budget
    keys = [(table.key(p), m) for p, m in run.evaluations]
    assert len(set(keys)) == len(keys)  # nothing bought twice
    summary = run.summary()
    assert summary["dft_evaluations"] >= 1 and summary["regret_mev"] >= 0
    assert summary["regret_mev"] == pytest.approx(1000 * (table.dft_value(summary["best"]) - table.optimum))
    # what had been spent when the best value was bought: its own cost and all before it
    found = next(i for i, (p, m) in enumerate(run.evaluations) if m == "dft" and table.key(p) == summary["best"])
    assert summary["cpu_seconds_to_best"] == pytest.approx(charged - sum(
        table.evaluation(p, m).cpu_seconds for p, m in run.evaluations[found + 1:]))
    if search == "dft_random":
        assert summary["cheap_evaluations"] == 0


def test_screen_then_confirm_screens_within_its_share_then_confirms_in_the_screens_order(table):
    budget = 3.0 * table.median_dft_seconds
    run = study.run_screen_confirm(table, budget, seed=1, fraction=0.02)  # a few CHGNet screens (0.6-2.5 s each)
    screens = [p for p, m in run.evaluations if m == "chgnet"]
    confirms = [p for p, m in run.evaluations if m == "dft"]
    assert sum(table.evaluation(p, "chgnet").cpu_seconds for p in screens) <= 0.02 * budget
    by_screen = sorted(screens, key=lambda p: table.evaluation(p, "chgnet").value)
    assert confirms == by_screen[: len(confirms)] and confirms
    # the next confirmation in that order would not have fitted
    if len(confirms) < len(screens):
        assert run.spent + table.evaluation(by_screen[len(confirms)], "dft").cpu_seconds > budget


def test_the_cheap_fidelity_can_be_replaced_and_carry_its_own_noise(dft, cheap, table):
    tuned = copy.deepcopy(cheap)
    for entry in tuned["entries"]:
        record = dict(entry.pop("chgnet"))
        record["formation_energy_per_atom"] -= 0.01
        record[study.VARIANCE_KEY] = 1e-4
        entry["chgnet_tuned"] = record
    swapped = study.StudyTable(dft, tuned, cheap_method="chgnet_tuned")
    first = swapped.candidates()[0]
    assert swapped.methods == ("chgnet_tuned", "dft")
    assert swapped.evaluation(first, "chgnet_tuned").variance == 1e-4
    assert swapped.evaluation(first, "chgnet_tuned").value == pytest.approx(
        table.evaluation(first, "chgnet").value - 0.01)
    run = study.run_strategy(swapped, 3.0 * swapped.median_dft_seconds, seed=0)
    assert {m for _, m in run.evaluations} == {"chgnet_tuned", "dft"}
    assert run.spent <= 3.0 * swapped.median_dft_seconds


@pytest.mark.parametrize(("option", "message"), [
    (["--budgets", "2,x"], "--budgets: expected positive numbers"),
    (["--searches", "annealing"], "--searches: unknown ['annealing']"),
    (["--first-seed", "-1"], "--first-seed: at least 0"),
    (["--learning-every", "0"], "--learning-every: at least 1"),
])
def test_bad_options_are_refused_naming_the_option(capsys, option, message):
    with pytest.raises(SystemExit) as stop:
        study.main([*option, "--dft-table", str(FIXTURE)])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_command_prints_the_pool_the_budgets_and_a_row_per_search(capsys):
    searches = "multifidelity,dft_random,screen_confirm"
    study.main(["--seeds", "3", "--budgets", "1.5,2", "--searches", searches, "--dft-table", str(FIXTURE)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    head, rows, tail = lines[0], lines[1:-1], lines[-1]
    assert head["pool"] >= 3 and set(head["budgets_cpu_seconds"]) == {"1.5", "2"}
    assert head["budgets_cpu_seconds"]["2"] == pytest.approx(2 * head["median_dft_cpu_seconds"], abs=0.2)
    assert {(r["search"], r["budget_dft"]) for r in rows} == {(s, b) for s in searches.split(",") for b in (1.5, 2.0)}
    for row in rows:
        assert row["seeds"] == 3 and row["pool"] == head["pool"]
        low, high = row["iqr_regret_mev"]
        assert 0 <= low <= row["median_regret_mev"] <= high
        assert 0 <= row["found_best"] <= row["found_top3"] <= 1
        assert row["median_cpu_seconds"] <= row["budget_cpu_seconds"]
    assert tail["wall_seconds"] >= 0


# ----------------------------------------------------------------------- the learning MLIP
def test_single_points_at_the_dft_geometry_give_the_relaxed_chgnet_mixing_energies(table):
    from labweave.drivers.atomistic.chgnet_models import chgnet_model

    from benchmarks.alloy_learning import pool_mixing_energies

    energies = pool_mixing_energies([chgnet_model()], table.entries)
    assert energies.shape == (1, len(table))
    relaxed = [table.evaluation(p, "chgnet").value for p in table.candidates()]
    # the ordered cells relax their volume only: at DFT's volume CHGNet's energy is within meV of its own minimum
    assert max(abs(a - b) for a, b in zip(energies[0], relaxed)) < 0.005


def test_the_learning_mlip_key_is_the_training_set_and_the_settings(table, tmp_path):
    from benchmarks.alloy_learning import LearningMlip

    learning = LearningMlip(table.entries, tmp_path, {"epochs": 2, "committee": 2})
    keys = list(table.entries)
    assert learning.key(keys[:3]) == learning.key(list(reversed(keys[:3])))
    assert learning.key(keys[:3]) != learning.key(keys[:4])
    assert learning.key(keys[:3]) != LearningMlip(table.entries, tmp_path, {"epochs": 3, "committee": 2}).key(keys[:3])
    # when to fine-tune is no part of what a fine-tuning on these cells makes
    assert learning.key(keys[:3]) == LearningMlip(table.entries, tmp_path, {"epochs": 2, "committee": 2,
                                                                           "every": 3}).key(keys[:3])
    with pytest.raises(KeyError, match="not in the pool"):
        learning.predict(["Xx0.5Yy0.5"])
    with pytest.raises(ValueError, match="every"):
        LearningMlip(table.entries, tmp_path, {"every": 0})


def test_the_learning_search_charges_its_fine_tunings_and_reuses_them_from_the_cache(table, tmp_path):
    from benchmarks.alloy_learning import LearningMlip

    learning = LearningMlip(table.entries, tmp_path, {"epochs": 1, "committee": 2, "every": 1})
    budget = 3.0 * table.median_dft_seconds
    run = study.run_strategy(table, budget, 0, learning=learning)
    assert run.fine_tunings >= 1 and run.fine_tuning_seconds > 0
    assert run.spent <= budget
    tabulated = sum(table.evaluation(p, m).cpu_seconds for p, m in run.evaluations)
    screens = sum(table.evaluation(p, m).cpu_seconds for p, m in run.evaluations if m == "chgnet")
    # every committee screen costs its two members' CHGNet seconds; the fine-tunings are on top
    charged = tabulated + run.fine_tuning_seconds
    assert charged <= run.spent + 1e-9 <= charged + screens + 1e-6
    stored = sorted(tmp_path.glob("*.json"))
    assert len(stored) >= run.fine_tunings
    first = json.loads(stored[0].read_text())
    assert set(first["prediction"]["mean"]) == set(table.entries)
    assert all(v >= 0 for v in first["prediction"]["variance"].values())
    assert first["prediction"]["committee"] == 2
    modified = [p.stat().st_mtime_ns for p in stored]
    again = study.run_strategy(table, budget, 0, learning=learning)  # from the cache: nothing trained again
    assert again.evaluations == run.evaluations and again.spent == pytest.approx(run.spent)
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.glob("*.json"))] == modified
    summary = run.summary()
    assert summary["fine_tunings"] == run.fine_tunings
    assert summary["fine_tuning_cpu_seconds"] == pytest.approx(run.fine_tuning_seconds)


def test_command_streams_rows_from_the_first_seed_asked_for(capsys):
    study.main(["--seeds", "2", "--first-seed", "4", "--budgets", "2", "--searches", "dft_random", "--rows",
                "--dft-table", str(FIXTURE)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    runs = [line for line in lines if "seed" in line]
    assert [r["seed"] for r in runs] == [4, 5]
    expected = study.run_dft_random(study.load_study_table(FIXTURE), runs[0]["budget_cpu_seconds"], 4).summary()
    assert runs[0]["regret_mev"] == expected["regret_mev"] and runs[0]["best"] == expected["best"]
