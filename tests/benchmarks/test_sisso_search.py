"""The SISSO search study: the planted pool, the race, the command's JSON lines."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.sisso_search import PLANTED_DESCRIPTOR, feature_space, main, planted_pool, race


def test_planted_pool_has_the_planted_property_and_its_noise():
    pool = planted_pool()
    f = {k: np.asarray(v) for k, v in pool["features"].items()}
    truth = np.asarray(pool["truth"])
    assert len(truth) == 1000 and len(f) == 10
    assert np.allclose(truth, 2 * f["r_1"] * f["r_2"] - 3 * f["E_1"] / f["E_2"])
    noise = np.asarray(pool["measured"]) - truth
    assert 0.01 < noise.std() / truth.std() < 0.03


def test_sisso_finds_a_top_candidate_sooner_than_random_and_names_the_planted_formula():
    pool = planted_pool()
    names = list(pool["features"])
    space = feature_space(pool["features"], pool["units"])
    points = [{n: pool["features"][n][i] for n in names} for i in range(1000)]
    truth = np.asarray(pool["truth"])
    targets = {int(i) for i in np.argsort(truth)[-10:]}
    measured = np.asarray(pool["measured"])
    sisso = race("sisso", {"seed": 0, "initial_design": 8}, space, points, measured, targets, 60, 2)
    rand = race("random", {"seed": 0}, space, points, measured, targets, 60, 2)
    assert sisso["evaluations"] is not None and sisso["evaluations"] <= 30
    assert rand["evaluations"] is None or rand["evaluations"] > sisso["evaluations"]
    assert frozenset(sisso["leading"]) == PLANTED_DESCRIPTOR


def test_command_prints_json_lines(capsys):
    rows = main(["planted", "--seeds", "1", "--budget", "12", "--strategies", "random", "--no-store"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["strategy"] for p in printed] == ["random"]
    assert printed[0]["median"] == rows[0]["median"] and printed[0]["runs"] == 1


def test_the_stored_perovskite_table_covers_the_pool_and_replays(capsys):
    from benchmarks.perovskite_table import pool
    from benchmarks.sisso_search import PEROVSKITE_TABLE

    table = json.loads(PEROVSKITE_TABLE.read_text())
    rows = {(r["A"], r["B"]): r for r in table["rows"]}
    assert set(rows) == set(pool())
    assert all(r["converged"] and 50 < r["bulk_modulus"] < 400 for r in rows.values())
    assert 150 < rows[("Sr", "Ti")]["bulk_modulus"] < 200  # experiment 179 GPa; CHGNet (PBE-trained) a little soft
    printed = main(["perovskite", "--seeds", "2", "--budget", "30", "--strategies", "random", "--no-store"])
    assert [(r["target"], r["strategy"]) for r in printed] == [("stiffest", "random"), ("top 5", "random")]
    assert printed[1]["median"] <= printed[0]["median"]
    assert printed[0]["candidates"] == len(rows)


def test_the_table_compares_every_stored_strategy_without_running(capsys):
    from benchmarks.sisso_search import comparison_table, stored_rows

    rows = main(["planted", "--table"])
    printed = capsys.readouterr().out.splitlines()
    assert {r["strategy"] for r in rows} == {"sisso", "bayesian", "random"}
    assert printed[0].startswith("| strategy | top 1%") and len(printed) == 2 + len(rows)
    perovskite = stored_rows("perovskite")
    assert {(r["strategy"], r["target"]) for r in perovskite} >= {
        (s, t) for s in ("sisso", "bayesian", "random") for t in ("stiffest", "top 5")}
    assert all(r["runs"] == 20 and r["command"].startswith("python -m benchmarks.sisso_search perovskite")
               for r in perovskite)
    table = comparison_table([r for r in perovskite if r["strategy"] == "bayesian"])
    row = next(r for r in perovskite if r["strategy"] == "bayesian" and r["target"] == "stiffest")
    assert f"| bayesian | {row['median']:g} ({row['q25']:g}-{row['q75']:g}), {row['found']} of 20 |" in table
