"""A lab of real processes for the tests that run whole loops.

A ``labweave serve`` process on a seeded database with the named tenants
provisioned (each tenant's user and password: ``NAME`` and ``NAME-pw``), and
``labweave`` commands (tenants, the optimizer) as processes logging to files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from labweave.services.client import AsyncLabClient
from labweave.services.server.process import ServerProcess
from labweave.services.tenant.catalog import build
from labweave.services.tenant.provision import provision_tenant

from .server.helpers import open_lab

T = TypeVar("T")


@contextmanager
def served_lab(sqlite_url: str, folder: Path, tenants: Sequence[str | tuple[str, str]] = (),
               env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A server process on a fresh lab at ``sqlite_url`` with ``tenants`` provisioned.

    Args:
        tenants: instrument names (``"emt"``), or ``(user, instrument)`` pairs where the tenant's
            user is named otherwise (``("chamber", "pld")``).
        env: more environment for the server (passwords are hashed with 4 rounds either way).
    """
    open_lab(sqlite_url, tenants=False).lab.close()
    pairs = [(t, t) if isinstance(t, str) else t for t in tenants]
    with ServerProcess(sqlite_url, env={"LABWEAVE_PASSWORD_ROUNDS": "4", **(env or {})},
                       log_path=folder / "server.log") as server:
        async def provision() -> None:
            async with AsyncLabClient(server.url, "op", "op") as op:
                for user, instrument in pairs:
                    await provision_tenant(op, user, [build(instrument)], user, f"{user}-pw")
        asyncio.run(provision())
        yield server


def labweave(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``labweave ARGS`` as a process with ``env`` added to this one's, its output appended to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "labweave.services.cli.main", *args],
                            env={**os.environ, **env}, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def run_tenant(server: ServerProcess, instrument: str, folder: Path, *options: str, user: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.Popen:
    """``labweave tenant run INSTRUMENT`` as the tenant's user (its state in ``folder/lab``, its log in ``folder``)."""
    user = user or instrument
    return labweave(["tenant", "run", instrument, "--poll", "0.3", "--state-dir", str(folder / "lab"), *options],
                    {"LABWEAVE_SERVER_URL": server.url, "LABWEAVE_USER": user, "LABWEAVE_PASSWORD": f"{user}-pw",
                     "OMP_NUM_THREADS": "1", **(env or {})}, folder / f"{user}.log")


def stop(process: subprocess.Popen, timeout: float = 60) -> int:
    """A safe stop (SIGTERM) and the exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def wait_for(predicate: Callable[[], T], timeout: float = 180.0, what: str = "condition",
             every: float = 0.3) -> T:
    """The first true value of ``predicate``, looked at every ``every`` seconds for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"not reached in {timeout} s: {what}")
