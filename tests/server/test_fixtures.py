"""FINALES2's own files: capabilities and tenants load unchanged; requests and results check out."""

from __future__ import annotations

import pytest

from labweave.services.server.errors import Invalid

from ..conftest import load, shared_files, shared_params
from .helpers import open_lab

REQUESTS = shared_params("finales2", "examples", "requests")
RESULTS = shared_params("finales2", "examples", "results")

# Each example request refused, and the limit that rightly forbids it (a tenant file's or an
# examples/limitations file's). Every other example request must be accepted.
REFUSED = {
    "capacity/cycling": "parameters.cycling.c_rate_charge_formation: 1 is above the maximum 0.1",
    "conductivity/molecular_dynamics": "parameters.molecular_dynamics.formulation[1].chemical.SMILES",
    "conductivity/polynomial_interpolation": "fraction_type: 'molar fraction' is not 'molPerMol'",
    "conductivity/two_electrode": "parameters.two_electrode.temperature: 298.15 is below the minimum 301.15",
    "degradationEOL/degradation_model": "maximum_charging_rate: 0.15 is below the minimum 1.0",
    "degradationEOL/degradation_workflow": "cathode.material[0].chemical.SMILES: '[Li+].[O-][Co]=O' is not one of",
}

# FINALES2's own example results that break their capability's output schema, and where.
# A server that validates results must refuse these; the rest validate.
INVALID_RESULTS = {
    "capacity/cycling": "data: 'channel_list' is a required property",
    "cell_assembly/autobass_assembly": "data.batch_output[7]: 'cell' is a required property",
    "degradationEOL/degradation_model": "data.degradationEOL: 'cell_info' is a required property",
    "degradationEOL/degradation_workflow": "data.degradationEOL[1].meta.success: 'True' is not of type 'boolean'",
    "transport/service": "data.actual_new_location: 'address' is a required property",
}


def key(path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.fixture
def lab(sqlite_url):
    """SQLite only: loading the files and checking limits does not depend on the database
    (the PostgreSQL behaviour of every route is covered by the route and behaviour tests)."""
    lab = open_lab(sqlite_url)
    for path in shared_files("finales2", "examples", "requests"):  # the requesting tenants the examples name
        uuid = load(path)["tenant_uuid"]
        if uuid not in lab.tenants.values():
            lab.add_tenant({"name": f"requester {uuid[:8]}", "limitations": []}, uuid)
    for path in shared_files("finales2", "examples", "limitations"):
        entries = load(path)
        lab.add_tenant({"name": f"limits of {key(path)}", "limitations": entries if isinstance(entries, list) else [entries]})
    return lab


def test_every_capability_and_tenant_file_loads(lab):
    caps = lab.get("op", "/capabilities/", params={"currently_available": False}).json()
    files = shared_files("finales2", "serialized_quantities")
    assert {(c["quantity"], c["method"]) for c in caps} == {(load(p)["quantity"], load(p)["method"]) for p in files}
    for path in files:
        stored = next(c for c in caps if c["method"] == load(path)["method"] and c["quantity"] == load(path)["quantity"])
        assert stored["json_schema_specifications"] == load(path)["json_schema_specifications"]
        assert stored["json_schema_result_output"] == load(path)["json_schema_result_output"]
    names = {t["name"] for t in lab.get("op", "/tenants/").json()}
    for path in shared_files("finales2", "examples", "tenants"):
        assert load(path)["name"] in names


@pytest.mark.parametrize("path", REQUESTS, ids=key)
def test_example_request_accepted_unless_a_limitation_forbids_it(lab, path):
    r = lab.post("op", "/requests/", json=load(path))
    if key(path) in REFUSED:
        assert r.status_code == 422, r.text
        assert REFUSED[key(path)] in r.json()["detail"]
    else:
        assert r.status_code == 200, r.text
        uuid = r.json()
        assert lab.get("op", f"/requests/{uuid}").json()["request"] == load(path) | {"tenant_uuid": load(path)["tenant_uuid"]}


def test_refused_requests_are_accepted_once_the_limiting_tenant_is_gone(lab):
    """The refusal comes from the tenants' limits, not the schema: without them the requests wait."""
    for name, uuid in list(lab.tenants.items()):
        if not name.startswith("requester") and name != "requesters":
            lab.post("op", f"/api/v1/tenants/{uuid}/deactivate")
    for path in shared_files("finales2", "examples", "requests"):
        assert lab.post("op", "/requests/", json=load(path)).status_code == 200, key(path)


@pytest.mark.parametrize("path", RESULTS, ids=key)
def test_example_result_checked_against_its_output_schema(lab, path):
    body = load(path)
    if key(path) in INVALID_RESULTS:
        with pytest.raises(Invalid) as err:
            lab.lab.registry.check_result(body["quantity"], body["method"][0], body["data"])
        assert INVALID_RESULTS[key(path)] in str(err.value)
    else:
        lab.lab.registry.check_result(body["quantity"], body["method"][0], body["data"])
