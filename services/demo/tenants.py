"""The demo's simulated instruments: registered by the operator, run as ``labweave tenant run`` processes.

Each demo tenant is one process serving one or more instruments of the
catalogue (:mod:`labweave.services.tenant.catalog`), with its own tenant user,
as an instrument PC of a real lab would run it. The robot and the cycler share
the simulated lab's folder (its cell shelf) so that the cycler finds the cells
the robot assembled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labweave.drivers.base import Instrument
from labweave.services.client import AsyncLabClient
from labweave.services.tenant import catalog
from labweave.services.tenant.provision import provision_tenant

log = logging.getLogger(__name__)

#: The workflow is not in the catalogue of stand-alone instruments: it needs the client it posts with.
WORKFLOW = "workflow"


@dataclass(frozen=True)
class DemoTenant:
    """A tenant of the demo lab.

    Args:
        name: the tenant's name on the server (also its user's name).
        title: what it is, for people.
        instruments: catalogue names of the instruments it serves (a name given twice is two channels).
        options: extra ``labweave tenant run`` options.
    """

    name: str
    title: str
    instruments: tuple[str, ...]
    options: tuple[str, ...] = ()


#: Cells per degradation request (built in triplicate, as labs do: the electrolyte campaign reads their
#: median) and cycles per cell: demo-sized (a lab would cycle to end of life). The end of life is
#: extrapolated from the fade (see ``labweave.drivers.cycler.analysis``); 40 cycles give it within a
#: few cycles of what 80 give, in about half the time.
WORKFLOW_OPTIONS = ("--cells", "3", "--cycles", "40")

DEMO_TENANTS: dict[str, DemoTenant] = {t.name: t for t in (
    DemoTenant("pld-chamber", "PLD chamber with RHEED", ("pld",)),
    DemoTenant("emt-code", "EMT (the quick stand-in for DFT; the demo needs no GPAW)", ("emt",)),
    DemoTenant("mlip-code", "CHGNet machine-learned potential", ("chgnet",)),
    DemoTenant("coin-cell-robot", "electrolyte formulation and coin-cell assembly robot", ("robot",)),
    # Two cyclers and two workflow runners, each its own process: two cells cycle at once, on two cores.
    DemoTenant("cycler-1", "battery cycler 1", ("cycler",)),
    DemoTenant("cycler-2", "battery cycler 2", ("cycler",)),
    DemoTenant("degradation-workflow-1", "degradation workflow (formulate, assemble, cycle)", (WORKFLOW,),
               WORKFLOW_OPTIONS),
    DemoTenant("degradation-workflow-2", "degradation workflow (formulate, assemble, cycle)", (WORKFLOW,),
               WORKFLOW_OPTIONS),
)}


def unavailable(name: str) -> str | None:
    """Why the demo tenant ``name`` cannot run on this installation, or ``None`` if it can.

    Args:
        name: a key of :data:`DEMO_TENANTS`.

    Returns:
        A sentence, or ``None``.
    """
    tenant = DEMO_TENANTS.get(name)
    if tenant is None:
        return f"no demo tenant named {name!r}"
    for instrument in tenant.instruments:
        known = hasattr(catalog, "workflow") if instrument == WORKFLOW else instrument in catalog.INSTRUMENTS
        if not known:
            return f"the instrument {instrument!r} ({tenant.title}) is not in this installation's catalogue"
    return None


def registration_instruments(tenant: DemoTenant, lab_dir: Path, seed: int) -> list[Instrument]:
    """The tenant's instruments, built only to read their capabilities and limitations.

    Args:
        tenant: the demo tenant.
        lab_dir: the simulated lab's folder.
        seed: seed of the simulated backends.

    Returns:
        One instrument per distinct catalogue name.
    """
    built = []
    for name in dict.fromkeys(tenant.instruments):
        built.append(catalog.workflow(None) if name == WORKFLOW else catalog.build(name, seed=seed, state=lab_dir))
    return built


@dataclass(frozen=True)
class Credentials:
    """A tenant user's login and the tenant it acts for."""

    username: str
    password: str
    tenant_uuid: str


async def provision(operator: AsyncLabClient, tenants: list[DemoTenant], lab_dir: Path,
                    seed: int) -> dict[str, Credentials]:
    """Register each tenant's capabilities, the tenant and its user (a fresh password each run).

    Args:
        operator: an operator's client.
        tenants: the tenants to set up.
        lab_dir: the simulated lab's folder.
        seed: seed of the simulated backends.

    Returns:
        The credentials of each tenant's user, by tenant name.
    """
    out = {}
    for tenant in tenants:
        password = secrets.token_urlsafe(12)
        # building imports the instrument's models (PyBaMM, CHGNet): off the event loop
        instruments = await asyncio.to_thread(registration_instruments, tenant, lab_dir, seed)
        uuid = await provision_tenant(operator, tenant.name, instruments, tenant.name, password)
        out[tenant.name] = Credentials(tenant.name, password, uuid)
        log.info("provisioned tenant %s (%s)", tenant.name, uuid)
    return out


class TenantProcess:
    """A ``labweave tenant run`` child process serving one demo tenant.

    Args:
        tenant: the demo tenant.
        server_url: the server's URL.
        credentials: its user.
        lab_dir: the simulated lab's folder (shared by all tenants: the cell shelf lives there).
        seed: seed of the simulated backends.
        log_path: where the process writes its log.
    """

    def __init__(self, tenant: DemoTenant, server_url: str, credentials: Credentials, lab_dir: Path, seed: int,
                 log_path: Path):
        self.tenant = tenant
        self.server_url = server_url
        self.credentials = credentials
        self.lab_dir = lab_dir
        self.seed = seed
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "TenantProcess":
        """Start the process (it logs in, publishes its limitations and starts claiming)."""
        env = {**os.environ, "LABWEAVE_SERVER_URL": self.server_url, "LABWEAVE_USER": self.credentials.username,
               "LABWEAVE_PASSWORD": self.credentials.password,
               "LABWEAVE_LOG_LEVEL": os.environ.get("LABWEAVE_LOG_LEVEL", "INFO"),
               "PYBAMM_DISABLE_TELEMETRY": "true"}
        args = [sys.executable, "-m", "labweave.services.cli.main", "tenant", "run", *self.tenant.instruments,
                "--state-dir", str(self.lab_dir), "--seed", str(self.seed), "--poll", "5", "--lease", "120",
                *self.tenant.options]
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        log.info("started tenant %s (pid %d)", self.tenant.name, self.proc.pid)
        return self

    def exited(self) -> int | None:
        """The exit code if the process has ended, else ``None``."""
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the process's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 40.0) -> None:
        """SIGTERM (the runtime finishes or releases what it holds), then kill after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("tenant %s did not stop within %.0f s; killing it", self.tenant.name, timeout)
            self.proc.kill()
            self.proc.wait()
