"""The DFT alloy table's command: its pool, its sharding and the stored table's consistency."""

from __future__ import annotations

import json

import pytest

from benchmarks import alloy_dft_table as table


def test_pool_is_binaries_then_ternaries_of_quarters():
    binaries, everything = table.pool(2), table.pool(3)
    assert len(binaries) == 63 and len(everything) == 168  # 21 pairs x 3; 35 triples x 3 more
    assert everything[: len(binaries)] == binaries
    for composition in everything:
        assert sum(composition.values()) == pytest.approx(1.0)
        assert all(x * 4 == round(x * 4) and x > 0 for x in composition.values())


def test_shards_split_the_pool_without_overlap():
    n = len(table.pool(3))
    shards = [{i for i in range(n) if i % 3 == k} for k in range(3)]
    assert set().union(*shards) == set(range(n)) and sum(map(len, shards)) == n


@pytest.mark.parametrize("shard", ["2/2", "a/2", "1", "-1/2"])
def test_bad_shard_is_refused(shard, capsys):
    with pytest.raises(SystemExit):
        table.main(["--shard", shard, "--status"])
    assert "--shard" in capsys.readouterr().err


def test_stored_table_is_consistent_with_its_settings():
    stored = table.load_table()
    assert stored["settings"]["xc"] == "PBE" and stored["settings"]["references"] == table.REFERENCES
    keys = [table.composition_key(e["composition"]) for e in stored["entries"]]
    assert len(keys) == len(set(keys))  # every cell once
    pool = {table.composition_key(c) for c in table.pool(3)}
    for entry in stored["entries"]:
        result = entry["dft"]
        assert table.composition_key(entry["composition"]) in pool
        assert result["method"] == "dft" and result["n_atoms"] == 4
        assert result["dft"]["xc"] == "PBE" and result["dft"]["cutoff"] == table.SETTINGS["cutoff"]
        assert result["cost_cpu_seconds"] > 0
        assert {r["element"] for r in result["references"]} == set(entry["composition"])


def test_a_table_made_otherwise_is_refused(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"settings": {"xc": "LDA"}, "entries": []}))
    with pytest.raises(ValueError, match="settings"):
        table.compute_table(path, max_components=2, limit=1)
