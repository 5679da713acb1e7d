"""A server that hands out a request outside a tenant's limits: the driver refuses it, the request fails for good.

The test seam is the server's limitation check (``Catalogue.admits``, its yes/no),
patched in the in-process app to admit anything a tenant offers: the server
stores and hands out a recipe hotter than the chamber's heater, as a
misbehaving (or misconfigured) server would. The tenant runtime claims it;
the chamber's own check refuses it before anything is heated; the runtime
posts a final failure naming the field and the limit.
"""

from __future__ import annotations

import asyncio

import httpx

from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import ValidationFailed
from labweave.services.server.registry import Catalogue
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant
from labweave.services.tenant.runtime import TenantRuntime

from ..server.helpers import REQUESTER_TENANT, open_lab

RECIPE = {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0, "substrate_temperature": 1000.0,
          "oxygen_pressure": 1.0, "repetition_rate": 2.0, "pulses": 20}


def pld_request(**changes) -> dict:
    return {"quantity": "thin_film", "methods": ["pld_growth"], "parameters": {"pld_growth": RECIPE | changes},
            "tenant_uuid": REQUESTER_TENANT}


def test_the_driver_refuses_what_a_lax_server_hands_out(sqlite_url, tmp_path, monkeypatch):
    lab = open_lab(sqlite_url, tenants=False)
    app = lab.client.app

    def client(user: str, password: str) -> AsyncLabClient:
        return AsyncLabClient("http://lab", user, password, transport=httpx.ASGITransport(app=app))

    chamber = build("pld")

    async def scenario():
        async with client("op", "op") as op, client("alice", "alice") as alice:
            await provision_tenant(op, "chamber", [chamber], "chamber", "chamber-pw")
            hot = pld_request(substrate_temperature=1290.0)  # inside the wire's 1300 K, beyond the heater's 1000 degC
            # the real server refuses it: the chamber published its heater's limit
            try:
                await alice.post_request(hot)
            except ValidationFailed as exc:
                assert "substrate_temperature" in str(exc)
            else:
                raise AssertionError("the server should refuse a recipe beyond the tenant's limits")

            def lax(self, tenant_uuid, quantity, method, params):  # the seam: every limit admitted
                return tenant_uuid in self.offers.get((quantity, method), {})

            monkeypatch.setattr(Catalogue, "admits", lax)
            bad = await alice.post_request(hot)
            good = await alice.post_request(pld_request())

            async with client("chamber", "chamber-pw") as tenant:
                runtime = TenantRuntime(tenant, [chamber], state_dir=tmp_path / "state", poll_seconds=0.1)
                await runtime.start()
                for _ in range(2):
                    assert await runtime._claim_for_idle_instruments() == 1
                    await asyncio.gather(*[job.task for job in list(runtime.jobs.values()) if job.task])
            failed = await alice.request(bad)
            assert failed.status == "failed" and failed.attempts == 0  # final: not handed out again
            assert "substrate_temperature" in failed.failure_reason
            assert "the substrate heater, 1000 degC (1273.15 kelvin)" in failed.failure_reason
            last = (await alice.history(bad))[-1]
            assert last.actor == "chamber" and last.message.startswith("final failure")
            assert (await alice.request(good)).status == "resolved"
            assert runtime.counters.failed == 1 and runtime.counters.resolved == 1
            # the chamber ran only the good recipe: its heater went to 1000 K, never beyond
            assert chamber.backend.heater_temperature == 1000.0

    asyncio.run(scenario())
