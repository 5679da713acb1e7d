"""One run of the demo lab: database, server, tenants, optimizer daemons, then the report.

The server and every tenant run as child processes, as they would in a lab
(``labweave serve``, ``labweave tenant run``); the optimizer daemons of all
campaigns run as asyncio tasks of this process, each talking HTTP to the
server like any other requester. Everything the report shows is read back
from the server at the end.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from labweave.optimizer.campaign import Campaign
from labweave.schemas.api import RequestDetail
from labweave.services.client import AsyncLabClient
from labweave.services.client.errors import AuthenticationFailed, Conflict, LabweaveError, NotFound
from labweave.services.optimizer_daemon import OptimizerDaemon
from labweave.services.server.config import Settings
from labweave.services.server.lab import Lab
from labweave.services.server.process import ServerProcess
from labweave.services.server.seed import seed_demo

from . import replicates
from . import tenants as lab_tenants
from .campaigns import RECIPES, DemoCampaign, select
from .progress import RunView, StatusBoard
from .runs import CampaignRun, DemoOptions, DemoResult

log = logging.getLogger(__name__)

#: The operator account the demo creates in a fresh database (the README's login).
OPERATOR = ("operator", "operator")
#: The requester the optimizer daemons post as, and the tenant it acts for.
REQUESTER = "optimizer"
#: A run whose requests failed more often than this many times its budget is given up.
MAX_FAILURES_PER_BUDGET = 1
#: How often the board is refreshed from the server.
WATCH_SECONDS = 2.0
#: Seconds without any new result in any campaign after which the demo gives up.
STALL_SECONDS = 600.0


class DemoError(Exception):
    """The demo cannot start or cannot go on (the message says why and where to look)."""


def fresh_sqlite(out: Path) -> str:
    """A new, empty SQLite database in ``out`` (an earlier demo's database and lab state are removed)."""
    path = (out / "labweave.db").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(out / "lab", ignore_errors=True)
    return f"sqlite:///{path}"


def prepare_database(database_url: str) -> None:
    """Bring the schema up to date and create the demo accounts that are missing (operator/operator)."""
    lab = Lab.open(Settings(database_url=database_url))
    try:
        made = seed_demo(lab)
        log.info("database %s ready; created %s", database_url, made or "no accounts")
    finally:
        lab.close()


class DemoLab:
    """The lab of one demo run: its server, its tenants, its campaigns.

    Args:
        options: what was asked for.
        campaigns: the demo campaigns to run.
        board: the live status display.
    """

    def __init__(self, options: DemoOptions, campaigns: list[DemoCampaign], board: StatusBoard):
        self.options = options
        self.campaigns = campaigns
        self.board = board
        self.out = options.out
        self.logs = self.out / "logs"
        self.lab_dir = self.out / "lab"
        self.server: ServerProcess | None = None
        self.processes: list[lab_tenants.TenantProcess] = []
        self.tenant_names: dict[str, str] = {}
        self.failures: dict[str, str] = {}  # by campaign key: why it could not finish
        self._requests: dict[str, tuple[tuple, list[RequestDetail]]] = {}  # by run: its counts, its requests

    # -- lifetime ------------------------------------------------------------
    def start_server(self, database_url: str) -> str:
        """Start ``labweave serve`` on a free loopback port; returns its URL."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        prepare_database(database_url)
        self.server = ServerProcess(database_url, log_path=self.logs / "server.log").start()
        log.info("server on %s", self.server.url)
        return self.server.url

    def _server(self) -> ServerProcess:
        if self.server is None:
            raise DemoError("the server is not running (start_server first)")
        return self.server

    def close(self) -> None:
        """Stop the tenants (they finish or release what they hold), then the server."""
        for proc in self.processes:
            proc.stop()
        if self.server is not None:
            self.server.stop()

    # -- the run -------------------------------------------------------------
    async def run(self) -> dict[str, tuple[CampaignRun, CampaignRun]]:
        """Provision and start the tenants, run every campaign and its baseline to the end.

        Returns:
            By campaign key, the optimised and the baseline run; campaigns that failed are left
            out (:attr:`failures` says why).

        Raises:
            DemoError: if the operator cannot log in, a tenant process dies or the lab stalls.
        """
        url = self._server().url
        async with AsyncLabClient(url, *OPERATOR) as operator:
            try:
                await operator.login()
            except AuthenticationFailed:
                raise DemoError("the database already has an 'operator' account with another password; "
                                "run the demo on a fresh database (leave out --database-url)") from None
            try:
                password, requester_tenant = await self._requester(operator)
                runs = await self._unique_names(operator)
                async with AsyncLabClient(url, REQUESTER, password) as requester:
                    posted: dict[str, replicates.Posted] = {}

                    async def replicate(key: str, role: str, campaign: Campaign, reason: str) -> None:
                        """As soon as a run of a noisy campaign ends, ask for replicates of its recommended point."""
                        count = self.options.replicates_of(RECIPES[key])
                        if not count:
                            return
                        if not posted:
                            self.board.note("measuring replicates of the point each run recommends")
                        run = await self._collect_run(operator, role, campaign, reason)
                        asked = await replicates.post(requester, requester_tenant, run, count)
                        if asked is not None:
                            posted[run.name] = asked

                    ended = await self._run_campaigns(operator, url, password, runs, replicate)
                    collected = await self._collect(operator, runs, ended)
                    await replicates.gather(requester, posted, collected, timeout=STALL_SECONDS)
                return collected
            except LabweaveError as exc:  # the server refused or went away (a campaign's own failure is caught)
                raise DemoError(f"the lab stopped: {exc}; see the logs in {self.logs}") from exc

    async def _requester(self, operator: AsyncLabClient) -> tuple[str, str]:
        """The optimizer's account: a requester bound to the ``optimizer`` tenant; returns its password and
        the tenant's uuid."""
        existing = {t.name: t.tenant_uuid for t in await operator.tenants()}
        uuid = existing.get(REQUESTER) or (await operator.register_tenant(
            {"name": REQUESTER, "limitations": [], "contact_person": "labweave demo"})).tenant_uuid
        password = secrets.token_urlsafe(12)
        await operator.add_user(REQUESTER, password, "requester", uuid)
        return password, uuid

    async def _start_tenants(self, operator: AsyncLabClient, names: tuple[str, ...]) -> None:
        """Provision each tenant not yet running and start its process at once (they take a while to boot)."""
        for name in names:
            if name in self.tenant_names.values():
                continue
            tenant = lab_tenants.DEMO_TENANTS[name]
            creds = (await lab_tenants.provision(operator, [tenant], self.lab_dir, self.options.seed))[name]
            self.tenant_names[creds.tenant_uuid] = name
            seed = self.options.seed * 1000 + 10 * len(self.processes)
            self.processes.append(lab_tenants.TenantProcess(
                tenant, self._server().url, creds, self.lab_dir, seed, self.logs / f"tenant-{name}.log").start())

    async def _unique_names(self, operator: AsyncLabClient) -> list[tuple[str, str, Campaign]]:
        """``(key, role, campaign)`` for every run, renamed where the database already holds the name."""
        runs = []
        for demo in self.campaigns:
            for role, campaign in (("optimised", demo.optimised), ("baseline", demo.baseline)):
                name, n = campaign.spec.name, 1
                while await _exists(operator, name):
                    n += 1
                    name = f"{campaign.spec.name}-{n}"
                if name != campaign.spec.name:
                    campaign = Campaign(campaign.spec.model_copy(update={"name": name}))
                runs.append((demo.recipe.key, role, campaign))
        return runs

    async def _run_campaigns(self, operator: AsyncLabClient, url: str, password: str,
                             runs: list[tuple[str, str, Campaign]],
                             on_end: Callable[[str, str, Campaign, str], Awaitable[None]]) -> dict[str, str]:
        """Start each campaign's daemons as soon as its instruments are provisioned; run all to the end.

        Args:
            operator: the operator's client.
            url: the server.
            password: the requester's password.
            runs: ``(key, role, campaign)`` of every run.
            on_end: awaited with ``(key, role, campaign, why)`` when a run has ended, unless its
                campaign failed.

        Returns:
            Why each run ended, by campaign name.
        """
        clients = [AsyncLabClient(url, REQUESTER, password) for _ in runs]
        # a daemon wakes on its campaign's events; the poll is the fallback
        daemons = [OptimizerDaemon(client, campaign, poll_seconds=5.0)
                   for client, (_, _, campaign) in zip(clients, runs)]
        views = [RunView(key, role, campaign) for key, role, campaign in runs]
        ended: dict[str, str] = {}
        tasks: list[asyncio.Task] = []

        async def drive(daemon: OptimizerDaemon, key: str, role: str, campaign: Campaign) -> None:
            try:
                reason = await daemon.run()
            except LabweaveError as exc:  # this campaign cannot go on; the others can
                log.error("campaign %s failed: %s", daemon.name, exc)
                self.failures[key] = f"{key}: campaign {daemon.name} failed: {exc}"
                ended[daemon.name] = "failed"
                for twin, (twin_key, _, twin_campaign) in zip(daemons, runs):
                    if twin_key == key and twin.name not in ended:
                        ended[twin.name] = "stopped: its twin failed"
                        await _stop(operator, twin, twin_campaign)
                return
            ended.setdefault(daemon.name, reason)
            if key not in self.failures:
                await on_end(key, role, campaign, ended[daemon.name])

        async def launch() -> None:
            for demo in self.campaigns:
                await self._start_tenants(operator, demo.recipe.tenants)
                for daemon, (key, role, campaign) in zip(daemons, runs):
                    if key == demo.recipe.key:
                        tasks.append(asyncio.create_task(drive(daemon, key, role, campaign),
                                                         name=f"daemon {daemon.name}"))

        launcher = asyncio.create_task(launch(), name="launch")
        watch = asyncio.create_task(self._watch(operator, daemons, runs, views, ended), name="watch")
        try:
            with self.board.live(views):
                await _raise_first_failure([launcher, watch], asyncio.FIRST_COMPLETED)  # all launched
                await _raise_first_failure([*tasks, watch], asyncio.FIRST_EXCEPTION)  # all ended
                await self._watch_once(operator, views, ended)  # the final state on the board
        finally:
            for task in [launcher, *tasks, watch]:
                task.cancel()
            await asyncio.gather(launcher, *tasks, watch, return_exceptions=True)
            for client in clients:
                await client.close()
        return ended

    async def _watch(self, operator: AsyncLabClient, daemons: list[OptimizerDaemon],
                     runs: list[tuple[str, str, Campaign]], views: list[RunView], ended: dict[str, str]) -> None:
        """Refresh the board; stop runs that only fail; give up if a tenant dies or nothing moves."""
        last_change, seen = time.monotonic(), -1.0
        while len(ended) < len(daemons):
            for proc in self.processes:
                code = proc.exited()
                if code is not None:
                    raise DemoError(f"tenant {proc.tenant.name} exited with code {code}; "
                                    f"its log ({proc.log_path}) ends with:\n{proc.log_tail()}")
            server = self._server().proc
            if server is None or server.poll() is not None:
                raise DemoError(f"the server exited; see {self.logs / 'server.log'}")
            await self._watch_once(operator, views, ended)
            for daemon, view, (_, _, campaign) in zip(daemons, views, runs):
                if daemon.name not in ended and view.failed > MAX_FAILURES_PER_BUDGET * view.budget:
                    log.error("%s: %d requests failed; giving up on it", daemon.name, view.failed)
                    ended[daemon.name] = f"given up after {view.failed} failed requests"
                    await _stop(operator, daemon, campaign)
            total = sum(v.done for v in views)
            if total != seen:
                last_change, seen = time.monotonic(), total
            elif time.monotonic() - last_change > STALL_SECONDS:
                raise DemoError(f"no new result in {STALL_SECONDS:.0f} s; see the logs in {self.logs}")
            await asyncio.sleep(WATCH_SECONDS)

    async def _watch_once(self, operator: AsyncLabClient, views: list[RunView], ended: dict[str, str]) -> None:
        for view in views:
            try:
                record = (await operator.campaign(view.name)).model_dump(mode="json")
            except NotFound:  # its daemon has not written it yet
                continue
            view.update(record, await self._campaign_requests(operator, view.name, record), ended.get(view.name))
        reserved = await operator.list_requests(status="reserved")
        self.board.show(views, reserved, self.tenant_names)

    async def _campaign_requests(self, operator: AsyncLabClient, name: str, record: dict) -> list[RequestDetail]:
        """The campaign's requests, read again only when its counts by status have changed."""
        counts = tuple(sorted((record.get("counts") or {}).items()))
        cached = self._requests.get(name)
        if cached is None or cached[0] != counts:
            found = await operator.list_requests(campaign=name)
            self._requests[name] = cached = (counts, found)
        return cached[1]

    async def _collect(self, operator: AsyncLabClient, runs: list[tuple[str, str, Campaign]],
                       ended: dict[str, str]) -> dict[str, tuple[CampaignRun, CampaignRun]]:
        by_key: dict[str, dict[str, CampaignRun]] = {}
        for key, role, campaign in runs:
            if key in self.failures:
                continue
            run = await self._collect_run(operator, role, campaign, ended.get(campaign.spec.name, ""))
            by_key.setdefault(key, {})[role] = run
        return {key: (pair["optimised"], pair["baseline"]) for key, pair in by_key.items()}

    @staticmethod
    async def _collect_run(operator: AsyncLabClient, role: str, campaign: Campaign, ended: str) -> CampaignRun:
        """One run as the server holds it: its record (as JSON), requests and results."""
        name = campaign.spec.name
        record = (await operator.campaign(name)).model_dump(mode="json")
        requests = await operator.list_requests(campaign=name)
        results = await operator.list_results(campaign=name)
        run = CampaignRun(campaign, role, record, requests, results, ended)
        run.tenants = await operator.tenants()
        return run


async def _raise_first_failure(tasks: list[asyncio.Task], when: str) -> None:
    """Wait for ``tasks`` (``asyncio.FIRST_COMPLETED`` or ``FIRST_EXCEPTION``); re-raise the first failure."""
    done, _ = await asyncio.wait(tasks, return_when=when)
    for task in done:
        failure = task.exception()
        if failure is not None:
            raise failure


async def _stop(operator: AsyncLabClient, daemon: OptimizerDaemon, campaign: Campaign) -> None:
    """Stop a run: its campaign marked stopped on the server (the dashboard shows why it ended), its daemon shut.

    A campaign that has just finished stays finished (the server refuses to move a final status)."""
    try:
        await operator.put_campaign(campaign.spec.name, campaign.spec.model_dump(mode="json"), "stopped")
    except Conflict as exc:
        log.info("campaign %s not stopped: %s", campaign.spec.name, exc)
    daemon.shutdown()


async def _exists(client: AsyncLabClient, name: str) -> bool:
    try:
        await client.campaign(name)
        return True
    except NotFound:
        return False


def run_demo(options: DemoOptions, board: StatusBoard,
             after: Callable[[DemoResult], None] | None = None) -> DemoResult:
    """Run the demo lab to the end.

    Args:
        options: what was asked for.
        board: the live status display.
        after: called with the result while the lab still runs (to write the report before
            ``keep_serving`` waits).

    Returns:
        The result (the lab is stopped by then).

    Raises:
        DemoError: if no campaign can run here or the lab fails.
        KeyError: for an unknown campaign key.
    """
    options.out.mkdir(parents=True, exist_ok=True)
    campaigns, left_out = select(options.campaigns, options.budget, options.seed, lab_tenants.unavailable)
    for reason in left_out:
        board.note(f"left out: {reason}")
    if not campaigns:
        raise DemoError("no campaign can run on this installation:\n" + "\n".join(left_out))
    database_url = options.database_url or fresh_sqlite(options.out)
    result = DemoResult(options, campaigns, left_out=left_out, database_url=database_url)
    lab = DemoLab(options, campaigns, board)
    started = time.perf_counter()
    try:
        result.server_url = lab.start_server(database_url)
        board.note(f"server on {result.server_url} (database {database_url}); logs in {lab.logs}")
        result.runs = asyncio.run(lab.run())
        result.left_out += list(lab.failures.values())
        if not result.runs:
            raise DemoError("every campaign failed:\n" + "\n".join(lab.failures.values()))
        result.seconds = time.perf_counter() - started
        if after is not None:
            after(result)
        if options.keep_serving:
            board.serving(result.server_url, *OPERATOR)
            _wait_for_interrupt()
            board.note("stopping the lab")
    finally:
        lab.close()
    return result


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log.info("interrupted: stopping the lab")
