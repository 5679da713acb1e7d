"""Bad input from one user is refused with a 4xx naming the field, stores nothing,
and can never make anyone's listing fail (issue: trust for an unattended night)."""

from __future__ import annotations

import copy
import json

import pytest

from .helpers import flow_lab, flow_request, flow_result

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def lab(database_url):
    return flow_lab(database_url)


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def listings_answer(lab) -> None:
    """Every listing that would hold a stored bad row still answers 200."""
    for user, path in [("op", "/all_requests/"), ("asab", "/pending_requests/"), ("alice", "/api/v1/requests"),
                       ("op", "/api/v1/requests"), ("op", "/api/v1/results"), ("op", "/dashboard/queue")]:
        r = lab.get(user, path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])


def stored_requests(lab) -> int:
    return len(lab.get("op", "/all_requests/").json())


def loc_of(response) -> list:
    return response.json()["detail"][0]["loc"]


def test_deeply_nested_parameters_are_refused_and_nothing_is_stored(lab):
    before = stored_requests(lab)
    body = flow_request()
    method = body["methods"][0]
    body["parameters"][method]["extra"] = nested(300)
    r = lab.post("alice", "/requests/", json=body)
    assert r.status_code == 422, r.text
    assert loc_of(r)[:4] == ["body", "parameters", method, "extra"]
    assert "deeper than" in r.json()["detail"][0]["msg"]
    assert stored_requests(lab) == before
    listings_answer(lab)


def test_deeply_nested_provenance_is_refused_on_the_api(lab):
    r = lab.post("alice", "/api/v1/requests", json=flow_request() | {"provenance": nested(300)})
    assert r.status_code == 422 and loc_of(r)[:2] == ["body", "provenance"], r.text
    listings_answer(lab)


def test_a_body_far_too_deep_for_the_parser_is_refused(lab):
    text = '{"a":' * 100_000 + "1" + "}" * 100_000
    r = lab.post("alice", "/requests/", content=text, headers=JSON)
    assert r.status_code == 422 and "deeper than" in r.text


def test_an_oversized_body_is_refused_with_413(lab):
    body = flow_request()
    body["parameters"][body["methods"][0]]["padding"] = "x" * (3 * 1024 * 1024)
    before = stored_requests(lab)
    r = lab.post("alice", "/requests/", json=body)
    assert r.status_code == 413, r.status_code
    assert "larger than" in r.json()["detail"]
    assert stored_requests(lab) == before


def test_an_oversized_body_without_a_length_is_refused_while_it_streams(lab):
    chunks = (b"x" * 65536 for _ in range(64))  # 4 MiB, sent chunked
    r = lab.post("alice", "/requests/", content=chunks, headers=JSON)
    assert r.status_code == 413


def test_a_wide_array_is_refused(lab):
    body = flow_request()
    body["parameters"][body["methods"][0]]["many"] = [0] * 100_001
    r = lab.post("alice", "/requests/", json=body)
    assert r.status_code == 422 and "entries" in r.json()["detail"][0]["msg"], r.text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_a_request_are_refused(lab, token):
    body = flow_request()
    method = body["methods"][0]
    body["parameters"][method]["temperature"] = "__x__"
    text = json.dumps(body).replace('"__x__"', token)
    before = stored_requests(lab)
    r = lab.post("alice", "/requests/", content=text, headers=JSON)
    assert r.status_code == 422, r.text
    assert loc_of(r) == ["body", "parameters", method, "temperature"]
    assert stored_requests(lab) == before


def test_a_nan_result_is_refused_and_the_request_stays_reserved(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 200
    body = flow_result(uuid, lab.tenants["ASAB_tenant"])
    key = next(iter(body["data"]))
    body["data"][key] = "__x__"
    text = json.dumps(body).replace('"__x__"', "NaN")
    r = lab.post("asab", "/api/v1/results", content=text, headers=JSON)
    assert r.status_code == 422 and loc_of(r) == ["body", "data", key], r.text
    r = lab.post("asab", "/results/", content=text, headers=JSON)
    assert r.status_code == 422
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["status"] == "reserved"
    assert lab.get("op", "/api/v1/results", params={"request_uuid": uuid}).json()["items"] == []


def test_limitations_with_nan_or_malformed_ranges_are_refused(lab):
    tenant = lab.tenants["ASAB_tenant"]
    current = lab.get("op", f"/api/v1/tenants/{tenant}").json()["limitations"]
    good = copy.deepcopy(current)
    bad_range = [{"quantity": "x", "method": "y", "limitations": {"temperature": {"min": "zzz", "max": 3}}}]
    r = lab.client.put(f"/api/v1/tenants/{tenant}/limitations", json=bad_range, headers=lab.headers("asab"))
    assert r.status_code == 422 and "min" in r.text and "finite number" in r.text, r.text
    upside_down = [{"quantity": "x", "method": "y", "limitations": {"t": {"min": 5, "max": 1, "step": 0}}}]
    r = lab.client.put(f"/api/v1/tenants/{tenant}/limitations", json=upside_down, headers=lab.headers("asab"))
    assert r.status_code == 422 and "above the maximum" in r.text and "positive step" in r.text, r.text
    text = json.dumps([{"quantity": "x", "method": "y", "limitations": {"t": {"min": 0, "max": "__x__"}}}])
    r = lab.client.put(f"/api/v1/tenants/{tenant}/limitations", content=text.replace('"__x__"', "NaN"),
                       headers=lab.headers("asab") | JSON)
    assert r.status_code == 422
    assert lab.get("op", f"/api/v1/tenants/{tenant}").json()["limitations"] == good
    lab.post("alice", "/requests/", json=flow_request())
    listings_answer(lab)
    assert lab.post("asab", "/api/v1/claims", json={}).status_code == 200


def test_an_absurd_lease_is_refused_and_the_lease_is_unchanged(lab):
    uuid = lab.post("alice", "/requests/", json=flow_request()).json()
    lease = lab.post("asab", "/api/v1/claims", json={"lease_seconds": 30}).json()["lease"]
    r = lab.post("asab", f"/api/v1/requests/{uuid}/heartbeat", params={"lease_seconds": 1e12})
    assert r.status_code == 422 and loc_of(r) == ["query", "lease_seconds"], r.text
    assert lab.get("op", f"/api/v1/requests/{uuid}").json()["lease_expires_at"][:19] == lease["expires_at"][:19]
    listings_answer(lab)


@pytest.mark.parametrize("path,param", [("/api/v1/requests", "cursor"), ("/api/v1/results", "cursor"),
                                        ("/api/v1/events", "after")])
def test_a_thirty_digit_cursor_is_refused(lab, path, param):
    r = lab.get("op", path, params={param: "1" * 30})
    assert r.status_code == 422 and loc_of(r) == ["query", param], r.text
    r = lab.get("op", path, params={param: -1})
    assert r.status_code == 422
