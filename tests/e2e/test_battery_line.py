"""The battery line end to end: a degradationEOL request resolved by the workflow, robot and
cycler tenants (real processes against a real server), sub-requests linked to their parent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import pytest

from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build, workflow
from labweave.services.tenant.provision import provision_tenant

from ..conftest import shared_path
from ..server.helpers import REQUESTER_TENANT, open_lab


def spawn(args, env, log):
    return subprocess.Popen([sys.executable, "-m", "labweave.services.cli.main", *args],
                            env={**os.environ, **env}, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def eol_request() -> dict:
    ec, emc, salt = ("C1COC(=O)O1", "KMTRUDSVKNLOMY-UHFFFAOYSA-N"), ("CCOC(=O)OC", "JBTWLSYIZRCDFO-UHFFFAOYSA-N"), \
        ("[Li+].F[P-](F)(F)(F)(F)F", "AXPLOJNSKRXQPA-UHFFFAOYSA-N")
    electrolyte = [{"chemical": {"SMILES": s, "InChIKey": k}, "fraction": f, "fraction_type": "molPerMol"}
                   for (s, k), f in ((ec, 0.27), (emc, 0.65), (salt, 0.08))]
    graphite = [{"chemical": {"SMILES": "[C]", "InChIKey": "OKTJSMMVPCPJKN-UHFFFAOYSA-N"}, "fraction": 1.0,
                 "fraction_type": "molPerMol"}]
    nmc = [{"chemical": {"SMILES": "[Li+].[O-][Ni]=O", "InChIKey": "VROAXDSNYPAOBJ-UHFFFAOYSA-N"}, "fraction": 1.0,
            "fraction_type": "molPerMol"}]
    params = {"battery_chemistry": {"electrolyte": electrolyte,
                                    "anode": {"material": graphite, "mass_loading": 1.05, "size": 15.0},
                                    "cathode": {"material": nmc, "mass_loading": 1.05, "size": 14.0}},
              "average_charging_rate": 1.0, "cell_info": {}}
    return {"quantity": "degradationEOL", "methods": ["degradation_workflow"],
            "parameters": {"degradation_workflow": params}, "tenant_uuid": REQUESTER_TENANT}


def wait_until_resolved(client, uuid, tmp_path, timeout=400.0) -> None:
    """Until the request is resolved; fails at once if it fails or is retracted."""
    deadline = time.monotonic() + timeout
    while (status := client.request(uuid).status) != "resolved":
        assert status in ("pending", "reserved"), client.history(uuid)
        assert time.monotonic() < deadline, (tmp_path / "workflow.log").read_text()[-3000:]
        time.sleep(1)


@pytest.mark.slow
def test_degradation_eol_through_the_lab(sqlite_url, tmp_path):
    open_lab(sqlite_url, tenants=False).lab.close()
    with ServerProcess(sqlite_url, env={"LABWEAVE_PASSWORD_ROUNDS": "4"}, log_path=tmp_path / "server.log") as server:
        async def setup():
            async with AsyncLabClient(server.url, "op", "op") as op:
                lab = tmp_path / "lab"
                await provision_tenant(op, "robot", [build("robot", state=lab)], "robot", "robot-pw")
                await provision_tenant(op, "cycler", [build("cycler", state=lab)], "cycler", "cycler-pw")
                await provision_tenant(op, "workflow", [workflow(None)], "workflow", "workflow-pw")
        asyncio.run(setup())
        env = {"LABWEAVE_SERVER_URL": server.url}
        procs = [spawn(["tenant", "run", name, "--state-dir", str(tmp_path / "lab"), "--poll", "0.3",
                        "--cells", "2", "--cycles", "40"],
                       env | {"LABWEAVE_USER": name, "LABWEAVE_PASSWORD": f"{name}-pw"}, tmp_path / f"{name}.log")
                 for name in ("robot", "cycler", "workflow")]
        try:
            with LabClient(server.url, "alice", "alice") as alice, LabClient(server.url, "op", "op") as op:
                uuid = alice.post_request(eol_request())
                wait_until_resolved(alice, uuid, tmp_path)
                result = alice.result_for_request(uuid).result
                children = op.list_requests(parent=uuid)  # posted by the workflow's user: alice sees her own
                # An emergency stop and a resume of the workflow: it runs the next request as before
                # (a stop, or a lost lease, used to leave it failing every request it claimed).
                workflow_tenant = next(t.tenant_uuid for t in op.tenants() if t.name == "workflow")
                op.stop_tenant(workflow_tenant)
                deadline = time.monotonic() + 60
                while "EMERGENCY STOP (an operator's emergency stop)" not in (tmp_path / "workflow.log").read_text():
                    assert time.monotonic() < deadline, "the workflow did not see its emergency stop"
                    time.sleep(0.2)
                op.resume_tenant(workflow_tenant)
                again = alice.post_request(eol_request())
                wait_until_resolved(alice, again, tmp_path)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(60)
    capability = json.loads(shared_path("finales2", "serialized_quantities", "degradationEOL",
                                        "degradation_workflow.json").read_text())
    jsonschema.validate(result.data, capability["json_schema_result_output"])
    quantities = sorted(c.request.quantity for c in children)
    assert quantities == ["capacity", "capacity", "cell_assembly", "electrolyte"]
    assert all(c.status == "resolved" and c.parent_uuid == uuid for c in children)
    entries = result.data["degradationEOL"]
    assert len(entries) == 2 and all(e["end_of_life"] > 0 for e in entries if e["meta"]["success"])
