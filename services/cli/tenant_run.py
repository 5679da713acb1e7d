"""``labweave tenant run``: serve instruments as a tenant daemon; ``labweave tenant backends``: what is installed."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Optional

import typer

from .common import fail, secret

log = logging.getLogger(__name__)

WORKFLOW = "workflow"


def _split(text: str, flag: str, form: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not (sep and key.strip()):
        fail(f"{flag} {text!r}: write it as {form}")
    return key.strip(), value.strip()


def backend_choices(instruments: list[str], backends: list[str], options: list[str]) -> dict[str, tuple[str, dict]]:
    """Each instrument's backend and options, from ``--backend`` and ``--backend-option`` as given.

    ``--backend NAME`` sets every instrument's backend, ``--backend INSTRUMENT=NAME``
    one instrument's; ``--backend-option KEY=VALUE`` is given to every instrument's
    backend, ``--backend-option INSTRUMENT.KEY=VALUE`` to one.
    """
    from labweave.drivers import registry

    listed = [name for name in instruments if name != WORKFLOW]
    default = registry.DEFAULT
    chosen: dict[str, str] = {}
    for text in backends:
        if "=" in text:
            instrument, name = _split(text, "--backend", "NAME or INSTRUMENT=NAME")
            if instrument not in listed:
                fail(f"--backend {text!r}: {instrument!r} is not among the instruments run ({', '.join(listed)})")
            chosen[instrument] = name
        else:
            default = text.strip()
    given: dict[str, dict[str, str]] = {name: {} for name in listed}
    for text in options:
        key, value = _split(text, "--backend-option", "KEY=VALUE or INSTRUMENT.KEY=VALUE")
        instrument, dot, option = key.rpartition(".")
        if not dot:
            for name in listed:
                given[name][key] = value
        elif instrument in given:
            given[instrument][option] = value
        else:
            fail(f"--backend-option {text!r}: {instrument!r} is not among the instruments run ({', '.join(listed)})")
    return {name: (chosen.get(name, default), given[name]) for name in listed}


def run(
    instruments: list[str] = typer.Argument(..., help="instruments: pld, emt, chgnet, robot, cycler, workflow"),
    backend: list[str] = typer.Option(
        [], "--backend", metavar="NAME|INSTRUMENT=NAME",
        help="backend of the instruments, or of one (default: simulated; see `labweave tenant backends`)",
    ),
    backend_option: list[str] = typer.Option(
        [], "--backend-option", metavar="KEY=VALUE|INSTRUMENT.KEY=VALUE",
        help="an option of the backends, or of one instrument's (repeatable)",
    ),
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="LABWEAVE_SERVER_URL", help="server URL"),
    user: str = typer.Option(..., "--user", envvar="LABWEAVE_USER", help="a tenant user of this tenant"),
    password: Optional[str] = typer.Option(None, "--password", envvar="LABWEAVE_PASSWORD", help="its password"),
    password_file: Optional[Path] = typer.Option(
        None, "--password-file", envvar="LABWEAVE_PASSWORD_FILE", help="a file holding its password (a secret)",
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the simulated backends"),
    state_dir: Path = typer.Option(Path("labweave-lab"), "--state-dir", help="outbox and the simulated lab's state"),
    lease: float = typer.Option(60.0, "--lease", min=1.0, help="lease in seconds"),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="poll interval in seconds"),
    until_idle: bool = typer.Option(False, "--until-idle", help="exit when nothing is left to claim"),
    cells: int = typer.Option(2, "--cells", min=1, max=64, help="workflow: cells assembled per request"),
    cycles: int = typer.Option(150, "--cycles", min=1, max=1000, help="workflow: cycles per cell"),
    dask_scheduler: str = typer.Option(
        "local", "--dask-scheduler", envvar="LABWEAVE_DASK_SCHEDULER", metavar="local|none|tcp://HOST:8786",
        help="where simulations (emt, chgnet, dft, cycler) compute: an embedded Dask cluster (local), this "
             "process without Dask (none), or a Dask scheduler's address",
    ),
    dask_scheduler_file: Optional[Path] = typer.Option(
        None, "--dask-scheduler-file", envvar="LABWEAVE_DASK_SCHEDULER_FILE",
        help="a Dask scheduler file (dask scheduler --scheduler-file) instead of --dask-scheduler",
    ),
    metrics_port: Optional[int] = typer.Option(
        None, "--metrics-port", min=1, max=65535, envvar="LABWEAVE_METRICS_PORT",
        help="serve this tenant's Dask task counts for Prometheus on this port (/metrics)",
    ),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="address the metrics port listens on"),
) -> None:
    """Claim and run requests for INSTRUMENTS until stopped (SIGTERM finishes or releases held work).

    SIGUSR1 is a local emergency stop: every instrument to its safe state at once, the work held
    failed (retryable), and nothing claimed until an operator resets it (`labweave tenant reset NAME`).
    """
    from labweave.services.client import AsyncLabClient
    from labweave.services.client.errors import LabweaveError
    from labweave.services.tenant.catalog import build, workflow
    from labweave.services.tenant.runtime import TenantRuntime

    login = secret(password, password_file, "--password")

    from labweave.services.cluster import metrics

    scheduler = cluster_choice(dask_scheduler, dask_scheduler_file)
    if metrics_port is not None:
        try:
            metrics.serve_metrics(metrics_port, metrics_host)
        except OSError as exc:
            fail(f"--metrics-port {metrics_port}: cannot listen on {metrics_host}:{metrics_port}: {exc.strerror or exc}")
    choices = backend_choices(instruments, backend, backend_option)
    built = []
    for i, name in enumerate(instruments):  # a name given twice is two instruments (two channels)
        if name == WORKFLOW:
            continue
        choice, options = choices[name]
        try:
            built.append(build(name, choice, seed + i, state_dir, options))
        except ValueError as exc:
            fail(str(exc))

    async def main() -> None:
        executor = await attach_executor(built, *scheduler)
        try:
            async with AsyncLabClient(server, user, login) as client:
                if WORKFLOW in instruments:
                    built.append(workflow(client, cells, cycles))
                runtime = TenantRuntime(client, built, state_dir=tenant_state(state_dir, user),
                                        lease_seconds=lease, poll_seconds=poll)
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, runtime.shutdown)
                loop.add_signal_handler(signal.SIGUSR1, runtime.local_emergency_stop)
                await runtime.run(until_idle=until_idle)
                log.info("tenant %s done: %s", user, runtime.counters)
        finally:
            if executor is not None:
                log.info("Dask tasks: %s", metrics.totals())
                await executor.close()

    from labweave.services.cluster.executor import ClusterUnavailable

    try:
        asyncio.run(main())
    except (LabweaveError, ClusterUnavailable) as exc:
        fail(str(exc))


def tenant_state(state_dir: Path, user: str) -> Path:
    """Where the runtime of tenant user ``user`` keeps its outbox, under the lab's folder."""
    return state_dir / f"tenant-{user}"


