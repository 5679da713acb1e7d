"""Data out: a campaign as a DataFrame (both clients), as CSV/Parquet/JSON files (`labweave export`), and
as an RO-Crate 1.1 whose shape is checked here rule by rule and read back by the rocrate library."""

from __future__ import annotations

import asyncio
import json
import math
import zipfile

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from labweave.services.cli.main import app
from labweave.services.client import AsyncLabClient, LabClient
from labweave.services.client.errors import NotFound
from labweave.services.export.crate import pack_crate
from labweave.services.export.files import FORMATS, read_frame, write_frame
from labweave.services.server.process import ServerProcess

from ..server.helpers import flow_request, flow_result, open_lab, two_flow_tenants

SPEC = {
    "name": "flowvol", "description": "Volumes of a flow electrolyte.",
    "request": {"quantity": "electrolyte", "methods": ["flow"], "parameters": {}},
    "space": {"parameters": [{"name": "volume", "lower": 1, "upper": 5},
                             {"kind": "categorical", "name": "solvent", "choices": ["DMC", 2]}]},
    "objectives": [{"name": "volume", "path": "electrolyte.volume"}],
    "outcome_constraints": [{"name": "rating", "path": "electrolyte.meta.rating", "relation": ">=", "bound": 3}],
    "strategy": {"name": "bayesian"}, "budget": 3,
}


def provenance(i: int, solvent: str | int) -> dict:
    return {"parameters": {"volume": 2.0 + i, "solvent": solvent}, "strategy": "bayesian",
            "model_version": f"v{i}", "reason": "qLogNEI maximum", "acquisition_value": 0.1 * (i + 1),
            "predicted_mean": {"volume": 2.5 + i}, "predicted_std": {"volume": 0.3}, "campaign": "flowvol"}


@pytest.fixture
def lab(sqlite_url):
    """A lab whose campaign ``flowvol`` holds a resolved, a failed and a pending request."""
    lab = open_lab(sqlite_url)
    two_flow_tenants(lab)

    def client(user):
        return AsyncLabClient("http://lab", user, user, transport=httpx.ASGITransport(app=lab.client.app))

    async def build():
        async with client("alice") as alice, client("asab") as asab:
            await alice.put_campaign("flowvol", SPEC)
            made = [await alice.create_request(flow_request(), campaign="flowvol", provenance=provenance(i, s))
                    for i, s in enumerate(["DMC", 2, "DMC"])]
            first = await asab.claim()
            await asab.submit_result(flow_result(first.request.uuid, first.request.owner_tenant_uuid or ""))
            second = await asab.claim()
            await asab.fail(second.request.uuid, "pump jammed", retryable=False)
            return [m.uuid for m in made]

    lab.made = asyncio.run(build())
    return lab


def check_frame(frame: pd.DataFrame, made: list[str]) -> None:
    assert list(frame["request_uuid"]) == made
    assert list(frame["status"]) == ["resolved", "failed", "pending"]
    for column in ["campaign", "quantity", "methods", "created", "created_by", "owner_tenant", "param.volume",
                   "param.solvent", "strategy", "model_version", "acquisition_value", "predicted_mean.volume",
                   "predicted_std.volume", "result_uuid", "result_tenant", "result_time", "objective.volume",
                   "constraint.rating", "result_data", "failure_reason"]:
        assert column in frame.columns, column
    first, failed, pending = (frame.iloc[i] for i in range(3))
    assert first["objective.volume"] == 2.6 and first["constraint.rating"] == 5
    assert first["result_tenant"] == "ASAB_tenant" and first["predicted_mean.volume"] == 2.5
    assert json.loads(first["result_data"])["electrolyte"]["volume"] == 2.6
    assert failed["failure_reason"] == "pump jammed" and math.isnan(failed["objective.volume"])
    assert pd.isna(pending["result_uuid"]) and pending["param.volume"] == 4.0
    assert str(frame["created"].dt.tz) == "UTC" and frame["created"].is_monotonic_increasing


