"""Logging in: failed logins throttled per user name and per address (across replicas), the same work for
unknown and known users, and passwords longer than bcrypt reads refused with a 4xx naming the field."""

from __future__ import annotations

import statistics
import threading
import time

import bcrypt
import pytest
from fastapi.testclient import TestClient

from labweave.services.server.app import create_app
from labweave.services.server.auth import set_active
from labweave.services.server.errors import Unauthorized
from labweave.services.server.login_throttle import TooManyAttempts

from .helpers import REQUESTER_TENANT, open_lab, settings_for

LOGIN = "/user_management/authenticate"


def log_in(client: TestClient, user: str, password: str):
    return client.post(LOGIN, data={"username": user, "password": password})


def test_failed_logins_of_one_user_get_429_with_retry_after(sqlite_url):
    lab = open_lab(sqlite_url, login_failures_per_user=3, login_window_seconds=60)
    assert [log_in(lab.client, "alice", "wrong").status_code for _ in range(3)] == [401, 401, 401]
    r = log_in(lab.client, "alice", "alice")  # even the right password waits now
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "too many failed logins" in r.json()["detail"]
    page = lab.client.post("/dashboard/login", data={"username": "alice", "password": "alice"})
    assert page.status_code == 429 and "too many failed logins" in page.text and page.headers["Retry-After"]
    assert log_in(lab.client, "op", "op").status_code == 200  # other users are not held up


def test_unknown_user_names_are_throttled_like_known_ones(sqlite_url):
    lab = open_lab(sqlite_url, login_failures_per_user=3, login_window_seconds=60)
    known = [log_in(lab.client, "alice", "wrong").status_code for _ in range(4)]
    unknown = [log_in(lab.client, "nobody", "wrong").status_code for _ in range(4)]
    assert known == unknown == [401, 401, 401, 429]
    assert log_in(lab.client, "alice", "wrong").json()["detail"] == log_in(lab.client, "nobody", "wrong").json()["detail"]


def test_failures_from_one_address_throttle_that_address_only(sqlite_url):
    lab = open_lab(sqlite_url, login_failures_per_user=100, login_failures_per_address=4, login_window_seconds=60)
    attacker = TestClient(lab.client.app, client=("203.0.113.7", 40000))
    assert [log_in(attacker, f"guess{i}", "wrong").status_code for i in range(4)] == [401] * 4
    r = log_in(attacker, "op", "op")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    elsewhere = TestClient(lab.client.app, client=("198.51.100.2", 40000))
    assert log_in(elsewhere, "op", "op").status_code == 200


def test_the_throttle_lets_go_after_the_window_and_a_success_starts_afresh(sqlite_url):
    lab = open_lab(sqlite_url, login_failures_per_user=2, login_window_seconds=1.5)
    assert [log_in(lab.client, "alice", "wrong").status_code for _ in range(3)] == [401, 401, 429]
    wait = int(log_in(lab.client, "alice", "alice").headers["Retry-After"])
    assert wait <= 2
    time.sleep(wait)
    assert log_in(lab.client, "alice", "alice").status_code == 200
    # a success clears the user's failures: one more failure is not yet too many
    assert log_in(lab.client, "alice", "wrong").status_code == 401
    assert log_in(lab.client, "alice", "alice").status_code == 200
    assert log_in(lab.client, "alice", "wrong").status_code == 401


def test_replicas_sharing_a_database_share_the_count(database_url):
    lab = open_lab(database_url, login_failures_per_user=4, login_window_seconds=60)
    other = TestClient(create_app(settings_for(database_url, login_failures_per_user=4, login_window_seconds=60)))
    try:
        assert log_in(lab.client, "alice", "wrong").status_code == 401
        assert log_in(other, "alice", "wrong").status_code == 401
        assert log_in(lab.client, "alice", "wrong").status_code == 401
        assert log_in(other, "alice", "wrong").status_code == 401
        assert log_in(lab.client, "alice", "alice").status_code == 429
        assert log_in(other, "alice", "alice").status_code == 429
    finally:
        other.app.state.lab.close()


def test_attempts_in_parallel_cannot_slip_past_the_limit(database_url):
    lab = open_lab(database_url, login_failures_per_user=3, login_window_seconds=60)
    auth = lab.lab.auth
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def attempt() -> None:
        start.wait()
        try:
            auth.login("alice", "wrong", "192.0.2.1")
        except Unauthorized:
            outcomes.append("refused")
        except TooManyAttempts:
            outcomes.append("throttled")

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 3 + ["throttled"] * 9


def test_an_unknown_or_disabled_user_costs_one_bcrypt_check_of_the_configured_cost(sqlite_url, monkeypatch):
    lab = open_lab(sqlite_url, password_rounds=5)
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    set_active(lab.lab.db, "alice", False)
    for user in ("nobody", "alice", "op"):
        checked.clear()
        assert log_in(lab.client, user, "wrong").status_code == 401
        assert len(checked) == 1, user
    checked.clear()
    log_in(lab.client, "nobody", "wrong")
    assert checked[0].split(b"$")[2] == b"05"  # the dummy hash costs what a new user's does


def test_unknown_and_known_users_take_as_long(sqlite_url):
    lab = open_lab(sqlite_url, password_rounds=10, login_failures_per_user=100, login_failures_per_address=100)
    lab.add_user("carol", "requester", REQUESTER_TENANT)  # hashed at the configured cost, as every new user

    def seconds(user: str) -> float:
        started = time.perf_counter()
        assert log_in(lab.client, user, "wrong").status_code == 401
        return time.perf_counter() - started

    known = statistics.median(seconds("carol") for _ in range(5))
    unknown = statistics.median(seconds(f"nobody{i}") for i in range(5))
    assert 0.6 < unknown / known < 1.6, (known, unknown)


@pytest.mark.parametrize("password", ["a" * 73, "é" * 37])  # 73 and 74 bytes (37 characters)
def test_a_password_longer_than_72_bytes_is_a_4xx_naming_the_field(sqlite_url, password):
    lab = open_lab(sqlite_url)
    r = lab.post("op", "/api/v1/users", json={"username": "long", "password": password, "role": "operator"})
    assert r.status_code == 422, r.text
    assert "password" in r.json()["detail"] and "72 bytes" in r.json()["detail"]
    r = log_in(lab.client, "op", password)
    assert r.status_code == 422 and "password" in r.json()["detail"]
    r = lab.client.post("/dashboard/login", data={"username": "op", "password": password})
    assert r.status_code == 422 and "72 bytes" in r.text
    ok = lab.post("op", "/api/v1/users", json={"username": "long", "password": "a" * 72, "role": "operator"})
    assert ok.status_code == 201 and log_in(lab.client, "long", "a" * 72).status_code == 200
