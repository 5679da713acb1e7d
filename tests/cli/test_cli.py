"""The ``labweave`` command: the spellings scripts depend on, and clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from labweave.services.cli.main import app
from labweave.services.server.config import Settings

from ..conftest import shared_path

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("LABWEAVE_PASSWORD_ROUNDS", "4")
    return tmp_path


def run(*args):
    return runner.invoke(app, list(args))


def test_db_capability_tenant_and_user(env):
    assert run("db", "upgrade").exit_code == 0
    r = run("capability", "add", str(shared_path("finales2", "serialized_quantities")))
    assert r.exit_code == 0 and "capability electrolyte/flow" in r.output
    asab = shared_path("finales2", "examples", "tenants", "conductivity", "ASAB.json")
    r = run("tenant", "add", str(asab))
    assert r.exit_code == 0
    tenant_uuid, name = r.output.split()[0], r.output.split(maxsplit=1)[1].strip()
    assert name == "ASAB_tenant"
    r = run("tenant", "add", str(asab),
            "--uuid", "7337771802bd49d7ae8437d6bff2bfc2")
    assert r.exit_code == 0 and r.output.startswith("7337771802bd49d7ae8437d6bff2bfc2")
    r = run("user", "add", "asab", "--password", "pw12", "--role", "tenant", "--tenant", tenant_uuid)
    assert r.exit_code == 0 and "asab (tenant" in r.output
    r = run("user", "add", "op", "--password", "pw12", "--role", "operator")
    assert r.exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (("user", "add", "x", "--password", "pw12", "--role", "admin"), "--role must be one of"),
        (("user", "add", "x", "--password", "pw12", "--role", "tenant"), "needs --tenant"),
        (("user", "add", "x", "--password", "pw12", "--role", "tenant", "--tenant", "nope"), "not registered"),
        (("capability", "add", "missing.json"), "no such file"),
        (("tenant", "run", "teleporter", "--user", "u", "--password", "p"), "unknown instrument"),
    ],
)
def test_bad_input_gets_a_clear_message(env, args, message):
    r = run(*args)
    assert r.exit_code == 2 and message in r.output


def test_bad_files_name_the_problem(env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    r = run("capability", "add", str(bad))
    assert r.exit_code == 2 and "not JSON: line 1" in r.output
    bad.write_text(json.dumps({"quantity": "q", "method": "m", "json_schema_specifications": {}}))
    r = run("capability", "add", str(bad))
    assert r.exit_code == 2 and "json_schema_result_output" in r.output
    bad.write_text(json.dumps({"name": "t", "limitations": [{"quantity": "q", "method": "m", "limitations": {}}]}))
    r = run("tenant", "add", str(bad))
    assert r.exit_code == 2 and "no capability q/m is registered" in r.output


@pytest.mark.parametrize("url, message", [
    ("mysql://localhost/db", "unsupported database 'mysql'"),
    ("not a url", "not a database URL"),
    ("sqlite://", "SQLite needs a file"),
])
def test_database_urls_are_validated(monkeypatch, url, message):
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    r = run("db", "upgrade")
    assert r.exit_code == 2 and message in r.output
    with pytest.raises(ValueError, match=message.split("'")[0]):
        Settings()


def test_unreachable_database_is_reported(monkeypatch):
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    r = run("db", "upgrade")
    assert r.exit_code == 2 and "cannot open the database" in r.output


def test_bench_fidelity_prints_a_row_per_strategy_and_refuses_bad_budgets():
    r = run("bench", "fidelity", "--budgets", "20,abc")
    assert r.exit_code == 2 and "--budgets: expected positive numbers" in r.output
    r = run("bench", "fidelity", "--seeds", "1", "--budgets", "60")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines() if line.startswith("{")]
    assert {row["strategy"] for row in rows} == {"multifidelity", "emt_only_model", "emt_random",
                                                "mlip_screen_confirm"}
    assert all(row["budget"] == 60.0 and row["runs"] == 1 and row["mean_regret"] >= 0 for row in rows)
    r = run("bench", "fidelity", "--cells", "cubic")
    assert r.exit_code == 2 and "--cells: unknown 'cubic'; choose from random32, ordered4" in r.output
    r = run("bench", "fidelity", "--cells", "ordered4", "--seeds", "1", "--budgets", "60")
    assert r.exit_code == 0, r.output
    ordered = {row["strategy"]: row for row in
               (json.loads(line) for line in r.output.splitlines() if line.startswith("{"))}
    # another table: the same strategies, other numbers (the ordered cells' optimum is Ni3Pt, not CuPt)
    random32 = {row["strategy"]: row for row in rows}
    assert set(ordered) == set(random32)
    assert ordered["emt_random"]["mean_regret"] != random32["emt_random"]["mean_regret"]


def test_bench_pld_compares_strategies_on_the_simulated_chamber():
    r = run("bench", "pld", "--variants", "random,bogus")
    assert r.exit_code == 2 and "--variants: unknown bogus" in r.output
    r = run("bench", "pld", "--variants", "random,nehvi+fast", "--seeds", "1", "--budget", "5")
    assert r.exit_code == 0, r.output
    rows = {row["variant"]: row for row in map(json.loads, (line for line in r.output.splitlines() if line.startswith("{")))}
    assert set(rows) == {"random", "nehvi+fast"}
    for row in rows.values():
        assert row["budget"] == 5 and len(row["hypervolumes"]) == 1 and row["mean_hypervolume"] >= 0
    assert rows["nehvi+fast"]["seconds_per_proposal"] > rows["random"]["seconds_per_proposal"]
