"""The signing key: outside the database (a 0600 key file beside a SQLite database, or a setting), shared by
replicas, at least 32 bytes; a key older versions kept in the database is retired with a log line; the
SQLite file is created 0600; the migration matches the tables."""

from __future__ import annotations

import logging
import os
import stat
import time

import jwt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from labweave.services.cli.main import app as cli
from labweave.services.server.app import create_app
from labweave.services.server.auth import add_user
from labweave.services.server.config import ConfigError, Settings
from labweave.services.server.db.engine import open_database
from labweave.services.server.db.migrate import upgrade
from labweave.services.server.db.tables import ServerSecret

from ..conftest import make_pg_database

LOGIN = "/user_management/authenticate"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def lab_without_key(url: str, **kw) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, password_rounds=4, **kw)))


def token(client: TestClient, user: str = "op") -> str:
    r = client.post(LOGIN, data={"username": user, "password": user})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def me(client: TestClient, tok: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {tok}"})


def prepared(url: str, stored_key: str | None = None) -> None:
    """A database with user ``op`` (and, as older versions left it, a signing key in ``server_secret``)."""
    db = open_database(url)
    upgrade(db)
    add_user(db, "op", "op", "operator", None, 4)
    if stored_key:
        with Session(db.write) as s:
            s.add(ServerSecret(name="jwt", value=stored_key))
            s.commit()
    db.dispose()


def stored_keys(url: str) -> list[str]:
    db = open_database(url)
    try:
        with Session(db.read) as s:
            return [row.value for row in s.query(ServerSecret).all()]
    finally:
        db.dispose()


def test_a_new_sqlite_database_and_its_key_file_are_private(tmp_path):
    path = tmp_path / "lab" / "labweave.db"
    url = f"sqlite:///{path}"
    prepared(url)
    client = lab_without_key(url)
    key_file = tmp_path / "lab" / "labweave.db.key"
    assert mode(path) == 0o600 and mode(f"{path}-wal") == 0o600
    assert mode(key_file) == 0o600 and len(key_file.read_text().strip()) >= 32
    assert stored_keys(url) == []  # nothing in the database signs a token
    tok = token(client)
    assert jwt.decode(tok, key_file.read_text().strip(), algorithms=["HS256"])["sub"] == "op"
    client.app.state.lab.close()


def test_replicas_on_one_sqlite_database_share_the_key_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'labweave.db'}"
    prepared(url)
    first, second = lab_without_key(url), lab_without_key(url)
    assert me(second, token(first)).status_code == 200
    assert me(first, token(second)).status_code == 200
    first.app.state.lab.close()
    second.app.state.lab.close()


def test_a_key_kept_in_the_database_is_retired_with_a_log_line(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'labweave.db'}"
    old_key = "k" * 64
    prepared(url, stored_key=old_key)
    now = int(time.time())
    old_token = jwt.encode({"sub": "op", "gen": 0, "iat": now, "exp": now + 600}, old_key, algorithm="HS256")
    with caplog.at_level(logging.WARNING, logger="labweave.services.server.signing_key"):
        client = lab_without_key(url)
    assert stored_keys(url) == []
    assert any("kept in the database is deleted" in r.getMessage() for r in caplog.records)
    assert me(client, old_token).status_code == 401  # whoever read the database cannot sign tokens
    assert me(client, token(client)).status_code == 200
    client.app.state.lab.close()


def test_a_configured_key_file_is_made_once_and_used(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'labweave.db'}"
    prepared(url, stored_key="s" * 64)
    key_file = tmp_path / "secrets" / "signing.key"
    client = lab_without_key(url, secret_key_file=key_file)
    assert mode(key_file) == 0o600 and not (tmp_path / "labweave.db.key").exists()
    assert stored_keys(url) == []
    other = lab_without_key(url, secret_key_file=key_file)
    assert me(other, token(client)).status_code == 200
    client.app.state.lab.close()
    other.app.state.lab.close()


def test_a_token_from_a_replica_with_another_key_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'labweave.db'}"
    prepared(url)
    one = lab_without_key(url, secret_key="a" * 40)
    two = lab_without_key(url, secret_key="b" * 40)
    r = me(two, token(one))
    assert r.status_code == 401 and "signed with another key" in r.json()["detail"]
    assert "LABWEAVE_SECRET_KEY" in r.json()["detail"]
    one.app.state.lab.close()
    two.app.state.lab.close()


def test_short_keys_are_refused_with_a_clear_message(tmp_path, monkeypatch):
    with pytest.raises(ValidationError, match="LABWEAVE_SECRET_KEY is 5 bytes; a signing key needs at least 32"):
        Settings(secret_key="short")
    with pytest.raises(ValidationError, match="not both"):
        Settings(secret_key="x" * 32, secret_key_file=tmp_path / "k")
    url = f"sqlite:///{tmp_path / 'labweave.db'}"
    prepared(url)
    key_file = tmp_path / "short.key"
    key_file.write_text("too-short\n")
    with pytest.raises(ConfigError, match="is 9 bytes; a signing key needs at least 32"):
        create_app(Settings(database_url=url, secret_key_file=key_file))
    # and `labweave serve` stops with the message, not a traceback
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", url)
    monkeypatch.setenv("LABWEAVE_SECRET_KEY_FILE", str(key_file))
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 2 and "needs at least 32" in r.output
    monkeypatch.delenv("LABWEAVE_SECRET_KEY_FILE")
    monkeypatch.setenv("LABWEAVE_SECRET_KEY", "0123456789")
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 2 and "LABWEAVE_SECRET_KEY" in r.output and "at least 32" in r.output


@pytest.mark.postgres
def test_postgres_needs_a_configured_key_and_keeps_a_stored_one_working(pg_available, caplog):
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable")
    url, drop = make_pg_database()
    try:
        prepared(url)
        with pytest.raises(ConfigError, match="PostgreSQL: set LABWEAVE_SECRET_KEY or LABWEAVE_SECRET_KEY_FILE"):
            create_app(Settings(database_url=url))
        db = open_database(url)
        with Session(db.write) as s:
            s.add(ServerSecret(name="jwt", value="p" * 64))
            s.commit()
        db.dispose()
        with caplog.at_level(logging.WARNING, logger="labweave.services.server.signing_key"):
            first, second = lab_without_key(url), lab_without_key(url)
        assert any("read from the database" in r.getMessage() for r in caplog.records)
        assert me(second, token(first)).status_code == 200  # a running lab keeps working until it sets a key
        first.app.state.lab.close()
        second.app.state.lab.close()
        configured = lab_without_key(url, secret_key="c" * 40)
        assert stored_keys(url) == []
        assert me(configured, token(configured)).status_code == 200
        configured.app.state.lab.close()
    finally:
        drop()


def test_the_migration_makes_the_tables_the_code_declares(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'labweave.db'}")
    upgrade(db)
    with db.write.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        conn.rollback()
    db.dispose()
    assert diff == []
