"""The compose topology without containers: one PostgreSQL database, two ``labweave serve``
replicas on two loopback ports, a tenant daemon on each, the optimizer daemon on one and a
requester on the other, set up with the commands compose.yaml runs (passwords from files).

After a campaign, read straight from the database: no request was claimed twice, every request
is resolved with exactly one result, and both replicas' tenants did work. An event-stream client
on replica A receives every event written through either replica, once each and in order; the
delay from an event written through B to its arrival on A is printed."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
from psycopg.rows import dict_row
from typer.testing import CliRunner

from labweave.services.cli.main import app

from labweave.services.server.process import ServerProcess

from ..faults.lab import small_campaign, wait_for

BUDGET = 8
EXTRA = 4  # growths the requester on replica A posts itself
PASSWORDS = {"operator": "operator-pw-1", "chamber-a": "chamber-a-pw", "chamber-b": "chamber-b-pw",
             "planner": "planner-pw-1", "alice": "alice-pw-12"}


def labweave(*args: str, env: dict[str, str]) -> str:
    """A set-up step of compose.yaml, run in this process (the same command, without a new interpreter)."""
    done = CliRunner().invoke(app, list(args), env=env)
    assert done.exit_code == 0, f"labweave {' '.join(args)}: {done.output}"
    return done.output


class StreamClient(threading.Thread):
    """A server-sent event client: every event it receives, with the time it arrived."""

    def __init__(self, url: str, token: str, after: int):
        super().__init__(name="event stream", daemon=True)
        self.url, self.token, self.after = url, token, after
        self.received: list[tuple[dict, float]] = []
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream("GET", f"{self.url}/api/v1/events/stream", params={"after": self.after},
                              headers={"Authorization": f"Bearer {self.token}"},
                              timeout=httpx.Timeout(10.0, read=None)) as response:
                assert response.status_code == 200, response.read()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.received.append((json.loads(line[6:]), time.time()))
                    if self.halt.is_set():
                        return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            if not self.halt.is_set():
                self.error = exc


def query(url: str, sql: str, *args) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, args).fetchall()


def test_two_replicas_share_one_lab(pg_url, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    for name, value in PASSWORDS.items():
        (secrets / name).write_text(value + "\n")
    key = secrets / "signing_key"
    key.write_text("replicas-share-this-key-" + "x" * 40 + "\n")
    key.chmod(0o600)
    env = {"LABWEAVE_DATABASE_URL": pg_url, "LABWEAVE_PASSWORD_ROUNDS": "4"}

    # the set-up steps of compose.yaml
    labweave("db", "upgrade", env=env)
    labweave("user", "add", "operator", "--role", "operator", "--password-file", str(secrets / "operator"), env=env)
    for chamber in ("chamber-a", "chamber-b"):
        labweave("tenant", "provision", "pld", "--name", chamber, "--user", chamber,
                 "--password-file", str(secrets / chamber), env=env)
    out = labweave("tenant", "provision", "--name", "requesters", "--role", "requester", "--user", "planner",
                   "--password-file", str(secrets / "planner"), env=env)
    requesters = out.split()[0]
    labweave("user", "add", "alice", "--role", "requester", "--tenant", requesters,
             "--password-file", str(secrets / "alice"), env=env)

    server_env = {"LABWEAVE_SECRET_KEY_FILE": str(key), "LABWEAVE_PASSWORD_ROUNDS": "4",
                  "LABWEAVE_AUTO_MIGRATE": "false", "LABWEAVE_SWEEP_SECONDS": "1"}
    replicas = [ServerProcess(pg_url, env=server_env, log_path=tmp_path / f"server-{n}.log") for n in "ab"]
    daemons: list[subprocess.Popen] = []
    stream: StreamClient | None = None
    try:
        for replica in replicas:
            replica.start(timeout=90)
        a, b = replicas

        def daemon(name: str, user: str, server: ServerProcess, *args: str) -> subprocess.Popen:
            denv = {**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": user,
                    "LABWEAVE_PASSWORD_FILE": str(secrets / user), "LABWEAVE_LOG_LEVEL": "INFO"}
            with open(tmp_path / f"{name}.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "labweave.services.cli.main", *args], env=denv,
                                        stdout=log, stderr=subprocess.STDOUT)
            daemons.append(proc)
            return proc

        def logs() -> str:
            return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
                             for p in sorted(tmp_path.glob("*.log")))

        # the operator watches replica A's event stream from the first event on
        with httpx.Client(base_url=a.url, timeout=10) as http:
            r = http.post("/user_management/authenticate",
                          data={"username": "operator", "password": PASSWORDS["operator"]})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
        start = query(pg_url, "SELECT coalesce(max(id), 0) AS id FROM event")[0]["id"]
        stream = StreamClient(a.url, token, start)
        stream.start()

        (tmp_path / "campaign.toml").write_text(small_campaign("replicas", BUDGET, 4, (300, 700)))
        for chamber, replica in (("chamber-a", a), ("chamber-b", b)):
            daemon(chamber, chamber, replica, "tenant", "run", "pld", "--state-dir", str(tmp_path / chamber),
                   "--poll", "0.5", "--lease", "60")
        optimizer = daemon("optimizer", "planner", b, "optimize", str(tmp_path / "campaign.toml"), "--poll", "0.3")

        # the requester on replica A, through the real client
        from labweave.services.client import LabClient

        with LabClient(a.url, "alice", PASSWORDS["alice"]) as alice:
            mine = [alice.create_request(
                {"quantity": "thin_film", "methods": ["pld_growth"], "tenant_uuid": requesters,
                 "parameters": {"pld_growth": {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0,
                                               "oxygen_pressure": 1.0, "repetition_rate": 2.0, "pulses": 40,
                                               "substrate_temperature": 900.0 + n}}}).uuid
                for n in range(EXTRA)]

        try:
            code = optimizer.wait(300)
        except subprocess.TimeoutExpired:
            raise AssertionError("the campaign did not finish within 300 s\n" + logs()) from None
        assert code == 0, logs()
        wait_for(lambda: not query(pg_url, "SELECT uuid FROM request WHERE status NOT IN ('resolved', 'failed', "
                                           "'retracted')"), 120, "every request ended")

        # ---- the audit, straight from the database
        requests = query(pg_url, "SELECT uuid, status, campaign, lease_expiries FROM request")
        assert len(requests) == BUDGET + EXTRA
        assert {r["uuid"] for r in requests} >= set(mine)
        assert Counter(r["status"] for r in requests) == {"resolved": BUDGET + EXTRA}, logs()
        assert sum(1 for r in requests if r["campaign"] == "replicas") == BUDGET
        assert sum(r["lease_expiries"] for r in requests) == 0
        reserved = Counter(e["subject"] for e in query(
            pg_url, "SELECT subject FROM event WHERE kind = 'request.status' AND to_status = 'reserved'"))
        assert set(reserved) == {r["uuid"] for r in requests}
        assert max(reserved.values()) == 1, f"claimed twice: {reserved.most_common(3)}"
        resolved = Counter(e["subject"] for e in query(
            pg_url, "SELECT subject FROM event WHERE kind = 'request.status' AND to_status = 'resolved'"))
        assert max(resolved.values()) == 1 and len(resolved) == BUDGET + EXTRA
        results = query(pg_url, "SELECT request_uuid, posted_by, idempotency_key FROM result "
                                "WHERE status = 'original'")
        per_request = Counter(r["request_uuid"] for r in results)
        assert set(per_request) == {r["uuid"] for r in requests} and max(per_request.values()) == 1
        keys = [r["idempotency_key"] for r in results]
        assert all(keys) and len(keys) == len(set(keys))
        served = Counter(r["posted_by"] for r in results)
        assert set(served) == {"chamber-a", "chamber-b"}, f"both replicas' tenants work: {served}"
        (record,) = query(pg_url, "SELECT status FROM campaign WHERE name = 'replicas'")
        assert record["status"] == "finished"

        # ---- replica A's stream carried every event, those written through B included, once and in order
        written = [e["id"] for e in query(pg_url, "SELECT id FROM event WHERE id > %s ORDER BY id", start)]
        wait_for(lambda: {e["id"] for e, _ in stream.received} >= set(written), 30,
                 "replica A's stream caught up with the event table")
        assert stream.error is None, stream.error
        ids = [e["id"] for e, _ in stream.received]
        assert ids == sorted(set(ids)), "each event once, in order"
        assert set(ids) == set(written)
        through_b = [(e, at) for e, at in stream.received if e["actor"] in ("chamber-b", "planner")]
        assert sum(1 for e, _ in through_b if e["to_status"] == "pending" and e["actor"] == "planner") == BUDGET
        assert any(e["to_status"] == "resolved" and e["actor"] == "chamber-b" for e, _ in through_b)
        delays = sorted(at - datetime_seconds(e["time"]) for e, at in through_b)
        print(f"\nreplica A's stream, events written through B: {len(delays)}; delay median "
              f"{statistics.median(delays) * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms; "
              f"results by tenant: {dict(served)}")
    finally:
        if stream is not None:
            stream.halt.set()
        for proc in daemons:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for replica in replicas:
            replica.stop()


def datetime_seconds(value) -> float:
    """An event's time as the wire gives it (ISO 8601) in seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else float(value)
