"""A small lab run as a user runs it, for fault injection: ``labweave serve`` on a SQLite file,
``labweave tenant run pld`` and ``labweave optimize CAMPAIGN.toml``, each a real process that a
test can kill. What every fault must leave intact is checked by ``audit``; the faults themselves are
made by ``storage``, ``link`` and ``requester``.

The accounts and the PLD chamber's registration are made once per session with the CLI
(``labweave capability add``, ``tenant add``, ``user add``) and copied into each test's database.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from labweave.services.server.process import ServerProcess, free_port
from labweave.services.tenant.catalog import build

from ..lab_processes import wait_for as shared_wait_for

ACCOUNTS = {"chamber": "chamber-pw", "alice": "alice-pw"}
#: The shipped PLD campaign, cut down: random draws, no approval, a small budget, shorter growths.
SHIPPED_CAMPAIGN = resources.files("labweave.optimizer") / "campaigns" / "pld.toml"


def small_campaign(name: str, budget: int, batch_size: int, pulses: tuple[int, int]) -> str:
    """The text of ``optimizer/campaigns/pld.toml`` with these changes (each must apply)."""
    text = SHIPPED_CAMPAIGN.read_text()
    changes = [
        (r'^name = ".*"$', f'name = "{name}"'),
        (r"^batch_size = \d+$", f"batch_size = {batch_size}"),
        (r"^initial_design = \d+$", f"initial_design = {budget}"),
        (r"^budget = \d+$", f"budget = {budget}"),
        (r"^requires_approval = true$", "requires_approval = false"),
        (r'(name = "pulses"\n)lower = \d+\nupper = \d+', f"\\g<1>lower = {pulses[0]}\nupper = {pulses[1]}"),
        (r"(?s)^\[strategy\]\n.*?(?=^\[stopping\])", '[strategy]\nname = "random"\nsettings = { seed = 11 }\n\n'),
    ]
    for pattern, replacement in changes:
        text, n = re.subn(pattern, replacement, text, count=1, flags=re.M)
        assert n == 1, f"{SHIPPED_CAMPAIGN} no longer has {pattern!r}"
    return text


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run ``labweave ARGS`` to its end; its standard output."""
    done = subprocess.run([sys.executable, "-m", "labweave.services.cli.main", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"labweave {' '.join(args)}: {done.stderr}"
    return done.stdout


def seed_template(folder: Path) -> tuple[Path, dict[str, str]]:
    """A database with the PLD chamber's capability, its tenant, a requesters' tenant and their users,
    made with the CLI as an operator would; returns it and the tenants' UUIDs by name."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "template.db"
    env = {"LABWEAVE_DATABASE_URL": f"sqlite:///{db}", "LABWEAVE_PASSWORD_ROUNDS": "4"}
    chamber = build("pld")
    (folder / "pld-capability.json").write_text(json.dumps(chamber.capabilities()[0]))
    (folder / "chamber.json").write_text(json.dumps({"name": "chamber", "limitations": chamber.limitations(),
                                                     "contact_person": "faults"}))
    (folder / "requesters.json").write_text(json.dumps({"name": "requesters", "limitations": [],
                                                        "contact_person": "faults"}))
    cli("capability", "add", str(folder / "pld-capability.json"), env=env)
    out = cli("tenant", "add", str(folder / "chamber.json"), str(folder / "requesters.json"), env=env)
    tenants = {name: uuid for uuid, name in (line.split(maxsplit=1) for line in out.splitlines() if line.strip())}
    assert set(tenants) == {"chamber", "requesters"}, out
    cli("user", "add", "chamber", "--password", ACCOUNTS["chamber"], "--role", "tenant", "--tenant",
        tenants["chamber"], env=env)
    cli("user", "add", "alice", "--password", ACCOUNTS["alice"], "--role", "requester", "--tenant",
        tenants["requesters"], env=env)
    return db, tenants


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included), readable by its owner only."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


#: The shared wait, looking a little more often (the faults' states can be short).
wait_for = functools.partial(shared_wait_for, every=0.2)


@dataclass
class Daemon:
    """A ``labweave`` daemon process and its log."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as an operator stops it; its exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.log_path.name} ---\n{self.text()[-chars:]}"


@dataclass
class FaultLab:
    """One test's lab: its database, server, daemons and logs under ``root``."""

    root: Path
    template: Path
    tenants: dict[str, str]
    db_path: Path
    server_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    server: ServerProcess | None = None
    daemons: list[Daemon] = field(default_factory=list)
    _runs: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        copy_database(self.template, self.db_path)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- processes ---------------------------------------------------------------------
    def start_server(self) -> ServerProcess:
        self._runs["server"] += 1
        env = {"LABWEAVE_PASSWORD_ROUNDS": "4"} | self.server_env
        self.server = ServerProcess(self.database_url, port=self.port, env=env,
                                    log_path=self.root / f"server-{self._runs['server']}.log").start(timeout=90)
        return self.server

    def kill_server(self) -> None:
        assert self.server and self.server.proc
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(30)

    def _spawn(self, name: str, args: list[str], user: str, server_url: str | None) -> Daemon:
        self._runs[name] += 1
        log_path = self.root / f"{name}-{self._runs[name]}.log"
        env = {**os.environ, "LABWEAVE_SERVER_URL": server_url or self.url, "LABWEAVE_USER": user,
               "LABWEAVE_PASSWORD": ACCOUNTS[user], "LABWEAVE_LOG_LEVEL": "INFO"}
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "labweave.services.cli.main", *args], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        daemon = Daemon(name, proc, log_path)
        self.daemons.append(daemon)
        return daemon

    def tenant(self, *, lease: float = 60.0, server_url: str | None = None) -> Daemon:
        """``labweave tenant run pld`` as the chamber's user; the same state folder (its outbox) each time."""
        return self._spawn("tenant", ["tenant", "run", "pld", "--state-dir", str(self.root / "chamber"),
                                      "--poll", "0.3", "--lease", str(lease)], "chamber", server_url)

    def optimizer(self, campaign: str) -> Daemon:
        """``labweave optimize`` of the campaign file written by :meth:`launch`."""
        return self._spawn("optimizer", ["optimize", str(self.root / f"{campaign}.toml"), "--poll", "0.3"], "alice",
                           None)

    def launch(self, campaign: str, *, budget: int = 6, batch_size: int = 2, pulses: tuple[int, int] = (300, 700),
               lease: float = 60.0, tenant_url: str | None = None) -> tuple[Daemon, Daemon]:
        """The server, the chamber's daemon and the optimizer of a small copy of the shipped PLD campaign
        (each growth takes about a second), started as a user starts them."""
        (self.root / f"{campaign}.toml").write_text(small_campaign(campaign, budget, batch_size, pulses))
        self.start_server()
        return self.tenant(lease=lease, server_url=tenant_url), self.optimizer(campaign)

    def wait_under_way(self, campaign: str, resolved: int = 2, *also: Callable[[], Any]) -> None:
        wait_for(lambda: self.count(campaign, "resolved") >= resolved and all(f() for f in also), 90,
                 f"{resolved} growths of {campaign} resolved")

    def close(self) -> None:
        for daemon in self.daemons:
            if daemon.alive():
                daemon.proc.kill()
                daemon.proc.wait(30)
        if self.server:
            self.server.stop()

    def logs(self, name: str) -> str:
        return "\n".join(d.text() for d in self.daemons if d.name == name)

    # -- the database, read directly -----------------------------------------------------
    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()

    def campaign_requests(self, campaign: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM request WHERE campaign = ? ORDER BY id", campaign)

    def count(self, campaign: str, *statuses: str) -> int:
        marks = ",".join("?" * len(statuses))
        return self.query(f"SELECT count(*) FROM request WHERE campaign = ? AND status IN ({marks})",
                          campaign, *statuses)[0][0]

    def wait_finished(self, optimizer: Daemon, timeout: float) -> str:
        """Wait for the optimizer to end the campaign by itself; its answer."""
        try:
            code = optimizer.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the campaign did not finish within {timeout:g} s\n"
                                 + self.tail_all()) from None
        assert code == 0, self.tail_all()
        return optimizer.text()

    def wait_all_ended(self, timeout: float) -> None:
        wait_for(lambda: not self.query("SELECT uuid FROM request WHERE status NOT IN "
                                        "('resolved', 'failed', 'retracted', 'unsolicited')"),
                 timeout, "every request resolved, failed or retracted")

    def tail_all(self) -> str:
        parts = [d.tail() for d in self.daemons]
        parts += [f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.root.glob("server-*.log"))]
        return "\n".join(parts)