def outbox(
    user: str = typer.Option(..., "--user", envvar="LABWEAVE_USER", help="the tenant user the daemon runs as"),
    state_dir: Path = typer.Option(Path("labweave-lab"), "--state-dir", help="as given to `labweave tenant run`"),
    retry: list[str] = typer.Option([], "--retry", metavar="KEY", help="post this dead letter again (repeatable)"),
    discard: list[str] = typer.Option([], "--discard", metavar="KEY",
                                      help="give this dead letter up (kept under discarded/, repeatable)"),
) -> None:
    """List a tenant's outbox on this machine: results waiting to be posted, and dead letters (results the
    server refused, with its message); retry or discard dead letters. A running daemon posts a retried one
    at its next poll and reports the change to the server."""
    from labweave.services.tenant.outbox import Outbox

    folder = tenant_state(state_dir, user) / "outbox"
    if not folder.is_dir():
        fail(f"no outbox of tenant user {user!r} under {state_dir} (is --state-dir the one `tenant run` uses?)")
    box = Outbox(folder)
    for key in retry:
        try:
            box.retry(key)
        except KeyError as exc:
            fail(str(exc.args[0]))
        typer.echo(f"retry {key}: back in the outbox, posted again by the running tenant")
    for key in discard:
        try:
            box.discard(key)
        except KeyError as exc:
            fail(str(exc.args[0]))
        typer.echo(f"discarded {key} (kept under {box.discarded_folder})")
    if retry or discard:
        return
    waiting = box.pending()
    letters = box.dead_letters()
    typer.echo(f"{len(waiting)} result(s) waiting to be posted, {len(letters)} dead letter(s)")
    for key, result in waiting:
        typer.echo(f"  waiting  {key}  request {result.get('request_uuid')}")
    for entry in letters:
        result = entry["result"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.get("kept_at", 0.0)))
        typer.echo(f"  dead     {entry['key']}  request {result.get('request_uuid')} "
                   f"({result.get('quantity')}), kept {when} UTC")
        typer.echo(f"           refused ({entry.get('status_code')}): {entry['refusal']}")


def cluster_choice(scheduler: str, scheduler_file: Path | None) -> tuple[str, Path | None]:
    """``--dask-scheduler`` and ``--dask-scheduler-file``, checked."""
    from labweave.services.cluster.executor import LOCAL, check_scheduler

    if scheduler_file is not None:
        if scheduler.strip() != LOCAL:
            fail("give --dask-scheduler or --dask-scheduler-file, not both")
        if not scheduler_file.is_file():
            fail(f"--dask-scheduler-file {scheduler_file}: no such file")
        return LOCAL, scheduler_file
    try:
        return check_scheduler(scheduler), None
    except ValueError as exc:
        fail(str(exc))


async def attach_executor(instruments: list, scheduler: str, scheduler_file: Path | None):
    """Connect the instruments whose computations can leave the process to the chosen Dask cluster.

    Returns:
        The executor, or None where no instrument computes (pld, robot, workflow) or with ``none``.
    """
    from labweave.services.cluster.executor import NONE, DaskExecutor

    offloading = [inst for inst in instruments if inst.backend.offloads]
    if not offloading or (scheduler == NONE and scheduler_file is None):
        return None
    executor = await DaskExecutor.connect(scheduler, scheduler_file)
    for inst in offloading:
        inst.backend.executor = executor
    return executor


def backends() -> None:
    """List each instrument's installed backends, where they come from, and their options."""
    from labweave.drivers import registry
    from labweave.services.tenant.catalog import INSTRUMENTS

    installed = registry.registered()
    for instrument in sorted(set(INSTRUMENTS) | set(installed)):
        found = installed.get(instrument, {})
        if instrument not in INSTRUMENTS:
            typer.echo(f"{instrument} (not an instrument of this labweave; its backends are unused)")
        else:
            typer.echo(instrument if found else f"{instrument}: no backend installed")
        for name, entry in found.items():
            default = " (default)" if name == registry.DEFAULT else ""
            try:
                fields = entry.load().settings_model.model_fields
            except registry.BackendUnusable as exc:
                typer.echo(f"  {name}{default}: {exc}")
                continue
            options = ", ".join(f"{key}={field.default!r}" if not field.is_required() else f"{key} (required)"
                                for key, field in fields.items()) or "no options"
            typer.echo(f"  {name}{default} from {entry.package}: {options}")
