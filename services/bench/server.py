"""``labweave bench server``: the intention server under load, over real HTTP.

Figures (one JSON line each): FINALES2's unpaged listings with 3,000 pending
(``/pending_requests/`` as a tenant and ``/all_requests/`` as their requester:
the first call, then median and p95 of many), requests created/s, a filtered
page of pending requests at N pending (median and p95 latency), claims/s, results/s, and the
double claims seen with 32 concurrent claimers. The floor (a bare FastAPI
endpoint parsing the same body and inserting one SQLite row) is measured in
the same run with the same load generator, and each rate is also printed as
a fraction of it. Creates and the floor are measured in turn ``repeats``
times (the machine's load changes from one second to the next) and the
median of the fractions is printed. Rates count what the database holds afterwards, not what
the load generator sent.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from labweave.schemas.capability import Capability
from labweave.schemas.tenant import TenantDefinition
from labweave.services.server.auth import add_user
from labweave.services.server.config import Settings
from labweave.services.server.lab import Lab
from labweave.services.server.process import ServerProcess, free_port

from .load import drive

QUANTITY, METHOD = "bench_conductivity", "bench_cell"

COMPONENT = {
    "type": "object",
    "required": ["chemical", "fraction", "fraction_type"],
    "properties": {
        "chemical": {"type": "object", "required": ["SMILES", "InChIKey"],
                     "properties": {"SMILES": {"type": "string"}, "InChIKey": {"type": "string"}}},
        "fraction": {"type": "number", "minimum": 0, "maximum": 1},
        "fraction_type": {"type": "string", "enum": ["molPerMol", "molPerKg"]},
    },
}
CAPABILITY = {
    "quantity": QUANTITY,
    "method": METHOD,
    "json_schema_specifications": {
        "type": "object",
        "required": ["formulation", "temperature"],
        "properties": {"formulation": {"type": "array", "items": COMPONENT, "minItems": 1},
                       "temperature": {"type": "number"}},
    },
    "json_schema_result_output": {
        "type": "object", "required": ["conductivity"],
        "properties": {"conductivity": {"type": "number"}, "temperature": {"type": "number"}},
    },
}
TENANT = {
    "name": "bench cell",
    "limitations": [{"quantity": QUANTITY, "method": METHOD, "limitations": {
        "formulation": [[{"chemical": {"SMILES": ["C1COC(=O)O1", "CCOC(=O)OC", "[Li+].F[P-](F)(F)(F)(F)F"]},
                          "fraction": [{"min": 0, "max": 1}], "fraction_type": ["molPerMol"]}]],
        "temperature": [{"min": 250, "max": 350}]}}],
}


def bench_request(tenant_uuid: str, i: int = 0) -> dict:
    ec = 0.2 + (i % 30) / 100
    formulation = [
        {"chemical": {"SMILES": "C1COC(=O)O1", "InChIKey": "KMTRUDSVKNLOMY-UHFFFAOYSA-N"}, "fraction": ec,
         "fraction_type": "molPerMol"},
        {"chemical": {"SMILES": "CCOC(=O)OC", "InChIKey": "JBTWLSYIZRCDFO-UHFFFAOYSA-N"}, "fraction": 0.9 - ec,
         "fraction_type": "molPerMol"},
        {"chemical": {"SMILES": "[Li+].F[P-](F)(F)(F)(F)F", "InChIKey": "AXPLOJNSKRXQPA-UHFFFAOYSA-N"},
         "fraction": 0.1, "fraction_type": "molPerMol"},
    ]
    return {"quantity": QUANTITY, "methods": [METHOD], "tenant_uuid": tenant_uuid,
            "parameters": {METHOD: {"formulation": formulation, "temperature": 298.15}}}


def emit(figure: str, value: float, unit: str, floor: float | None = None, **extra) -> dict:
    line = {"figure": figure, "value": round(value, 3), "unit": unit}
    if floor:
        line["fraction_of_floor"] = round(value / floor, 3)
    line.update(extra)
    print(json.dumps(line), flush=True)
    return line


def seed(url: str, secret_key: str | None = None) -> None:
    """Capability, tenants and users for a server this benchmark starts itself (``secret_key``: the replicas'
    token signing key, which PostgreSQL needs)."""
    settings = Settings(database_url=url, password_rounds=4)
    if secret_key is not None:
        settings = Settings(database_url=url, password_rounds=4, secret_key=secret_key)
    lab = Lab.open(settings)
    lab.registry.add_capability(Capability.model_validate(CAPABILITY), "bench")
    for i in range(4):
        row = lab.registry.add_tenant(TenantDefinition.model_validate(TENANT | {"name": f"bench cell {i}"}), "bench")
        add_user(lab.db, f"cell{i}", "bench-password", "tenant", row.uuid, 4)
    req = lab.registry.add_tenant(TenantDefinition(name="bench requester", limitations=[]), "bench")
    add_user(lab.db, "bench-requester", "bench-password", "requester", req.uuid, 4)
    add_user(lab.db, "bench-operator", "bench-password", "operator", None, 4)
    lab.close()


def seed_remote(base: str, user: str, password: str) -> tuple[list[str], str]:
    """Set a running server up for the benchmark through its API, as one of its operators.

    Returns:
        The tenant users' names and the requester's name (all with password ``bench-password``).
    """
    import uuid

    from labweave.services.client import LabClient

    tag = uuid.uuid4().hex[:6]
    with LabClient(base, user, password) as op:
        op.register_capability(CAPABILITY)
        cells = []
        for i in range(4):
            tenant = op.register_tenant(TENANT | {"name": f"bench cell {i} {tag}"})
            op.add_user(f"cell{i}-{tag}", "bench-password", "tenant", tenant.tenant_uuid)
            cells.append(f"cell{i}-{tag}")
        requester = op.register_tenant({"name": f"bench requester {tag}", "limitations": []})
        op.add_user(f"bench-requester-{tag}", "bench-password", "requester", requester.tenant_uuid)
    return cells, f"bench-requester-{tag}"


def login(base: str, user: str, password: str) -> str:
    r = httpx.post(f"{base}/user_management/authenticate", data={"username": user, "password": password})
    r.raise_for_status()
    return r.json()["access_token"]


def counts(base: str) -> Counter:
    """Requests by status, summed over quantities, from the server's metrics."""
    by_status: Counter = Counter()
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        if family.name == "labweave_requests":
            for sample in family.samples:
                by_status[sample.labels["status"]] += int(sample.value)
    return by_status


