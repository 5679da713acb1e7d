"""The contract on the wire: ``/openapi.json`` describes every 2xx body, and the app's answers match it.

A realistic session drives every route (FINALES2's, ``/api/v1/``'s, health,
the dashboard): every 2xx answer is checked against the schema its operation
publishes, and every operation that publishes a 2xx body must have been seen
answering one, so a new route cannot slip past untested.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator, FormatChecker

from ..conftest import load, shared_files
from .helpers import REQUESTER_TENANT, Lab, flow_lab, flow_request, flow_result

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def free_form(schema: dict) -> bool:
    """Whether a body schema says nothing about its body: ``{}``, or an object of anything."""
    if not schema:
        return True
    if "$ref" in schema:
        return False
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(free_form(s) for s in schema[key] if s.get("type") != "null")
    if schema.get("type") == "array":
        return free_form(schema.get("items", {}))
    if schema.get("type") == "object":
        extra = schema.get("additionalProperties", True)
        return not schema.get("properties") and (extra is True or extra == {})
    return False


def undescribed(spec: dict) -> list[str]:
    """Every 2xx answer of ``spec`` that has no schema, or one that says nothing (204 has no body)."""
    problems = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            answers = {code: r for code, r in op["responses"].items() if code.startswith("2") and code != "204"}
            if not answers and not any(code.startswith("3") for code in op["responses"]):
                problems.append(f"{method.upper()} {path}: no 2xx (or 3xx) answer described")
            for code, response in answers.items():
                content = response.get("content") or {}
                if not content:
                    problems.append(f"{method.upper()} {path} {code}: no content described")
                for media_type, body in content.items():
                    if "schema" not in body or (media_type == "application/json" and free_form(body["schema"])):
                        problems.append(f"{method.upper()} {path} {code} {media_type}: no schema of its body")
    return problems


@dataclass
class Contract:
    """Finds the operation of an answer in ``/openapi.json`` and checks the answer against it."""

    spec: dict
    seen: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self):
        self._routes = []
        for template, operations in self.spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for method in operations:
                self._routes.append((method.upper(), pattern, template))

    def operation(self, method: str, path: str) -> tuple[str, dict]:
        matches = [t for m, pattern, t in self._routes if m == method and pattern.match(path)]
        if not matches:
            raise AssertionError(f"{method} {path}: no operation in /openapi.json")
        template = min(matches, key=lambda t: t.count("{"))  # a literal path wins over a template
        return template, self.spec["paths"][template][method.lower()]

    def validator(self, schema: dict) -> Draft202012Validator:
        return Draft202012Validator(dict(schema, components=self.spec["components"]), format_checker=FORMATS)

    def problems(self, method: str, path: str, status: int, media_type: str, body: bytes) -> list[str]:
        """What is wrong with a 2xx answer, as its operation describes it (nothing: an empty list)."""
        template, op = self.operation(method, path)
        self.seen.add((method, template))
        where = f"{method} {template} {status}"
        described = op["responses"].get(str(status))
        if described is None:
            return [f"{where}: status not described"]
        content = described.get("content") or {}
        if status == 204:
            return [f"{where}: a body with 204"] if body else []
        if media_type not in content:
            return [f"{where}: {media_type} is not among {sorted(content)}"]
        if media_type != "application/json":
            return []
        errors = self.validator(content[media_type]["schema"]).iter_errors(json.loads(body))
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in errors]

    def stream_problems(self, method: str, path: str, data: str) -> list[str]:
        """What is wrong with the ``data:`` of one server-sent event of a stream operation."""
        template, op = self.operation(method, path)
        self.seen.add((method, template))
        item = op["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
        errors = self.validator(item["properties"]["data"]["contentSchema"]).iter_errors(json.loads(data))
        return [f"{method} {template} event: {e.message}" for e in errors]

    def unseen(self) -> list[str]:
        """Operations describing a 2xx body that no answer exercised."""
        out = []
        for template, operations in self.spec["paths"].items():
            for method, op in operations.items():
                if any(c.startswith("2") for c in op["responses"]) and (method.upper(), template) not in self.seen:
                    out.append(f"{method.upper()} {template}")
        return out


class Recorder:
    """Every answer the test client receives (an httpx response hook)."""

    def __init__(self):
        self.responses: list[httpx.Response] = []

    def __call__(self, response: httpx.Response) -> None:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            self.responses.append(response)


def first_event(lab: Lab, path: str, **kw) -> str:
    """The ``data`` of the first event a stream sends."""
    with lab.client.stream("GET", path, **kw) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return line[5:].strip()
    raise AssertionError(f"{path}: the stream ended without an event")


def drive(lab: Lab, contract: Contract) -> list[str]:
    """A day in the lab through every route; returns the problems of the two event streams."""
    asab = lab.tenants["ASAB_tenant"]

    def put(user: str, path: str, **kw) -> httpx.Response:
        return lab.client.put(path, headers=lab.headers(user), **kw)

    def ok(response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
        return response.json() if response.content else None

    # operators register what the lab measures, who measures it, and who may log in
    ok(lab.client.post("/user_management/authenticate", data={"username": "op", "password": "op"}))
    cap = {"quantity": "hardness", "method": "indenter", "json_schema_specifications": {
        "type": "object", "required": ["load"], "properties": {"load": {"type": "number"}}},
        "json_schema_result_output": {"type": "object", "required": ["hv"], "properties": {"hv": {"type": "number"}}}}
    ok(lab.post("op", "/api/v1/capabilities", json=cap), 201)
    ok(lab.get("op", "/api/v1/capabilities"))
    limits = [{"quantity": "hardness", "method": "indenter", "limitations": {"load": [{"min": 0, "max": 10}]}}]
    indenter = ok(lab.post("op", "/api/v1/tenants", json={"name": "indenter", "limitations": limits}), 201)
    ok(lab.post("op", "/api/v1/users", json={"username": "ind", "password": "ind-pw", "role": "tenant",
                                             "tenant_uuid": indenter["tenant_uuid"]}), 201)
    lab.login("ind", "ind-pw")
    ok(lab.get("ind", "/api/v1/me"))
    ok(put("ind", f"/api/v1/tenants/{indenter['tenant_uuid']}/limitations", json=limits))
    ok(lab.get("op", "/api/v1/tenants"))
    ok(lab.get("op", f"/api/v1/tenants/{asab}"))
    ok(lab.post("op", f"/api/v1/tenants/{indenter['tenant_uuid']}/deactivate"))
    ok(lab.post("op", f"/api/v1/tenants/{indenter['tenant_uuid']}/activate"))

    # a FINALES2 requester and tenant, by FINALES2's routes
    for path in ("/capabilities/", "/limitations/", "/tenants/", "/capabilities/templates/"):
        ok(lab.get("alice", path))
    ok(lab.get("alice", "/capabilities/", params={"currently_available": False}))
    first = ok(lab.post("alice", "/requests/", json=flow_request()))
    ok(lab.get("alice", f"/requests/{first}"))
    assert ok(lab.get("alice", "/requests/no-such-request")) is None
    ok(lab.get("asab", "/pending_requests/", params={"quantity": "electrolyte", "method": "flow"}))
    ok(lab.get("op", "/all_requests/"))
    ok(lab.post("asab", f"/requests/{first}/update_status/", params={"request_id": first, "new_status": "reserved"}))
    result = ok(lab.post("asab", "/results/", json=flow_result(first, asab)))
    ok(lab.get("alice", f"/results/{result}"))
    ok(lab.get("alice", f"/results_requested/{first}"))
    ok(lab.get("alice", "/results_requested/", params={"quantity": "electrolyte"}))
    ok(lab.post("asab", f"/results/{result}/update_status/", params={"result_id": result, "new_status": "amended",
                                                                     "status_change_message": "recalibrated"}))
    ok(lab.post("asab", "/results/post_unsolicited_result", json=flow_result("", asab)))

    # a campaign's requests through labweave's own routes: claims, leases, failures, approvals
    ok(put("alice", "/api/v1/campaigns/films", json={"spec": {"budget": 4}}))
    body = flow_request() | {"campaign": "films", "priority": 3, "provenance": {"strategy": "bayesian"}}
    claimed = ok(lab.post("alice", "/api/v1/requests", json=body), 201)["uuid"]
    ok(lab.post("asab", "/api/v1/claims", json={"quantity": "electrolyte", "lease_seconds": 60}))
    ok(lab.post("asab", f"/api/v1/requests/{claimed}/heartbeat", params={"lease_seconds": 90}))
    ok(lab.post("asab", f"/api/v1/requests/{claimed}/release", json={"reason": "channel busy"}))
    ok(lab.post("asab", "/api/v1/claims", json={}))
    ok(lab.post("asab", f"/api/v1/requests/{claimed}/fail", json={"reason": "pump jammed", "retryable": True}))
    ok(lab.post("asab", "/api/v1/claims", json={}))
    posted = ok(lab.post("asab", "/api/v1/results", json=flow_result(claimed, asab),
                         headers={"Idempotency-Key": "films-1"}), 201)
    again = ok(lab.post("asab", "/api/v1/results", json=flow_result(claimed, asab), headers={"Idempotency-Key": "films-1"}))
    assert again["uuid"] == posted["uuid"]
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 204
    proposal = ok(lab.post("alice", "/api/v1/requests", json=body | {"proposed": True}), 201)["uuid"]
    ok(lab.post("op", f"/api/v1/requests/{proposal}/approve"))
    ok(lab.post("alice", f"/api/v1/requests/{proposal}/cancel", json={"reason": "enough"}))
    rejected = ok(lab.post("alice", "/api/v1/requests", json=body | {"proposed": True}), 201)["uuid"]
    ok(lab.post("op", f"/api/v1/requests/{rejected}/reject", json={"reason": "outside the plan"}))
    ok(lab.get("alice", "/api/v1/requests", params={"campaign": "films", "limit": 2}))
    ok(lab.get("alice", f"/api/v1/requests/{claimed}"))
    ok(lab.get("alice", f"/api/v1/requests/{claimed}/history"))
    ok(lab.get("alice", "/api/v1/results", params={"campaign": "films"}))
    ok(lab.get("alice", f"/api/v1/results/{posted['uuid']}"))
    ok(put("alice", "/api/v1/campaigns/films/state", json={"state": {"best": {"value": 1.2}, "n_observations": 1}}))
    ok(lab.post("alice", "/api/v1/campaigns/films/pause"))
    ok(lab.post("alice", "/api/v1/campaigns/films/resume"))
    ok(lab.get("op", "/api/v1/campaigns"))
    ok(lab.get("op", "/api/v1/campaigns/films"))
    ok(lab.post("op", f"/api/v1/tenants/{asab}/stop"))
    ok(lab.post("op", f"/api/v1/tenants/{asab}/resume"))
    letter = {"key": "asab:kept", "request_uuid": claimed, "quantity": "electrolyte", "method": "flow",
              "refusal": "data: 'volume' is a required property", "status_code": 422,
              "kept_at": "2026-12-04T04:00:00+00:00"}
    ok(put("asab", f"/api/v1/tenants/{asab}/dead_letters", json={"letters": [letter]}))
    ok(lab.get("op", "/api/v1/dead_letters"))
    ok(lab.post("op", "/api/v1/lab/pause", json={"reason": "checking the contract"}))
    ok(lab.get("asab", "/api/v1/lab"))
    ok(lab.post("op", "/api/v1/lab/resume"))
    ok(lab.get("op", "/api/v1/events", params={"limit": 50}))
    problems = contract.stream_problems("GET", "/api/v1/events/stream", first_event(
        lab, "/api/v1/events/stream", params={"after": 0}, headers=lab.headers("op")))
    for path in ("/healthz", "/healthz/live", "/healthz/ready"):
        assert ok(lab.client.get(path))["status"] == "ok"
    assert lab.client.get("/metrics").status_code == 200

    # the operator's dashboard: pages, fragments, static files, a control, its event stream
    assert lab.client.get("/dashboard/login").status_code == 200
    assert lab.client.post("/dashboard/login", data={"username": "op", "password": "op"},
                           follow_redirects=False).status_code == 303
    for path in ("/dashboard", "/dashboard/tenants", "/dashboard/queue", "/dashboard/campaigns",
                 "/dashboard/campaigns/films", "/dashboard/fragments/summary", "/dashboard/fragments/tenants",
                 "/dashboard/fragments/queue", "/dashboard/fragments/campaigns", "/dashboard/fragments/campaigns/films",
                 "/dashboard/fragments/activity", "/dashboard/fragments/lab", "/dashboard/static/dashboard.js",
                 "/dashboard/static/dashboard.css",
                 "/dashboard/static/favicon.svg"):
        assert lab.client.get(path, follow_redirects=False).status_code == 200, path
    waiting = ok(lab.post("alice", "/api/v1/requests", json=body | {"proposed": True}), 201)["uuid"]
    json_answer = {"Accept": "application/json"}
    for action in ("campaigns/films/pause", "campaigns/films/resume", f"tenants/{asab}/stop",
                   f"tenants/{asab}/resume", f"requests/{waiting}/approve", f"requests/{waiting}/retract",
                   "lab/pause", "lab/resume"):
        assert ok(lab.client.post(f"/dashboard/actions/{action}", headers=json_answer))["ok"] is True, action
    second = ok(lab.post("alice", "/api/v1/requests", json=body | {"proposed": True}), 201)["uuid"]
    ok(lab.client.post(f"/dashboard/actions/requests/{second}/reject", headers=json_answer))
    problems += contract.stream_problems("GET", "/dashboard/events",
                                         first_event(lab, "/dashboard/events", params={"after": 0}))
    assert lab.client.post("/dashboard/logout", follow_redirects=False).status_code == 303
    return problems


@pytest.fixture
def lab(sqlite_url):
    lab = flow_lab(sqlite_url)
    yield lab
    lab.lab.close()


@pytest.fixture
def any_lab(database_url):
    """The lab on SQLite and, where it runs, PostgreSQL."""
    lab = flow_lab(database_url)
    yield lab
    lab.lab.close()


def test_every_operation_describes_its_2xx_body(lab):
    spec = lab.client.get("/openapi.json").json()
    assert spec["paths"], "no operations at all"
    assert undescribed(spec) == []


def test_every_answer_matches_its_operations_schema(any_lab):
    lab = any_lab
    contract = Contract(lab.client.get("/openapi.json").json())
    recorder = Recorder()
    lab.client.event_hooks["response"] = [recorder]
    problems = drive(lab, contract)
    checked = 0
    for r in recorder.responses:
        if 200 <= r.status_code < 300:
            media_type = r.headers.get("content-type", "").split(";")[0].strip()
            problems += contract.problems(r.request.method, r.request.url.path, r.status_code, media_type, r.content)
            checked += 1
    assert problems == []
    assert contract.unseen() == []
    assert checked > 80


def test_the_check_catches_an_answer_that_breaks_its_schema(lab):
    """The checks can fail: a body missing a field, a wrong type, a bad time, an undescribed status."""
    contract = Contract(lab.client.get("/openapi.json").json())
    uuid = lab.post("alice", "/api/v1/requests", json=flow_request()).json()["uuid"]
    good = lab.get("alice", f"/api/v1/requests/{uuid}").json()
    path = f"/api/v1/requests/{uuid}"

    def check(body: Any, status: int = 200, media_type: str = "application/json") -> list[str]:
        return contract.problems("GET", path, status, media_type, json.dumps(body).encode())

    assert check(good) == []
    assert any("'status' is a required property" in p for p in check({k: v for k, v in good.items() if k != "status"}))
    assert any("is not one of" in p for p in check(good | {"status": "lost"}))
    assert any("ctime" in p for p in check(good | {"ctime": "yesterday"}))
    assert any("request/methods" in p for p in check(good | {"request": good["request"] | {"methods": "flow"}}))
    assert check(good, status=201) == [f"GET /api/v1/requests/{{request_uuid}} 201: status not described"]
    assert "text/html is not among" in check(good, media_type="text/html")[0]
    # FINALES2's shapes: a RequestInfo of /requests/{id} must not grow into labweave's RequestDetail shape
    info = lab.get("alice", f"/requests/{uuid}").json()
    assert set(info) == {"uuid", "ctime", "status", "request"}
    assert contract.problems("GET", f"/requests/{uuid}", 200, "application/json", json.dumps(info).encode()) == []
    assert contract.problems("GET", "/tenants/", 200, "application/json", b'[{"name": "x"}]')


def test_an_undescribed_body_is_caught():
    """A route answering a bare dict (or nothing said) is reported by the description check."""
    app = FastAPI()

    @app.get("/loose")
    def loose() -> dict[str, Any]:
        return {}

    @app.get("/vague")
    def vague() -> list[dict]:
        return []

    @app.get("/typed")
    def typed() -> list[int]:
        return []

    assert undescribed(app.openapi()) == ["GET /loose 200 application/json: no schema of its body",
                                          "GET /vague 200 application/json: no schema of its body"]


def test_the_finales2_fixture_files_validate_as_the_published_shapes(lab):
    """FINALES2's own capability and tenant files are what /capabilities/ and /tenants/ describe."""
    contract = Contract(lab.client.get("/openapi.json").json())
    caps = [load(p) for p in shared_files("finales2", "serialized_quantities")]
    shaped = [{k: c[k] for k in ("quantity", "method", "json_schema_specifications", "json_schema_result_output")}
              for c in caps]
    assert contract.problems("GET", "/capabilities/", 200, "application/json", json.dumps(shaped).encode()) == []
    tenants = [load(p) | {"tenant_uuid": REQUESTER_TENANT, "is_active": True}
               for p in shared_files("finales2", "examples", "tenants")]
    assert contract.problems("GET", "/tenants/", 200, "application/json", json.dumps(tenants).encode()) == []
