"""``labweave bench server --database postgresql://... --replicas 1,2``: claims/s on one PostgreSQL
database served by one, then several ``labweave serve`` replicas.

For each replica count the benchmark creates a fresh database on the given
server (dropped afterwards), seeds it as the SQLite bench does, starts that
many real replica processes on loopback ports (sharing one token signing key),
fills the queue through all of them (the creates/s of that fill is printed
too), then has concurrent clients claim, spread evenly over the replicas and
over the four tenants. Rates count what the database holds afterwards.

Each run ends with a check read straight from the database: every claim made
one ``reserved`` event, no request was reserved twice, and every reserved
request has an owner. A double claim fails the benchmark.

To say what limits the rate, the CPU seconds used during the claims are
printed per part: the replicas, PostgreSQL's processes, and the load
generator, as fractions of the machine's capacity over the run.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from labweave.services.server.process import ServerProcess

from .load import drive_spread
from .server import bench_request, emit, login, seed


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process and its reaped children, from ``/proc`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / _ticks()


def postgres_pids() -> list[int]:
    """The PostgreSQL server processes of this machine (the postmaster and its backends)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class CpuMeter:
    """CPU seconds used by some processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: Callable[[], Sequence[int]]):
        self.pids = pids
        self.before: dict[int, float] = {}

    def start(self) -> None:
        self.before = {pid: cpu_seconds(pid) for pid in self.pids()}

    def stop(self) -> float:
        # a backend that ended during the run is lost (its postmaster reaps it); the replicas' pools keep theirs
        return sum(cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in self.pids())


def self_and_children_cpu() -> float:
    """CPU seconds of this process and the children it reaped (the load generator's worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new database on the server of ``admin_url``, dropped (even with connections open) afterwards."""
    name = f"labweave_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(admin_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def claim_check(url: str) -> dict[str, int]:
    """Claims as the database holds them: reserved requests, reserved events, requests reserved twice."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        reserved = conn.execute("SELECT count(*) FROM request WHERE status = 'reserved'").fetchone()
        unowned = conn.execute(
            "SELECT count(*) FROM request WHERE status = 'reserved' AND owner_tenant_uuid IS NULL").fetchone()
        events = conn.execute(
            "SELECT count(*) FROM event WHERE kind = 'request.status' AND to_status = 'reserved'").fetchone()
        doubles = conn.execute(
            "SELECT count(*) FROM (SELECT subject FROM event WHERE kind = 'request.status' AND to_status = 'reserved'"
            " GROUP BY subject HAVING count(*) > 1) AS twice").fetchone()
        pending = conn.execute("SELECT count(*) FROM request WHERE status = 'pending'").fetchone()
    assert reserved and unowned and events and doubles and pending
    return {"reserved": reserved[0], "unowned": unowned[0], "reserved_events": events[0],
            "reserved_twice": doubles[0], "pending": pending[0]}


def one_count(url: str, replicas: int, seconds: float, connections: int, pending: int, tmp: Path) -> list[dict]:
    """Creates/s and claims/s with ``replicas`` replicas on a fresh database; the double-claim check."""
    out: list[dict] = []
    with fresh_database(url) as db_url, ExitStack() as stack:
        key = secrets.token_urlsafe(48)
        seed(db_url, key)
        env = {"LABWEAVE_SECRET_KEY": key, "LABWEAVE_CACHE_SECONDS": "5"}
        servers = [stack.enter_context(ServerProcess(db_url, env=env, log_path=tmp / f"replica{replicas}-{i}.log"))
                   for i in range(replicas)]
        bases = [s.url for s in servers]
        requester = login(bases[0], "bench-requester", "bench-password")
        cells = [login(bases[i % replicas], f"cell{i}", "bench-password") for i in range(4)]
        import httpx

        me = httpx.get(f"{bases[0]}/api/v1/me", headers={"Authorization": f"Bearer {requester}"}).json()
        bodies = [bench_request(me["tenant_uuid"], i) for i in range(64)]
        drive_spread(bases, "/requests/", bodies, [requester], connections, 1)  # warm up every replica's pool
        before = claim_check(db_url)["pending"]
        load = drive_spread(bases, "/requests/", bodies, [requester], connections, seconds)
        made = claim_check(db_url)["pending"] - before
        out.append(emit(f"pg_creates_per_s_{replicas}_replicas", made / load.seconds, "1/s", replicas=replicas,
                        connections=connections, generator=load.generator))
        while claim_check(db_url)["pending"] < pending:  # enough for the claimers not to run dry
            drive_spread(bases, "/requests/", bodies, [requester], connections, 2)
        drive_spread(bases, "/api/v1/claims", ["{}"], cells, connections, 1)  # warm up the claim path
        c0 = claim_check(db_url)
        meters = {"replicas": CpuMeter(lambda: [s.proc.pid for s in servers if s.proc]),
                  "postgresql": CpuMeter(postgres_pids)}
        for m in meters.values():
            m.start()
        client0 = self_and_children_cpu()
        wall = time.monotonic()
        load = drive_spread(bases, "/api/v1/claims", ["{}"], cells, connections, seconds)
        wall = time.monotonic() - wall
        used = {name: m.stop() for name, m in meters.items()}
        used["load_generator"] = self_and_children_cpu() - client0
        c1 = claim_check(db_url)
        claims = c1["reserved"] - c0["reserved"]
        capacity = (os.cpu_count() or 1) * wall
        out.append(emit(
            f"pg_claims_per_s_{replicas}_replicas", claims / load.seconds, "1/s", replicas=replicas,
            connections=connections, generator=load.generator,
            queue_ran_dry=c1["pending"] == 0,
            cpu_share={name: round(sec / capacity, 3) for name, sec in used.items()},
            cpu_ms_per_claim={name: round(1000 * sec / max(1, claims), 3) for name, sec in used.items()}))
        if c1["reserved_twice"] or c1["reserved"] != c1["reserved_events"] or c1["unowned"]:
            raise AssertionError(f"claims went wrong with {replicas} replicas: {json.dumps(c1)}")
        out.append(emit(f"pg_double_claims_{replicas}_replicas", c1["reserved_twice"], "claims",
                        claims=c1["reserved"], reserved_events=c1["reserved_events"]))
    return out


def run(url: str, replicas: Sequence[int], seconds: float = 5.0, connections: int = 8,
        pending: int = 4000) -> list[dict]:
    """The PostgreSQL figures for each replica count, then the ratio of the last count's claims/s to the first's."""
    tmp = Path(tempfile.mkdtemp(prefix="labweave-bench-pg-"))
    out: list[dict] = []
    rates: dict[int, float] = {}
    for n in replicas:
        figures = one_count(url, n, seconds, connections, pending, tmp)
        out += figures
        rates[n] = next(f["value"] for f in figures if f["figure"] == f"pg_claims_per_s_{n}_replicas")
    if len(rates) > 1:
        first, last = replicas[0], replicas[-1]
        out.append(emit(f"pg_claims_ratio_{last}_to_{first}_replicas", rates[last] / rates[first] if rates[first]
                        else 0.0, "ratio", cpus=os.cpu_count()))
    return out