@contextmanager
def floor_server(tmp: Path) -> Iterator[str]:
    """The floor app (``bench.floor``) in a child process on a loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "labweave.services.bench.floor", "--port", str(port),
                             "--db", str(tmp / "floor.db")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        drive(base, "/requests/", [bench_request("floor", i) for i in range(64)], connections=16, seconds=1)  # warm up
        yield base
    finally:
        proc.terminate()
        proc.wait()


def measure_floor(base: str, seconds: float, connections: int, tmp: Path) -> float:
    """Rows the floor stored per second while driven for ``seconds``."""
    import sqlite3

    bodies = [bench_request("floor", i) for i in range(64)]
    with closing(sqlite3.connect(tmp / "floor.db")) as db:
        before = db.execute("SELECT count(*) FROM request").fetchone()[0]
        load = drive(base, "/requests/", bodies, connections=connections, seconds=seconds)
        after = db.execute("SELECT count(*) FROM request").fetchone()[0]
    rate = (after - before) / load.seconds
    emit("floor_creates_per_s", rate, "1/s", generator=load.generator, connections=connections)
    return rate


def race(base: str, tokens: list[str], claimers: int = 32, limit: int = 2000) -> tuple[int, int]:
    """``claimers`` threads claim until none is left (or ``limit``); returns (claims, double claims)."""
    claimed: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(claimers)

    def claimer(i: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                          timeout=60) as c:
            barrier.wait()
            while True:
                with lock:
                    if len(claimed) >= limit:
                        return
                r = c.post("/api/v1/claims", json={})
                if r.status_code == 204:
                    return
                r.raise_for_status()
                with lock:
                    claimed.append(r.json()["request"]["uuid"])

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doubles = sum(n - 1 for n in Counter(claimed).values() if n > 1)
    return len(claimed), doubles


def top_up(base: str, token: str, tenant_uuid: str, target: int, threads: int = 8) -> None:
    """Post requests until ``target`` are pending (none when there are already as many)."""
    missing = max(0, target - int(counts(base)["pending"]))

    def post(start: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            for i in range(start, missing, threads):
                c.post("/requests/", json=bench_request(tenant_uuid, i)).raise_for_status()

    workers = [threading.Thread(target=post, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def listing_latency(base: str, token: str, path: str, calls: int) -> tuple[float, list[float], int]:
    """(first call ms, the next ``calls`` calls' ms sorted, items listed) of a GET of ``path``."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        t = time.perf_counter()
        r = c.get(path)
        first = (time.perf_counter() - t) * 1000
        r.raise_for_status()
        latencies = []
        for _ in range(calls):
            t = time.perf_counter()
            r = c.get(path)
            latencies.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
    return first, sorted(latencies), len(r.json())


def listings(base: str, tenant_token: str, requester_token: str, calls: int) -> list[dict]:
    """FINALES2's unpaged listings: a tenant polling ``/pending_requests/``, a requester ``/all_requests/``."""
    out = []
    n_pending = int(counts(base)["pending"])
    for figure, path, token in (("pending_requests", "/pending_requests/", tenant_token),
                                ("all_requests", "/all_requests/", requester_token)):
        first, lat, items = listing_latency(base, token, path, calls)
        out.append(emit(f"{figure}_ms_median", statistics.median(lat), "ms", pending=n_pending, listed=items,
                        calls=calls))
        out.append(emit(f"{figure}_ms_p95", lat[min(len(lat) - 1, int(0.95 * len(lat)))], "ms", pending=n_pending))
        out.append(emit(f"{figure}_ms_first_call", first, "ms", pending=n_pending))
    return out


def run(url: str | None = None, pending: int = 10_000, seconds: float = 5.0, connections: int = 16,
        user: str = "bench-operator", password: str = "bench-password", listing_pending: int = 3_000,
        listing_calls: int = 100, repeats: int = 3) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="labweave-bench-"))
    with floor_server(tmp) as floor_base:
        return _run(url, floor_base, tmp, pending, seconds, connections, user, password, listing_pending,
                    listing_calls, repeats)


