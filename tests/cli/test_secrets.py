"""Secrets from files, as containers receive them (compose secrets): the database password, the
passwords of the accounts and of the daemons' users; and ``labweave tenant provision``, the one-step
set-up of a tenant that a deployment runs each time it starts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from labweave.services.cli.main import app
from labweave.services.server.app import create_app
from labweave.services.server.config import Settings
from labweave.services.server.db.engine import open_database

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def secret_file(folder, name: str, value: str):
    path = folder / name
    path.write_text(value + "\n")  # as `echo VALUE > FILE` writes it
    return path


def can_log_in(url: str, user: str, password: str, key: str) -> int:
    client = TestClient(create_app(Settings(database_url=url, secret_key=key)))
    r = client.post("/user_management/authenticate", data={"username": user, "password": password})
    client.app.state.lab.close()
    return r.status_code


KEY = "k" * 40


def test_the_database_password_is_read_from_its_file_and_never_shown(tmp_path, monkeypatch):
    pw = secret_file(tmp_path, "db_password", "s3cret-db-pw")
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", "postgresql://labweave@db:5432/labweave")
    monkeypatch.setenv("LABWEAVE_DATABASE_PASSWORD_FILE", str(pw))
    s = Settings()
    assert make_url(s.engine_url()).password == "s3cret-db-pw"  # the line break is not part of it
    assert "s3cret" not in s.database_url and "s3cret" not in repr(s)


@pytest.mark.parametrize("url, content, message", [
    ("postgresql://labweave:inline@db/labweave", "pw", "set only one"),
    ("postgresql://labweave@db/labweave", None, "cannot read"),
    ("postgresql://labweave@db/labweave", "", "is empty"),
])
def test_a_bad_database_password_file_is_refused_naming_the_setting(tmp_path, monkeypatch, url, content, message):
    path = tmp_path / "db_password"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    monkeypatch.setenv("LABWEAVE_DATABASE_PASSWORD_FILE", str(path))
    r = run("db", "upgrade")
    assert r.exit_code == 2
    assert "LABWEAVE_DATABASE_PASSWORD_FILE" in r.output and message in r.output


@pytest.mark.postgres
def test_postgresql_is_opened_with_the_password_of_the_file(database_url, tmp_path, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("a SQLite file has no password")
    url = make_url(database_url).set(password=None).render_as_string(hide_password=False)
    pw = secret_file(tmp_path, "db_password", "from-the-file")
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    monkeypatch.setenv("LABWEAVE_DATABASE_PASSWORD_FILE", str(pw))
    r = run("db", "upgrade")
    assert r.exit_code == 0, r.output
    assert "from-the-file" not in r.output
    db = open_database(Settings().engine_url())
    assert db.write.url.password == "from-the-file"
    db.dispose()


def test_an_account_password_from_a_file(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    monkeypatch.setenv("LABWEAVE_PASSWORD_ROUNDS", "4")
    pw = secret_file(tmp_path, "operator_password", "operator-from-file")
    r = run("user", "add", "operator", "--role", "operator", "--password-file", str(pw))
    assert r.exit_code == 0, r.output
    assert can_log_in(url, "operator", "operator-from-file", KEY) == 200
    assert can_log_in(url, "operator", "operator-from-file\n", KEY) == 401

    r = run("user", "add", "operator", "--role", "operator", "--password", "x" * 8, "--password-file", str(pw))
    assert r.exit_code == 2 and "not both" in r.output
    r = run("user", "add", "operator", "--role", "operator")
    assert r.exit_code == 2 and "give --password or --password-file" in r.output
    r = run("user", "add", "operator", "--role", "operator", "--password-file", str(tmp_path / "absent"))
    assert r.exit_code == 2 and "cannot read" in r.output


@pytest.mark.parametrize("command", [("tenant", "run", "pld"), ("optimize", "campaign.toml")])
def test_the_daemons_read_their_password_file_before_anything_else(tmp_path, monkeypatch, command):
    monkeypatch.setenv("LABWEAVE_USER", "someone")
    monkeypatch.setenv("LABWEAVE_PASSWORD_FILE", str(tmp_path / "absent"))
    r = run(*command)
    assert r.exit_code == 2 and "--password-file: cannot read" in r.output and "absent" in r.output
    monkeypatch.delenv("LABWEAVE_PASSWORD_FILE")
    r = run(*command)
    assert r.exit_code == 2 and "give --password or --password-file" in r.output


def test_tenant_provision_registers_the_instruments_once_and_again(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    monkeypatch.setenv("LABWEAVE_PASSWORD_ROUNDS", "4")
    pw = secret_file(tmp_path, "tenant_password", "chamber-pw")
    first = run("tenant", "provision", "pld", "--name", "chamber", "--user", "chamber", "--password-file", str(pw))
    assert first.exit_code == 0, first.output
    again = run("tenant", "provision", "pld", "--name", "chamber", "--user", "chamber", "--password-file", str(pw))
    assert again.exit_code == 0, again.output
    assert first.output.split()[0] == again.output.split()[0]  # the same tenant, brought up to date
    requesters = run("tenant", "provision", "--name", "requesters", "--user", "alice", "--password", "alice-pw",
                     "--role", "requester")
    assert requesters.exit_code == 0, requesters.output

    lab = TestClient(create_app(Settings(database_url=url, secret_key=KEY)))
    catalogue = lab.app.state.lab.registry.catalogue()
    assert [t.name for t in catalogue.tenants.values()] == ["chamber", "requesters"]
    assert ("thin_film", "pld_growth") in catalogue.capabilities
    token = lab.post("/user_management/authenticate", data={"username": "chamber", "password": "chamber-pw"})
    me = lab.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()
    assert me["role"] == "tenant" and me["tenant_uuid"] == first.output.split()[0]
    lab.app.state.lab.close()

    r = run("tenant", "provision", "nosuch", "--name", "x", "--user", "x", "--password", "pw12")
    assert r.exit_code == 2 and "unknown instrument 'nosuch'" in r.output
    r = run("tenant", "provision", "--name", "x", "--user", "x", "--password", "pw12", "--role", "operator")
    assert r.exit_code == 2 and "--role must be tenant or requester" in r.output
