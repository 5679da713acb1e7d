"""The PLD study: the demo's PLD campaign replayed in process, strategies compared by hypervolume."""

from __future__ import annotations

import json

import pytest

from benchmarks.pld import main


def test_command_compares_strategies_on_the_simulated_chamber(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--variants", "random,bogus"])
    assert stop.value.code == 2 and "--variants: unknown bogus" in capsys.readouterr().err
    main(["--variants", "random,nehvi+fast", "--seeds", "1", "--budget", "5"])
    rows = {row["variant"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"random", "nehvi+fast"}
    for row in rows.values():
        assert row["budget"] == 5 and len(row["hypervolumes"]) == 1 and row["mean_hypervolume"] >= 0
    assert rows["nehvi+fast"]["seconds_per_proposal"] > rows["random"]["seconds_per_proposal"]