def test_both_clients_give_the_campaign_frame(lab, sqlite_url, tmp_path):
    async def fetch():
        transport = httpx.ASGITransport(app=lab.client.app)
        async with AsyncLabClient("http://lab", "alice", "alice", transport=transport) as alice:
            with pytest.raises(NotFound):
                await alice.campaign_frame("nosuch")
            return await alice.campaign_frame("flowvol")

    frame = asyncio.run(fetch())
    check_frame(frame, lab.made)
    lab.lab.close()
    with ServerProcess(sqlite_url, log_path=tmp_path / "server.log") as server:
        with LabClient(server.url, "alice", "alice") as alice:
            again = alice.campaign_frame("flowvol")
        pd.testing.assert_frame_equal(frame, again)

        # `labweave export` against the same server, each format, read back to the same rows
        env = {"LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": "alice", "LABWEAVE_PASSWORD": "alice"}
        runner = CliRunner()
        for fmt in FORMATS:
            out = tmp_path / f"flowvol.{fmt}"
            answer = runner.invoke(app, ["export", "flowvol", "--format", fmt, "--out", str(out)], env=env)
            assert answer.exit_code == 0, answer.output
            assert f"3 requests, {len(frame.columns)} columns" in answer.output
            back = read_frame(out, fmt)
            assert list(back.columns) == list(frame.columns)
            assert list(back["request_uuid"]) == lab.made
            assert (back["created"] == frame["created"]).all()
            assert back["objective.volume"].iloc[0] == 2.6
        answer = runner.invoke(app, ["export", "nosuch"], env=env)
        assert answer.exit_code == 2 and "no campaign named 'nosuch'" in answer.output
        answer = runner.invoke(app, ["export", "flowvol", "--format", "xlsx"], env=env)
        assert answer.exit_code == 2
        crate_zip = tmp_path / "flowvol-crate.zip"
        answer = runner.invoke(app, ["export", "flowvol", "--out", str(tmp_path / "t.csv"), "--crate",
                                     str(crate_zip)], env=env)
        assert answer.exit_code == 0, answer.output
        with zipfile.ZipFile(crate_zip) as z:
            assert "ro-crate-metadata.json" in z.namelist() and "requests.parquet" in z.namelist()


def test_a_frame_with_mixed_choices_writes_to_parquet(tmp_path):
    frame = pd.DataFrame({"param.solvent": ["DMC", 2, None], "x": [1.0, 2.0, 3.0]})
    back = read_frame(write_frame(frame, tmp_path / "f.parquet", "parquet"), "parquet")
    assert list(back["param.solvent"])[:2] == ["DMC", "2"] and pd.isna(back["param.solvent"][2])
    with pytest.raises(ValueError, match="xlsx"):
        write_frame(frame, tmp_path / "f.xlsx", "xlsx")  # type: ignore[arg-type]


# --- RO-Crate 1.1 --------------------------------------------------------------------------------------

CONTEXT = "https://w3id.org/ro/crate/1.1/context"


def check_ro_crate_1_1(folder) -> dict[str, dict]:
    """The rules of RO-Crate 1.1 ("RO-Crate Metadata Document" and "Root Data Entity" sections) a crate
    must meet; returns the graph by @id."""
    doc = json.loads((folder / "ro-crate-metadata.json").read_text())
    assert doc["@context"] == CONTEXT
    assert set(doc) == {"@context", "@graph"}, "flattened JSON-LD: a context and one graph"
    graph = doc["@graph"]
    ids = [e["@id"] for e in graph]
    assert len(ids) == len(set(ids)), "no two entities share an @id"
    by_id = {e["@id"]: e for e in graph}
    for entity in graph:
        assert "@type" in entity, entity["@id"]
        for key, value in entity.items():  # flat: references are {"@id": ...} only, never nested entities
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    assert set(item) == {"@id"}, (entity["@id"], key)
                    target = item["@id"]
                    assert target in by_id or target.startswith(("http://", "https://")), (entity["@id"], target)
    descriptor = by_id["ro-crate-metadata.json"]
    assert descriptor["@type"] == "CreativeWork"
    assert descriptor["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.1"}
    root_id = descriptor["about"]["@id"]
    assert root_id == "./"
    root = by_id[root_id]
    types = root["@type"] if isinstance(root["@type"], list) else [root["@type"]]
    assert "Dataset" in types
    for key in ("name", "description", "datePublished"):
        assert root.get(key), key
    pd.Timestamp(root["datePublished"])  # ISO 8601
    parts = [p["@id"] for p in root["hasPart"]]
    for part in parts:  # every data entity is listed by the root and is in the crate's folder
        entity = by_id[part]
        assert "File" in ([entity["@type"]] if isinstance(entity["@type"], str) else entity["@type"])
        assert (folder / part).is_file(), part
    for entity in graph:
        if entity.get("@type") == "File":
            assert entity["@id"] in parts, f"{entity['@id']} is not reachable from the root"
    return by_id