def _run(url: str | None, floor_base: str, tmp: Path, pending: int, seconds: float, connections: int, user: str,
         password: str, listing_pending: int, listing_calls: int, repeats: int) -> list[dict]:
    floor = measure_floor(floor_base, seconds, connections, tmp)
    server = None
    if url is None:
        db_url = f"sqlite:///{tmp / 'bench.db'}"
        seed(db_url)
        server = ServerProcess(db_url, env={"LABWEAVE_CACHE_SECONDS": "5"}, log_path=tmp / "server.log").start()
        base = server.url
        cells, requester = [f"cell{i}" for i in range(4)], "bench-requester"
    else:
        base = url.rstrip("/")
        cells, requester = seed_remote(base, user, password)
    requester_token = login(base, requester, "bench-password")
    tenant_tokens = [login(base, name, "bench-password") for name in cells]
    requester_uuid = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {requester_token}"}).json()
    requester_uuid = requester_uuid["tenant_uuid"]
    out = []
    try:
        bodies = [bench_request(requester_uuid, i) for i in range(64)]
        drive(base, "/requests/", bodies, requester_token, connections, 1)  # warm up
        top_up(base, requester_token, requester_uuid, listing_pending)
        out += listings(base, tenant_tokens[0], requester_token, listing_calls)
        fractions, floors = [], [floor]
        for turn in range(repeats):  # the floor and the server in turn, so that both see the same machine
            if turn:
                floors.append(measure_floor(floor_base, seconds, connections, tmp))
            before = counts(base)["pending"]
            load = drive(base, "/requests/", bodies, requester_token, connections, seconds)
            made = counts(base)["pending"] - before
            line = emit("requests_created_per_s", made / load.seconds, "1/s", floors[-1], generator=load.generator)
            out.append(line)
            fractions.append(line["fraction_of_floor"])
        floor = statistics.median(floors)
        if repeats > 1:
            out.append(emit("requests_created_fraction_of_floor_median", statistics.median(fractions), "ratio",
                            fractions=fractions, floors=[round(f, 1) for f in floors]))
        while counts(base)["pending"] < pending:
            drive(base, "/requests/", bodies, requester_token, connections, 2)
        n_pending = int(counts(base)["pending"])
        headers = {"Authorization": f"Bearer {tenant_tokens[0]}"}
        latencies = []
        with httpx.Client(base_url=base, headers=headers) as c:
            params: dict[str, str | int] = {"status": "pending", "quantity": QUANTITY, "method": METHOD, "limit": 50}
            for _ in range(20):
                c.get("/api/v1/requests", params=params)
            for _ in range(200):
                t = time.perf_counter()
                r = c.get("/api/v1/requests", params=params)
                latencies.append((time.perf_counter() - t) * 1000)
                assert len(r.json()["items"]) == 50
        latencies.sort()
        out.append(emit("pending_page_ms_median", statistics.median(latencies), "ms", pending=n_pending, page=50))
        out.append(emit("pending_page_ms_p95", latencies[int(0.95 * len(latencies))], "ms", pending=n_pending))
        c0 = counts(base)
        load = drive(base, "/api/v1/claims", ["{}"], tenant_tokens[0], connections, seconds)
        claims = counts(base)["reserved"] - c0["reserved"]
        out.append(emit("claims_per_s", claims / load.seconds, "1/s", floor, generator=load.generator))
        drive(base, "/api/v1/claims", ["{}"], tenant_tokens[0], connections, 2 * seconds)  # enough to post results for
        reserved = []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tenant_tokens[0]}"}, timeout=60) as c:
            cursor: str | None = None
            while True:
                q: dict[str, str | int] = {"status": "reserved", "limit": 1000}
                if cursor:
                    q["cursor"] = cursor
                page = c.get("/api/v1/requests", params=q).json()
                reserved += [(r["uuid"], r["owner_tenant_uuid"]) for r in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            me = c.get("/api/v1/me").json()["tenant_uuid"]
        results = [{"data": {"conductivity": 10.0 + i % 7, "temperature": 298.15}, "quantity": QUANTITY,
                    "method": [METHOD], "parameters": {METHOD: {}}, "tenant_uuid": me, "request_uuid": u}
                   for i, (u, owner) in enumerate(reserved) if owner == me]
        c0 = counts(base)
        load = drive(base, "/api/v1/results", results, tenant_tokens[0], connections, seconds)
        resolved = counts(base)["resolved"] - c0["resolved"]
        out.append(emit("results_per_s", resolved / load.seconds, "1/s", floor, generator=load.generator,
                        note="limited by the reserved requests available" if resolved >= len(results) else ""))
        top_up(base, requester_token, requester_uuid, 500)  # the claims above may have emptied the queue
        n, doubles = race(base, tenant_tokens, 32, limit=500)
        out.append(emit("double_claims_32_claimers", doubles, "claims", claims=n))
    finally:
        if server:
            server.stop()
    return out
