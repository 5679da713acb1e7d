"""What the dashboard tests share: the seeded campaign, a client of the served lab, logging in."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from labweave.services.server.process import ServerProcess
from tests.server.helpers import flow_request, flow_result

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
#: The browser: $LABWEAVE_CHROMIUM, else the distribution's chromium on the PATH.
CHROMIUM = os.environ.get("LABWEAVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
CAMPAIGN = "electrolyte-volume"

CAMPAIGN_SPEC = {
    "name": CAMPAIGN,
    "description": "Largest electrolyte volume the flow rig delivers",
    "request": {"quantity": "electrolyte", "methods": ["flow"], "parameters": {}},
    "objectives": [{"name": "volume", "path": "electrolyte.volume", "direction": "maximize"}],
    "strategy": {"name": "bayesian"},
    "budget": 12,
    "requires_approval": True,
}

#: What the optimizer daemon publishes that only the model knows (the page computes the rest from the results).
CAMPAIGN_STATE = {
    "summary": "GP fitted on 4 results; qLogNEI proposes 2 formulations",
    "model_version": "gp-7",
    "next": [{"parameters": {"volume": 3.4, "ec_fraction": 0.25}, "acquisition_value": 0.82,
              "predicted_mean": {"volume": 3.3}, "predicted_std": {"volume": 0.5}, "model_version": "gp-7",
              "strategy": "bayesian", "reason": "highest expected improvement", "fidelity": None},
             {"parameters": {"volume": 2.9, "ec_fraction": 0.45}, "acquisition_value": 0.41, "predicted_mean": 2.8,
              "predicted_std": 0.6, "reason": "explores the high-EC corner"}],
    "formulas": [{"formula": "0.8*volume - 0.3*ec_fraction**2", "rmse": 0.12}],
}


def provenance(mean: float, acquisition: float, reason: str) -> dict:
    """A proposal's provenance as the optimizer daemon writes it (predictions per objective)."""
    return {"strategy": "bayesian", "model_version": "gp-7", "acquisition_value": acquisition,
            "predicted_mean": {"volume": mean}, "predicted_std": {"volume": 0.4}, "reason": reason,
            "fidelity": None}


@dataclass
class SeededLab:
    """A lab database prepared by the test helpers, served by a ``labweave serve`` child process."""

    url: str
    server: ServerProcess
    tenants: dict[str, str]  # name -> uuid
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.url

    def login(self, user: str) -> str:
        r = httpx.post(f"{self.base}/user_management/authenticate", data={"username": user, "password": user})
        r.raise_for_status()
        self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def call(self, user: str, method: str, path: str, **kw) -> httpx.Response:
        if user not in self.tokens:
            self.login(user)
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} | kw.pop("headers", {})
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=10, **kw)

    def request(self, user: str = "alice", volume: float = 2.6, **extra) -> dict:
        body = flow_request()
        body["parameters"]["flow"]["volume"] = volume
        r = self.call(user, "POST", "/api/v1/requests", json=body | extra)
        assert r.status_code == 201, r.text
        return r.json()

    def claim(self, tenant_user: str = "asab") -> dict:
        r = self.call(tenant_user, "POST", "/api/v1/claims", json={})
        assert r.status_code == 200, r.text
        return r.json()["request"]

    def resolve(self, request_uuid: str, volume: float, tenant_user: str = "asab") -> None:
        body = flow_result(request_uuid, self.tenants["ASAB_tenant" if tenant_user == "asab" else "ASAB twin"])
        body["data"]["electrolyte"]["volume"] = volume
        r = self.call(tenant_user, "POST", "/api/v1/results", json=body)
        assert r.status_code in (200, 201), r.text

    def status(self, request_uuid: str) -> str:
        return self.call("op", "GET", f"/api/v1/requests/{request_uuid}").json()["status"]


def log_in(page, user: str, password: str | None = None) -> None:
    page.goto("/dashboard/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password or user)
    page.click("button[type=submit]")
