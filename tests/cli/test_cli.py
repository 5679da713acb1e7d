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
        (("tenant", "run", "emt", "--user", "u", "--password", "p", "--dask-scheduler", "10.0.0.1:8786"),
         "--dask-scheduler '10.0.0.1:8786': give 'local', 'none' or an address such as tcp://HOST:8786"),
        (("tenant", "run", "emt", "--user", "u", "--password", "p", "--dask-scheduler-file", "missing.json"),
         "--dask-scheduler-file missing.json: no such file"),
        (("tenant", "run", "emt", "--user", "u", "--password", "p", "--dask-scheduler", "tcp://h:8786",
          "--dask-scheduler-file", __file__), "not both"),
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


@pytest.mark.parametrize("study, args, commands", [
    ("optimizer", ["--seeds", "3"], ["python -m benchmarks.optimizer --seeds 3", "python -m benchmarks.sisso_octet"]),
    ("fidelity", ["--cells", "ordered4"], ["python -m benchmarks.fidelity --cells ordered4",
                                           "python -m benchmarks.alloy_study"]),
    ("pld", [], ["python -m benchmarks.pld"]),
])
def test_bench_names_the_command_of_a_study_that_moved_to_benchmarks(study, args, commands):
    r = run("bench", study, *args)
    assert r.exit_code == 2
    message = " ".join(r.output.split())
    assert f"`labweave bench {study}` is a study" in message and "benchmarks/ folder of a labweave clone" in message
    for command in commands:
        assert f"`{command}`" in message
    listed = run("bench", "--help").output
    assert "server" in listed and "drivers" in listed and study not in listed


def test_bench_server_replicas_refuses_a_database_that_is_not_postgresql_and_bad_counts():
    r = run("bench", "server", "--database", "sqlite:///lab.db")
    assert r.exit_code == 2 and "--database 'sqlite:///lab.db': give a PostgreSQL URL" in r.output
    for bad in ("0,2", "one", ""):
        r = run("bench", "server", "--database", "postgresql://postgres@127.0.0.1:5432/test", "--replicas", bad)
        assert r.exit_code == 2 and "give comma-separated counts between 1 and 16" in r.output, (bad, r.output)


def test_bench_drivers_refuses_an_unknown_instrument():
    r = run("bench", "drivers", "--which", "pld,laser")
    assert r.exit_code == 2 and "--which: unknown 'laser'; choose from cycler, pld, atomistic" in r.output


@pytest.mark.slow
def test_bench_drivers_times_the_cycler_and_the_pld_chamber():
    r = run("bench", "drivers", "--which", "cycler,pld")
    assert r.exit_code == 0, r.output
    figures = {row["benchmark"]: row for row in map(json.loads, r.stdout.splitlines())}  # stderr has the log
    assert set(figures) == {"cycler_100_cycles", "pld_200_pulses"}
    cycler = figures["cycler_100_cycles"]
    assert cycler["cycles"] == 100 and cycler["seconds"] > 0
    assert 0.7 < cycler["retention"] < 0.95
    growth = figures["pld_200_pulses"]
    assert growth["seconds"] > 0 and growth["cpu_seconds"] > 0
    assert growth["thickness_unit_cells"] > 0 and growth["rheed_oscillations"] > 0 and growth["trace_points"] > 0


def test_optimize_refuses_a_feature_space_too_big_for_memory_before_posting(tmp_path):
    """The strategy is built before the daemon talks to the server: its refusal is a message, not a traceback."""
    from labweave.optimizer.campaign import EXAMPLES

    text = (EXAMPLES / "perovskite.toml").read_text()
    campaign = tmp_path / "perovskite.toml"
    campaign.write_text(text.replace("max_rung = 1", "max_rung = 3\nmax_feature_memory_mb = 64.0"))
    r = run("optimize", str(campaign), "--server", "http://127.0.0.1:9", "--user", "u", "--password", "p")
    assert r.exit_code == 2
    assert "the sisso strategy refuses this campaign: max_rung:" in r.output
    assert "about 331 MB for 198 samples (max_feature_memory_mb = 64)" in r.output
    assert "Traceback" not in r.output
