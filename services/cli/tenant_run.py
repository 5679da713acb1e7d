"""``labweave tenant run``: serve instruments as a tenant daemon."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import typer

from .common import fail

log = logging.getLogger(__name__)


def run(
    instruments: list[str] = typer.Argument(..., help="instruments: pld, emt, chgnet, robot, cycler, workflow"),
    backend: str = typer.Option("sim", "--backend", help="backend of the instruments ('sim': the simulated ones)"),
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="LABWEAVE_SERVER_URL", help="server URL"),
    user: str = typer.Option(..., "--user", envvar="LABWEAVE_USER", help="a tenant user of this tenant"),
    password: str = typer.Option(..., "--password", envvar="LABWEAVE_PASSWORD", help="its password"),
    seed: int = typer.Option(0, "--seed", help="seed of the simulated backends"),
    state_dir: Path = typer.Option(Path("labweave-lab"), "--state-dir", help="outbox and the simulated lab's state"),
    lease: float = typer.Option(60.0, "--lease", min=1.0, help="lease in seconds"),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="poll interval in seconds"),
    until_idle: bool = typer.Option(False, "--until-idle", help="exit when nothing is left to claim"),
    cells: int = typer.Option(2, "--cells", min=1, max=64, help="workflow: cells assembled per request"),
    cycles: int = typer.Option(150, "--cycles", min=1, max=1000, help="workflow: cycles per cell"),
) -> None:
    """Claim and run requests for INSTRUMENTS until stopped (SIGTERM finishes or releases held work)."""
    from labweave.services.client import AsyncLabClient
    from labweave.services.client.errors import LabweaveError
    from labweave.services.tenant.catalog import build, workflow
    from labweave.services.tenant.runtime import TenantRuntime

    try:
        built = [build(name, backend, seed + i, state_dir) for i, name in enumerate(instruments) if name != "workflow"]
    except ValueError as exc:
        fail(str(exc))

    async def main() -> None:
        async with AsyncLabClient(server, user, password) as client:
            if "workflow" in instruments:
                built.append(workflow(client, cells, cycles))
            runtime = TenantRuntime(client, built, state_dir=state_dir / f"tenant-{user}", lease_seconds=lease,
                                    poll_seconds=poll)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runtime.shutdown)
            await runtime.run(until_idle=until_idle)
            log.info("tenant %s done: %s", user, runtime.counters)

    try:
        asyncio.run(main())
    except LabweaveError as exc:
        fail(str(exc))
