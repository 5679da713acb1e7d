"""Tokens: ``exp`` required and bounded, revoked by a password change or by disabling the user (the
``labweave user`` commands), and an event stream that ends with its token."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from labweave.services.cli.main import app as cli
from labweave.services.server import event_stream
from labweave.services.server.config import Settings

from .helpers import open_lab, settings_for

KEY = settings_for("sqlite:///unused.db").secret_key.get_secret_value()


def forged(**claims) -> dict[str, str]:
    """A bearer header with a token signed by the lab's own key."""
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='HS256')}"}


@pytest.fixture
def lab(sqlite_url):
    return open_lab(sqlite_url, token_minutes=60)


def test_a_token_without_exp_or_living_too_long_is_refused(lab):
    now = int(time.time())
    alice = {"sub": "alice", "gen": 0}
    assert lab.client.get("/api/v1/me", headers=forged(**alice, iat=now, exp=now + 3600)).status_code == 200
    r = lab.client.get("/api/v1/me", headers=forged(**alice, iat=now))
    assert r.status_code == 401 and "'exp'" in r.json()["detail"]
    assert lab.client.get("/api/v1/me", headers=forged(**alice, exp=now + 60)).status_code == 401  # no iat
    r = lab.client.get("/api/v1/me", headers=forged(**alice, iat=now, exp=now + 3601))
    assert r.status_code == 401 and "lives longer than the 60 minutes" in r.json()["detail"]
    r = lab.client.get("/api/v1/me", headers=forged(**alice, iat=now - 7200, exp=now + 60))
    assert r.status_code == 401
    assert lab.client.get("/api/v1/me", headers=forged(sub="alice", iat=now, exp=now + 60)).status_code == 401


def test_the_token_lifetime_setting_is_bounded():
    with pytest.raises(ValidationError, match="less than or equal to 1440"):
        Settings(token_minutes=24 * 60 + 1)
    assert Settings(token_minutes=24 * 60).token_minutes == 1440


def test_the_token_a_login_gives_expires_within_the_setting(lab):
    claims = jwt.decode(lab.tokens["alice"], KEY, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600 and claims["sub"] == "alice" and claims["gen"] == 0


@pytest.fixture
def cli_env(lab, monkeypatch, sqlite_url):
    monkeypatch.setenv("LABWEAVE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LABWEAVE_PASSWORD_ROUNDS", "4")
    return CliRunner()


def test_passwd_revokes_the_tokens_issued_before(lab, cli_env):
    old = lab.tokens["alice"]
    assert lab.get("alice", "/api/v1/me").status_code == 200
    r = cli_env.invoke(cli, ["user", "passwd", "alice"], input="new-secret\nnew-secret\n")
    assert r.exit_code == 0 and "password changed" in r.output, r.output
    r = lab.client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert lab.client.post("/user_management/authenticate",
                           data={"username": "alice", "password": "alice"}).status_code == 401
    lab.login("alice", "new-secret")
    assert lab.get("alice", "/api/v1/me").status_code == 200
    r = cli_env.invoke(cli, ["user", "passwd", "nobody", "--password", "x" * 8])
    assert r.exit_code == 2 and "no user 'nobody'" in r.output
    r = cli_env.invoke(cli, ["user", "passwd", "alice", "--password", "x" * 73])
    assert r.exit_code == 2 and "password: at most 72 bytes" in r.output


def test_a_password_reset_through_the_api_revokes_too(lab):
    old = dict(lab.headers("alice"))
    r = lab.post("op", "/api/v1/users", json={"username": "alice", "password": "reset-pw", "role": "requester",
                                              "tenant_uuid": lab.get("alice", "/api/v1/me").json()["tenant_uuid"]})
    assert r.status_code == 201
    assert lab.client.get("/api/v1/me", headers=old).status_code == 401


def test_disable_stops_tokens_at_once_and_enable_revives_none(lab, cli_env):
    old = dict(lab.headers("alice"))
    r = cli_env.invoke(cli, ["user", "disable", "alice"])
    assert r.exit_code == 0 and "disabled" in r.output, r.output
    assert lab.client.get("/api/v1/me", headers=old).status_code == 401
    r = lab.client.post("/user_management/authenticate", data={"username": "alice", "password": "alice"})
    assert r.status_code == 401 and r.json()["detail"] == "Incorrect username or password"
    r = cli_env.invoke(cli, ["user", "enable", "alice"])
    assert r.exit_code == 0 and "enabled" in r.output
    assert lab.client.get("/api/v1/me", headers=old).status_code == 401
    lab.login("alice")
    assert lab.get("alice", "/api/v1/me").json()["username"] == "alice"
    assert cli_env.invoke(cli, ["user", "disable", "nobody"]).exit_code == 2


def read_stream(lab, user: str, deadline: float) -> list[str]:
    """The stream's lines until it ends (or the deadline passes)."""
    lines: list[str] = []
    with lab.client.stream("GET", "/api/v1/events/stream", headers=lab.headers(user)) as feed:
        assert feed.status_code == 200
        for line in feed.iter_lines():
            lines.append(line)
            assert time.monotonic() < deadline, f"the stream outlived its token: {lines}"
    return lines


@pytest.mark.timeout(60)
def test_an_event_stream_ends_when_its_token_expires(sqlite_url):
    lab = open_lab(sqlite_url, token_minutes=2 / 60)  # tokens live two seconds
    lab.login("alice")
    expires = jwt.decode(lab.tokens["alice"], KEY, algorithms=["HS256"])["exp"]
    lines = read_stream(lab, "alice", time.monotonic() + 20)
    assert lines[-2] == ": stream ended: token expired; log in again"
    assert time.time() >= expires and time.time() - expires < 2.5
    assert lab.get("alice", "/api/v1/events/stream").status_code == 401


@pytest.mark.timeout(60)
def test_an_event_stream_ends_when_its_user_is_disabled(lab, monkeypatch):
    monkeypatch.setattr(event_stream, "TOKEN_RECHECK_SECONDS", 0.2)
    from labweave.services.server.auth import set_active

    threading.Timer(1.0, set_active, args=(lab.lab.db, "alice", False)).start()
    lines = read_stream(lab, "alice", time.monotonic() + 20)
    assert lines[-2] == ": stream ended: user 'alice' is unknown or disabled"
