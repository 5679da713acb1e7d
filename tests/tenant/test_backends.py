"""Backends by name: a third-party package's backend found through a real entry point and run by a tenant."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from labweave.drivers import registry
from labweave.services.cli.main import app
from labweave.services.client import AsyncLabClient
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant

from ..server.helpers import REQUESTER_TENANT, open_lab

#: A tiny package of another lab: a PLD chamber reached at an address (here the simulated
#: chamber underneath), which logs every burst of pulses to a file in the lab's folder.
THIRD_PARTY_MODULE = '''
from pathlib import Path

from pydantic import Field

from labweave.drivers.base import BackendSettings
from labweave.drivers.pld.sim import SimulatedPldBackend


class ChamberSettings(BackendSettings):
    address: str = Field(pattern=r"^tcp://[a-z0-9.-]+:[0-9]+$")
    burst_log: str = "bursts.log"


class NetworkedPldBackend(SimulatedPldBackend):
    settings_model = ChamberSettings

    def __init__(self, address, log_path, seed):
        super().__init__(seed=seed)
        self.address = address
        self.log_path = log_path

    @classmethod
    def from_settings(cls, settings, context):
        return cls(settings.address, Path(context.state_dir) / settings.burst_log, context.seed)

    async def fire(self, pulses):
        fired = await super().fire(pulses)
        with open(self.log_path, "a") as out:
            out.write(f"{self.address} {pulses}\\n")
        return fired


class NotABackend:
    pass
'''

ENTRY_POINTS = """\
[labweave.backends]
pld.networked = otherlab_chamber:NetworkedPldBackend
cycler.networked = otherlab_chamber:NetworkedPldBackend
pld.notabackend = otherlab_chamber:NotABackend
pld.missing = otherlab_missing:Backend
nodot = otherlab_chamber:NetworkedPldBackend
"""


@pytest.fixture
def third_party(tmp_path: Path) -> Path:
    """A folder holding an installed package (its module and its ``.dist-info``), not yet on sys.path."""
    site = tmp_path / "site"
    (site / "otherlab_chamber-1.0.dist-info").mkdir(parents=True)
    (site / "otherlab_chamber.py").write_text(textwrap.dedent(THIRD_PARTY_MODULE))
    info = site / "otherlab_chamber-1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otherlab-chamber\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


@pytest.fixture
def installed(third_party: Path, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(third_party))
    yield third_party
    sys.modules.pop("otherlab_chamber", None)


def test_labweave_registers_its_simulated_backends():
    found = registry.registered()
    for instrument in ("pld", "robot", "cycler", "emt", "chgnet"):
        assert found[instrument]["simulated"].package == "labweave"
    assert registry.find("cycler").target == "labweave.drivers.cycler.sim:SimulatedCyclerBackend"


def test_an_installed_package_adds_a_backend(installed, tmp_path):
    assert registry.backend_names("pld") == ["missing", "networked", "notabackend", "simulated"]
    assert registry.find("pld", "networked").package == "otherlab-chamber"
    chamber = build("pld", "networked", seed=3, state=tmp_path / "lab", options={"address": "tcp://chamber:5025"})
    assert type(chamber.backend).__name__ == "NetworkedPldBackend"
    assert chamber.backend.address == "tcp://chamber:5025"
    assert chamber.backend.log_path == tmp_path / "lab" / "bursts.log"


@pytest.mark.parametrize("instrument, backend, options, message", [
    ("pld", "teleporter", {}, "no backend 'teleporter' for the pld; installed: missing, networked, notabackend, "
                              "simulated"),
    ("pld", "networked", {}, "backend pld.networked: option address: Field required"),
    ("pld", "networked", {"address": "chamber"}, "backend pld.networked: option address: String should match"),
    ("pld", "networked", {"address": "tcp://c:1", "port": "1"},
     "backend pld.networked has no option 'port' (its options: address, burst_log)"),
    ("pld", "simulated", {"channels": "2"}, "backend pld.simulated has no option 'channels' (its options: none)"),
    ("cycler", "simulated", {"channels": "0"}, "backend cycler.simulated: option channels: Input should be greater"),
    ("pld", "notabackend", {}, "is not a subclass of labweave's Backend"),
    ("pld", "missing", {}, "cannot be loaded: ModuleNotFoundError"),
    ("cycler", "networked", {"address": "tcp://c:1"}, "is a NetworkedPldBackend, not a CyclerBackend"),
    ("stove", "simulated", {}, "unknown instrument 'stove'"),
])
def test_a_wrong_backend_or_option_is_refused_by_name(installed, tmp_path, instrument, backend, options, message):
    with pytest.raises(ValueError) as refused:
        build(instrument, backend, state=tmp_path, options=options)
    assert message in str(refused.value)


def test_two_packages_claiming_one_name_are_refused(installed, tmp_path, monkeypatch):
    other = tmp_path / "other"
    info = other / "otherlab_rival-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otherlab-rival\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[labweave.backends]\npld.networked = otherlab_rival:Chamber\n")
    monkeypatch.syspath_prepend(str(other))
    with pytest.raises(ValueError, match="registered by otherlab-rival .* and otherlab-chamber"):
        registry.find("pld", "networked")


runner = CliRunner()


def test_the_cli_names_the_backends_there_are(installed, tmp_path):
    base = ["tenant", "run", "--user", "u", "--password", "p", "--state-dir", str(tmp_path)]
    r = runner.invoke(app, [*base, "cycler", "--backend", "arbin"])
    assert r.exit_code == 2 and "no backend 'arbin' for the cycler; installed: networked, simulated, tomato" in r.output
    r = runner.invoke(app, [*base, "pld", "--backend", "networked", "--backend-option", "address=udp://x"])
    assert r.exit_code == 2 and "option address: String should match" in r.output
    r = runner.invoke(app, [*base, "pld", "cycler", "--backend", "robot=simulated"])
    assert r.exit_code == 2 and "'robot' is not among the instruments run (pld, cycler)" in r.output
    r = runner.invoke(app, [*base, "pld", "--backend-option", "address"])
    assert r.exit_code == 2 and "write it as KEY=VALUE or INSTRUMENT.KEY=VALUE" in r.output
    r = runner.invoke(app, ["tenant", "backends"])
    assert r.exit_code == 0
    assert "  networked from otherlab-chamber: address (required), burst_log='bursts.log'" in r.output
    assert "  simulated (default) from labweave: channels=8, name='sim-cycler'" in r.output
    assert "pld.missing (otherlab_missing:Backend, from otherlab-chamber) cannot be loaded" in r.output


def test_backend_options_go_to_each_instrument():
    from labweave.services.cli.tenant_run import backend_choices

    chosen = backend_choices(["robot", "cycler", "workflow"], ["cycler=tomato"],
                             ["cycler.address=tcp://c:1", "name=line-1"])
    assert chosen == {"robot": ("simulated", {"name": "line-1"}),
                      "cycler": ("tomato", {"address": "tcp://c:1", "name": "line-1"})}
    assert backend_choices(["pld"], ["networked"], [])["pld"] == ("networked", {})


RECIPE = {"target": "SrTiO3", "substrate": "SrTiO3", "laser_fluence": 2.0, "substrate_temperature": 1000.0,
          "oxygen_pressure": 1.0, "repetition_rate": 5.0, "pulses": 40}


def test_a_tenant_runs_a_third_party_backend(sqlite_url, third_party, tmp_path):
    """``labweave tenant run pld --backend networked --backend-option ...`` in its own process, the
    package found on PYTHONPATH through its entry point as pip would install it."""
    lab = open_lab(sqlite_url, tenants=False)
    lab.lab.close()
    with ServerProcess(sqlite_url, env={"LABWEAVE_PASSWORD_ROUNDS": "4"}, log_path=tmp_path / "server.log") as server:
        async def setup():
            async with AsyncLabClient(server.url, "op", "op") as op:
                await provision_tenant(op, "chamber", [build("pld")], "chamber", "chamber-pw")
        asyncio.run(setup())
        with httpx.Client(base_url=server.url, timeout=30) as http:
            token = http.post("/user_management/authenticate", data={"username": "alice", "password": "alice"})
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            posted = http.post("/requests/", json={"quantity": "thin_film", "methods": ["pld_growth"],
                                                   "parameters": {"pld_growth": RECIPE},
                                                   "tenant_uuid": REQUESTER_TENANT})
            assert posted.status_code == 200, posted.text
            env = {**os.environ, "LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": "chamber",
                   "LABWEAVE_PASSWORD": "chamber-pw",
                   "PYTHONPATH": os.pathsep.join([str(third_party), os.environ.get("PYTHONPATH", "")])}
            tenant = subprocess.run(
                [sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", "pld",
                 "--backend", "networked", "--backend-option", "address=tcp://chamber-7:5025",
                 "--state-dir", str(tmp_path / "lab"), "--poll", "0.3", "--until-idle"],
                env=env, capture_output=True, text=True, timeout=300)
            assert tenant.returncode == 0, tenant.stderr
            result = http.get(f"/results_requested/{posted.json()}").json()
    assert result["result"]["data"]["pulses_fired"] == 40
    bursts = (tmp_path / "lab" / "bursts.log").read_text().splitlines()
    assert bursts and all(line.startswith("tcp://chamber-7:5025 ") for line in bursts)
    assert sum(int(line.split()[1]) for line in bursts) == 40