def test_the_campaign_crate_has_the_ro_crate_1_1_shape(lab, tmp_path):
    async def fetch():
        transport = httpx.ASGITransport(app=lab.client.app)
        async with AsyncLabClient("http://lab", "alice", "alice", transport=transport) as alice:
            return await alice.campaign_data("flowvol")

    data = asyncio.run(fetch())
    folder = pack_crate(data, tmp_path / "crate", license_id="https://creativecommons.org/licenses/by/4.0/")
    by_id = check_ro_crate_1_1(folder)
    root = by_id["./"]
    assert root["license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"}
    assert by_id[root["creator"]["@id"]] == {"@id": "#person-alice", "@type": "Person", "name": "alice"}
    resolved, failed, pending = lab.made
    # who ran what, when, with which instrument: the measurement of the resolved request
    run = by_id[f"#run-{resolved}"]
    assert run["@type"] == "CreateAction" and run["actionStatus"] == "CompletedActionStatus"
    tenant = by_id[run["instrument"]["@id"]]
    assert tenant["@type"] == "IndividualProduct" and tenant["name"] == "ASAB_tenant"
    assert by_id[run["agent"]["@id"]]["@type"] == "Person"
    result_file = run["result"]["@id"]
    assert json.loads((folder / result_file).read_text())["result"]["request_uuid"] == resolved
    assert run["object"] == {"@id": f"#request-{resolved}"} and run["startTime"] < run["endTime"]
    # ... with which strategy: the proposal
    proposal = by_id[f"#propose-{resolved}"]
    assert by_id[proposal["instrument"]["@id"]]["@type"] == "SoftwareApplication"
    assert proposal["result"] == {"@id": f"#request-{resolved}"} and "model version v0" in proposal["description"]
    assert by_id[f"#run-{failed}"]["actionStatus"] == "FailedActionStatus"
    assert by_id[f"#run-{failed}"]["error"] == "pump jammed"
    assert f"#run-{pending}" not in by_id and f"#propose-{pending}" in by_id
    mentioned = {m["@id"] for m in root["mentions"]}
    assert {f"#run-{resolved}", f"#propose-{pending}"} <= mentioned
    assert read_frame(folder / "requests.parquet", "parquet")["request_uuid"].tolist() == lab.made

    # the RO-Crate community's library reads it back: same root, same files, the actions
    from rocrate.rocrate import ROCrate

    crate = ROCrate(folder)
    assert crate.name == "labweave campaign flowvol"
    assert {e.id for e in crate.data_entities} == {p["@id"] for p in root["hasPart"]}
    assert len(crate.get_by_type("CreateAction")) == 5


def test_a_sisso_campaign_frame_has_each_request_s_leading_formula():
    from labweave.schemas.api import CampaignRecord, RequestDetail

    from labweave.services.export.frame import campaign_frame

    now = pd.Timestamp("2026-01-01T00:00:00Z")
    lead = {"formula": "bulk_modulus = 172.8 - 71.56 * (r_B^3)", "descriptor": "(r_B^3)", "members": 3, "of": 16,
            "rmse": 23.2}

    def request(i: int, formulas: list) -> RequestDetail:
        return RequestDetail.model_validate({
            "uuid": f"r{i}", "ctime": now + pd.Timedelta(seconds=i), "updated": now + pd.Timedelta(seconds=i),
            "status": "pending", "priority": 0, "campaign": "perovskite", "created_by": "optimizer",
            "request": {"quantity": "bulk_properties", "methods": ["chgnet"], "tenant_uuid": "t",
                        "parameters": {"chgnet": {"perovskite": {"a_site": "Sr", "b_site": "Ti"}}}},
            "provenance": {"parameters": {"A": "Sr", "B": "Ti"}, "strategy": "sisso", "formulas": formulas},
        })

    record = CampaignRecord(name="perovskite", status="running", spec={}, state={}, created_by="optimizer",
                            created=now, updated=now)
    frame = campaign_frame(record, [request(1, []), request(2, [lead])], [])
    assert list(frame["leading_formula"].fillna("")) == ["", lead["formula"]]
    assert list(frame["leading_formula_members"].fillna("")) == ["", "3/16"]
    assert "leading_formula" not in campaign_frame(record, [request(1, [])], []).columns
