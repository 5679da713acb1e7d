"""A requester talking to the server over plain HTTP, as any client would: log in, post growths."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx

from .lab import ACCOUNTS


def login(http: httpx.Client, user: str) -> dict[str, str]:
    """Log ``user`` in; the header that carries its token."""
    r = http.post("/user_management/authenticate", data={"username": user, "password": ACCOUNTS[user]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def growth(n: int, tenant_uuid: str, **extra: Any) -> dict[str, Any]:
    """A short growth requested by the requesters' tenant; ``n`` makes it distinct."""
    recipe = {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0, "oxygen_pressure": 1.0,
              "repetition_rate": 2.0, "pulses": 20, "substrate_temperature": 900.0 + n}
    return {"quantity": "thin_film", "methods": ["pld_growth"], "tenant_uuid": tenant_uuid,
            "parameters": {"pld_growth": recipe}} | extra


class Requester(threading.Thread):
    """A requester hammering the server from a thread: posts small growths and reads the queue, keeping the
    UUID of every request the server acknowledged; errors (the server down, 503) are counted, not raised."""

    def __init__(self, url: str, tenant_uuid: str, every: float = 0.25):
        super().__init__(name="requester", daemon=True)
        self.url, self.tenant_uuid, self.every = url, tenant_uuid, every
        self.acknowledged: list[str] = []
        self.errors: Counter = Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            auth = None
            while not self._halt.is_set():
                try:
                    auth = auth or login(http, "alice")
                    r = http.post("/api/v1/requests", json=growth(len(self.acknowledged), self.tenant_uuid),
                                  headers=auth)
                    if r.status_code == 201:
                        self.acknowledged.append(r.json()["uuid"])
                    else:
                        self.errors[r.status_code] += 1
                    http.get("/pending_requests/", headers=auth)
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                self._halt.wait(self.every)

    def halt(self) -> None:
        self._halt.set()
        self.join(30)
