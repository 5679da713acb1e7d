"""The tenant runtime and an operator's pause of the lab: it waits and asks again, never fails,
and takes the work once the lab is resumed."""

from __future__ import annotations

import asyncio

from labweave.services.client import AsyncLabClient
from labweave.services.tenant.catalog import build
from labweave.services.tenant.runtime import TenantRuntime

from .test_runtime import pld_request, server  # noqa: F401  (the fixture: a real server process)


def test_a_paused_lab_makes_the_runtime_wait_then_serve(server, tmp_path):  # noqa: F811
    async def scenario():
        async with AsyncLabClient(server.url, "alice", "alice") as alice, \
                AsyncLabClient(server.url, "op", "op") as op, \
                AsyncLabClient(server.url, "chamber-a", "chamber-a-pw") as tenant:
            await op.pause_lab(reason="target change")
            uuid = await alice.post_request(pld_request())
            runtime = TenantRuntime(tenant, [build("pld")], state_dir=tmp_path / "state", poll_seconds=0.2)
            serving = asyncio.create_task(runtime.run(until_idle=True))
            await asyncio.sleep(3.0)  # several refused claims: still waiting, nothing failed or claimed
            assert not serving.done()
            assert runtime.counters.claimed == 0 and runtime.counters.failed == 0
            assert (await alice.request(uuid)).status == "pending"
            await op.resume_lab()
            await asyncio.wait_for(serving, 120)  # wakes on the resume, serves, then is idle
            assert runtime.counters.resolved == 1
            assert (await alice.request(uuid)).status == "resolved"

    asyncio.run(scenario())
