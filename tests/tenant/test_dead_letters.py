"""A result the server refuses is kept as a dead letter, shown to the operator, and retried or discarded.

The server refuses the chamber's results because the operator registered the
capability with an output schema the chamber's results do not meet (a field
it does not report is required): a 422 that no retry changes. The tenant
keeps each refused result with the server's message, through a restart,
reports it (the operator lists it, through the API and on the dashboard),
and, once the operator fixed the capability, posts it again on
``labweave tenant outbox --retry``; another is discarded (kept on disk, never posted).
"""

from __future__ import annotations

import asyncio
import copy
import json

import httpx
import pytest
from typer.testing import CliRunner

from labweave.services.cli.main import app as cli
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import PermissionDenied
from labweave.services.tenant.catalog import build
from labweave.services.tenant.outbox import Outbox
from labweave.services.tenant.provision import provision_tenant
from labweave.services.tenant.runtime import TenantRuntime

from ..server.helpers import open_lab
from .test_driver_guard import pld_request


def stricter(capability: dict) -> dict:
    """The capability with an output field the chamber does not report made required."""
    strict = copy.deepcopy(capability)
    output = strict["json_schema_result_output"]
    output.setdefault("properties", {})["film_certificate"] = {"type": "string"}
    output["required"] = [*output.get("required", []), "film_certificate"]
    return strict


def outbox_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["tenant", "outbox", *args])
    return result.exit_code, result.output


def test_refused_results_are_kept_reported_and_retried_or_discarded(sqlite_url, tmp_path):
    lab = open_lab(sqlite_url, tenants=False)
    app = lab.client.app
    lab_dir = tmp_path / "lab"
    state = lab_dir / "tenant-chamber"  # where `labweave tenant run --user chamber --state-dir lab` keeps it

    def client(user: str, password: str) -> AsyncLabClient:
        return AsyncLabClient("http://lab", user, password, transport=httpx.ASGITransport(app=app))

    chamber = build("pld")
    capability = chamber.capabilities()[0]

    async def run_one(runtime: TenantRuntime) -> None:
        assert await runtime._claim_for_idle_instruments() == 1
        await asyncio.gather(*[job.task for job in list(runtime.jobs.values()) if job.task])

    async def scenario():
        async with client("op", "op") as op, client("alice", "alice") as alice:
            tenant_uuid = await provision_tenant(op, "chamber", [chamber], "chamber", "chamber-pw")
            await op.register_capability(stricter(capability))
            first = await alice.post_request(pld_request())
            async with client("chamber", "chamber-pw") as tenant:
                runtime = TenantRuntime(tenant, [chamber], state_dir=state, poll_seconds=0.1)
                await runtime.start()
                await run_one(runtime)
                assert runtime.outbox.pending() == []  # not waiting to be posted: refused for good...
                [letter] = runtime.outbox.dead_letters()  # ...and kept, with the server's word
                assert letter["status_code"] == 422 and "film_certificate" in letter["refusal"]
                assert letter["result"]["request_uuid"] == first
                measured = letter["result"]["data"]
                failed = await alice.request(first)
                assert failed.status == "failed" and letter["key"] in failed.failure_reason
                await runtime.report_dead_letters()

                [shown] = await op.dead_letters()
                assert (shown.tenant_name, shown.request_uuid, shown.key) == ("chamber", first, letter["key"])
                assert (shown.quantity, shown.method, shown.status_code) == ("thin_film", "pld_growth", 422)
                assert "film_certificate" in shown.refusal
                with pytest.raises(PermissionDenied):
                    await alice.dead_letters()  # an operator's listing
                with pytest.raises(PermissionDenied):
                    await alice.report_dead_letters(tenant_uuid, [])  # only the tenant reports its own
                lab.client.post("/dashboard/login", data={"username": "alice", "password": "alice"})
                assert letter["key"] not in lab.client.get("/dashboard/tenants").text  # operators only
                lab.client.post("/dashboard/login", data={"username": "op", "password": "op"})
                page = lab.client.get("/dashboard/tenants")
                assert page.status_code == 200 and letter["key"] in page.text and "film_certificate" in page.text
                assert 'data-testid="dead-letters"' in lab.client.get("/dashboard/fragments/tenants").text

            # the tenant restarts: nothing is posted again by itself, nothing is lost, the report stands
            async with client("chamber", "chamber-pw") as tenant:
                again = TenantRuntime(tenant, [chamber], state_dir=state, poll_seconds=0.1)
                await again.start()
                assert again.counters.reposted == 0 and len(again.outbox.dead_letters()) == 1
                assert [d.key for d in await op.dead_letters()] == [letter["key"]]
                code, text = outbox_cli("--user", "chamber", "--state-dir", str(lab_dir))
                assert code == 0 and "1 dead letter(s)" in text and letter["key"] in text
                assert "refused (422)" in text and "film_certificate" in text

                # the operator fixes the capability and retries the dead letter: posted as a late result
                await op.register_capability(capability)
                code, text = outbox_cli("--user", "chamber", "--state-dir", str(lab_dir), "--retry", letter["key"])
                assert code == 0, text
                assert again._waiting_in_outbox()
                await again.flush_outbox()
                await again.report_dead_letters()
                assert again.counters.reposted == 1 and again.outbox.pending() == []
                resolved = await alice.request(first)
                assert resolved.status == "resolved"
                assert (await alice.result_for_request(first)).result.data == measured  # what the chamber measured
                assert await op.dead_letters() == []

                # another refused result, given up: moved aside, never posted, no longer listed
                await op.register_capability(stricter(capability))
                second = await alice.post_request(pld_request(pulses=30))
                await run_one(again)
                await again.report_dead_letters()
                [other] = await op.dead_letters()
                assert other.request_uuid == second
                code, text = outbox_cli("--user", "chamber", "--state-dir", str(lab_dir), "--discard", other.key)
                assert code == 0, text
                await again.flush_outbox()
                await again.report_dead_letters()
                assert await op.dead_letters() == []
                assert (await alice.request(second)).status == "failed"
                [kept] = list(again.outbox.discarded_folder.glob("*.json"))
                assert json.loads(kept.read_text())["result"]["request_uuid"] == second
                code, text = outbox_cli("--user", "chamber", "--state-dir", str(lab_dir), "--retry", "no-such-key")
                assert code == 2 and "no dead letter 'no-such-key'" in text
            events = (await op.events(kinds=["tenant.dead_letters"])).items
            assert [e.message for e in events] == [
                "chamber keeps 1 dead letter(s) (was 0)", "chamber keeps 0 dead letter(s) (was 1)",
                "chamber keeps 1 dead letter(s) (was 0)", "chamber keeps 0 dead letter(s) (was 1)"]

    asyncio.run(scenario())


def test_outbox_moves_dead_letters_without_losing_one(tmp_path):
    box = Outbox(tmp_path / "outbox")
    box.put("k1", {"request_uuid": "r1", "data": {"x": 1}})
    with pytest.raises(KeyError):
        box.dead("unknown", "refused", 422)
    box.dead("k1", "data: 'x' is not allowed", 422)
    assert box.pending() == [] and [e["key"] for e in box.dead_letters()] == ["k1"]
    reopened = Outbox(tmp_path / "outbox")  # a restart reads the same folders
    assert reopened.dead_letters()[0]["refusal"] == "data: 'x' is not allowed"
    reopened.retry("k1")
    assert reopened.pending() == [("k1", {"request_uuid": "r1", "data": {"x": 1}})] and reopened.dead_letters() == []
    with pytest.raises(KeyError, match="no dead letter 'k1'"):
        reopened.discard("k1")
