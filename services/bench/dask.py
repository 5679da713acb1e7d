"""``labweave bench dask``: EMT relaxations through the tenant runtime, in its process and on Dask.

A server is started on a fresh SQLite file with an EMT tenant and a
requester; for each setting (``in-process``: a worker thread of the tenant,
as ``--dask-scheduler none``; then a local Dask cluster of N one-thread
worker processes) the same requests are posted and one tenant runtime serves
them to the end. Figures, one JSON line each:

- ``emt_relaxations_per_s``: requests resolved per second of the run;
- ``orchestration_overhead_ms``: per request, the time from its claim to its
  result on the server (its events) minus the computation's own wall time
  (``wall_seconds`` in the result): claiming, Dask's round trip, posting,
  heartbeats; median and 90th percentile.

Before the clock starts, each worker relaxes one cell (imports, elemental
references), as a long-running cluster would have.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from labweave.schemas.capability import Capability
from labweave.schemas.tenant import TenantDefinition
from labweave.services.server.auth import add_user
from labweave.services.server.config import Settings
from labweave.services.server.lab import Lab
from labweave.services.server.process import ServerProcess

PASSWORD = "bench-password"
IN_PROCESS = "in-process"
#: Cu-Au cells of four atoms: a relaxation and an equation of state of about a second.
FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _params(x: float) -> dict:
    composition = {k: v for k, v in (("Cu", x), ("Au", 1.0 - x)) if v > 0}
    return {"alloy": {"prototype": "fcc", "composition": composition, "supercell": 1}, "fmax": 0.01}


def _seed(url: str) -> str:
    """The EMT capability, its tenant and user, a requester; returns the requester's tenant uuid."""
    from labweave.services.tenant.catalog import build

    emt = build("emt")
    lab = Lab.open(Settings(database_url=url, password_rounds=4))
    lab.registry.add_capability(Capability.model_validate(emt.capabilities()[0]), "bench")
    tenant = lab.registry.add_tenant(TenantDefinition.model_validate(
        {"name": "bench emt", "limitations": emt.limitations()}), "bench")
    add_user(lab.db, "bench-emt", PASSWORD, "tenant", tenant.uuid, 4)
    requester = lab.registry.add_tenant(TenantDefinition(name="bench requester", limitations=[]), "bench")
    add_user(lab.db, "bench-requester", PASSWORD, "requester", requester.uuid, 4)
    lab.close()
    return requester.uuid


def _emit(figure: str, value: float, unit: str, **extra: Any) -> dict:
    line = {"figure": figure, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(line), flush=True)
    return line


async def _one(base: str, db: Path, setting: str | int, simulations: int, requester: str,
               tmp: Path) -> list[dict]:
    from labweave.services.client import AsyncLabClient
    from labweave.services.cluster.executor import DaskExecutor
    from labweave.services.tenant.catalog import build
    from labweave.services.tenant.runtime import TenantRuntime

    executor = None
    if setting != IN_PROCESS:
        executor = await DaskExecutor.connect(local_workers=int(setting), local_processes=True)
    try:
        inst = build("emt")
        if executor is not None:
            inst.backend.executor = executor
        warm = 1 if executor is None else int(setting)
        await asyncio.gather(*[inst.perform("bulk_properties", "emt", _params(0.5)) for _ in range(warm)])
        async with AsyncLabClient(base, "bench-emt", PASSWORD) as tenant, \
                AsyncLabClient(base, "bench-requester", PASSWORD) as req:
            uuids = []
            for i in range(simulations):
                body = {"quantity": "bulk_properties", "methods": ["emt"],
                        "parameters": {"emt": _params(FRACTIONS[i % len(FRACTIONS)])}, "tenant_uuid": requester}
                uuids.append((await req.create_request(body)).uuid)
            runtime = TenantRuntime(tenant, [inst], state_dir=tmp / f"tenant-{setting}", poll_seconds=0.2)
            start = time.perf_counter()
            await runtime.run(until_idle=True)
            wall = time.perf_counter() - start
            computed = {u: (await req.result_for_request(u)) for u in uuids}
    finally:
        if executor is not None:
            await executor.close()
    missing = [u for u, r in computed.items() if r is None]
    if missing:
        raise RuntimeError(f"{len(missing)} of {simulations} requests were not resolved ({setting})")
    with sqlite3.connect(db) as conn:
        marks = conn.execute(
            f"SELECT subject, to_status, time FROM event WHERE kind = 'request.status' AND subject IN "
            f"({','.join('?' * len(uuids))}) AND to_status IN ('reserved', 'resolved')", uuids).fetchall()
    claimed = {s: t for s, status, t in marks if status == "reserved"}
    resolved = {s: t for s, status, t in marks if status == "resolved"}
    overhead = sorted(1000 * (resolved[u] - claimed[u] - r.result.data["wall_seconds"])
                      for u, r in computed.items() if r is not None)
    workers = "0 (a thread of the tenant)" if setting == IN_PROCESS else str(setting)
    return [
        _emit("emt_relaxations_per_s", simulations / wall, "1/s", dask_workers=workers, simulations=simulations,
              seconds=round(wall, 2)),
        _emit("orchestration_overhead_ms", statistics.median(overhead), "ms", dask_workers=workers,
              p90=round(overhead[int(0.9 * (len(overhead) - 1))], 1), statistic="median"),
    ]


def run(workers: list[int], simulations: int = 12) -> list[dict]:
    """Run the benchmark in-process and with each number of local Dask workers; the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="labweave-bench-dask-"))
    db = tmp / "bench.db"
    url = f"sqlite:///{db}"
    requester = _seed(url)
    rows: list[dict] = []
    with ServerProcess(url, env={"LABWEAVE_PASSWORD_ROUNDS": "4"}, log_path=tmp / "server.log") as server:
        settings: list[str | int] = [IN_PROCESS, *workers]
        for setting in settings:
            rows.extend(asyncio.run(_one(server.url, db, setting, simulations, requester, tmp)))
    return rows
