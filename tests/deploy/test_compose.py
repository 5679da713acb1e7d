"""compose.yaml, the Dockerfile and the Caddyfile cannot rot: every command, option, environment
variable, secret, route, mount and upstream they name is one that labweave, Dask and the settings
really accept (parsed by the real parsers, not run). A test below also shows the checks fail."""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import click
import dask.config
import pytest
from fastapi.testclient import TestClient

from labweave.optimizer.campaign import Campaign
from labweave.services.server.app import create_app
from labweave.services.server.config import Settings

from ..conftest import REPO
from .compose_file import (
    CADDYFILE, DOCKERFILE, SECRETS, compose, console_script, dockerfile_stages, exec_form, labweave_services,
    module_reads, parse,
)

DOC = compose()
SERVICES = labweave_services(DOC)
#: Variables of a labweave process that are not settings or options: who reads each.
PROCESS_VARIABLES = {
    "FORWARDED_ALLOW_IPS": ("uvicorn.config", ("serve",)),  # uvicorn, run by `labweave serve`
}


def command_of(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    assert isinstance(command, list), f"{name}: write the command as a list (exec form)"
    return command


@functools.cache
def answers(path: str) -> int:
    """The status a fresh server (on a throwaway database) answers to ``GET path``."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(database_url=f"sqlite:///{folder}/routes.db", secret_key="k" * 40))
        with TestClient(app) as client:
            return client.get(path).status_code


def secret_paths(value: str) -> list[str]:
    return re.findall(rf"{re.escape(SECRETS)}([\w.-]+)", value)


def with_secret_files(values: dict[str, str], folder: Path) -> dict[str, str]:
    """``values`` with each /run/secrets/NAME replaced by a file holding a sample secret."""
    out = {}
    for key, value in values.items():
        for name in secret_paths(value):
            sample = folder / name
            sample.write_text("x" * 48 + "\n")
            value = value.replace(SECRETS + name, str(sample))
        out[key] = value
    return out


def check_environment(service: str, environment: dict[str, Any], parsed, folder: Path, monkeypatch) -> None:
    """Every variable is read: a setting (its value valid), an option of the command, or a variable
    a part of the process reads."""
    env = {k: str(v) for k, v in (environment or {}).items()}
    if parsed.program == "dask":
        config = dask.config.collect_env(env)  # DASK_A__B=... -> {"a": {"b": ...}}
        assert all(k.startswith("DASK_") for k in env), f"{service}: {sorted(env)}"

        def walk(tree: dict, path: list[str]) -> None:
            for key, value in tree.items():
                if isinstance(value, dict):
                    walk(value, [*path, key])
                else:
                    dotted = ".".join([*path, key])
                    assert dask.config.get(dotted, default=KeyError) is not KeyError, \
                        f"{service}: {dotted} is not a Dask setting"

        walk(config, [])
        return
    options = parsed.envvars()
    settings: dict[str, str] = {}
    for key in env:
        if key in options:
            continue
        if key in PROCESS_VARIABLES:
            module, commands = PROCESS_VARIABLES[key]
            assert module_reads(module, key), f"{module} no longer reads {key}"
            assert commands is None or parsed.path[0] in commands, f"{service}: {key} is read only by {commands}"
            continue
        field = key.removeprefix("LABWEAVE_").lower()
        assert key.startswith("LABWEAVE_") and field in Settings.model_fields, \
            f"{service}: {key} is neither a setting, nor an option of `{' '.join(parsed.path)}`, nor read by the process"
        settings[key] = env[key]
    for key in list(Settings.model_fields):
        monkeypatch.delenv(f"LABWEAVE_{key.upper()}", raising=False)
    for key, value in with_secret_files(settings, folder).items():
        monkeypatch.setenv(key, value)
    Settings()  # the values are valid (a password file is read, a URL is one the server opens)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_command_is_one_the_program_accepts_with_its_environment(service, tmp_path, monkeypatch):
    spec = SERVICES[service]
    environment = spec.get("environment") or {}
    for key in list(environment):  # options read from the environment resolve as in the container
        monkeypatch.setenv(key, str(environment[key]))
    parsed = parse(command_of(service))
    check_environment(service, environment, parsed, tmp_path, monkeypatch)

    # every secret named (in the command or environment) is given to the service and defined
    named = set(secret_paths(" ".join(command_of(service)) + " " + " ".join(map(str, environment.values()))))
    given = set(spec.get("secrets", []))
    assert named <= given, f"{service} reads secrets it is not given: {sorted(named - given)}"
    assert given <= set(DOC["secrets"]), f"{service}: undefined secrets {sorted(given - set(DOC['secrets']))}"
    # no secret written into the file: passwords and keys come only from files
    for key, value in environment.items():
        if re.search(r"PASSWORD|SECRET|KEY", key) and not key.endswith("_FILE"):
            pytest.fail(f"{service}: {key} holds a secret in compose.yaml; give it as a file")
    assert "--password" not in command_of(service), f"{service}: a password on the command line"


def test_every_dependency_and_one_shot_step_is_a_real_service():
    services = DOC["services"]
    for name, spec in services.items():
        for needed, how in (spec.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on {needed}, which is not a service"
            if how["condition"] == "service_completed_successfully":
                assert services[needed].get("restart") == "no", f"{needed} is a one-shot step: restart \"no\""
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits for {needed} to be healthy: it has no check"


def test_health_checks_ask_real_routes_on_the_port_served():
    checked = 0
    for name, spec in SERVICES.items():
        test = " ".join(spec.get("healthcheck", {}).get("test", []))
        for port, path in re.findall(r"http://127\.0\.0\.1:(\d+)(/[\w/.-]*)", test):
            parsed = parse(command_of(name))
            if parsed.program == "labweave":
                assert parsed.path == ["serve"] and parsed.params["port"] == int(port), name
                assert answers(path) == 200, f"{name}: {path} is not a route of the server that answers 200"
                assert path == "/healthz/ready", f"{name}: the check must ask readiness (a committed write)"
            else:  # the scheduler's HTTP server: its dashboard address, and the routes Dask serves there
                assert parsed.params["dashboard_address"].rsplit(":", 1)[-1] == port, name
                modules = dask.config.get("distributed.scheduler.http.routes")
                assert path == "/health" and "distributed.http.health" in modules, name
            checked += 1
    assert answers("/healthz/not-a-probe") == 404  # the check can fail
    servers = [n for n in SERVICES if parse(command_of(n)).path == ["serve"]]
    assert len(servers) >= 2, "two or more server replicas"
    assert all("healthcheck" in SERVICES[n] for n in servers)
    assert checked >= len(servers) + 1


def test_the_replicas_share_the_database_and_the_key_and_do_not_migrate_at_once():
    servers = {n: SERVICES[n]["environment"] for n in SERVICES if parse(command_of(n)).path == ["serve"]}
    first = next(iter(servers.values()))
    for name, env in servers.items():
        assert env["LABWEAVE_DATABASE_URL"].startswith("postgresql://"), name
        assert env["LABWEAVE_DATABASE_URL"] == first["LABWEAVE_DATABASE_URL"]
        assert env["LABWEAVE_SECRET_KEY_FILE"] == first["LABWEAVE_SECRET_KEY_FILE"]
        assert str(env["LABWEAVE_AUTO_MIGRATE"]).lower() == "false"
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert parse(command_of("migrate")).path == ["db", "upgrade"]
    db = DOC["services"]["db"]
    assert "POSTGRES_PASSWORD_FILE" in db["environment"] and "POSTGRES_PASSWORD" not in db["environment"]
    volume = db["volumes"][0].split(":")[0]
    assert volume in DOC["volumes"], "PostgreSQL keeps its data in a named volume"


def test_the_secrets_come_from_files_kept_out_of_git():
    ignored = (REPO / ".gitignore").read_text().split()
    assert "secrets/" in ignored
    assert "secrets" in (REPO / ".dockerignore").read_text().split()
    for name, spec in DOC["secrets"].items():
        assert spec["file"].startswith("./secrets/"), name


def test_tenants_run_what_was_provisioned_for_their_user_and_reach_the_proxy():
    provisioned: dict[str, set[str]] = {}
    for name in SERVICES:
        parsed = parse(command_of(name))
        if parsed.path == ["tenant", "provision"]:
            provisioned[parsed.params["user"]] = set(parsed.params["instruments"] or [])
    daemons = 0
    internal = caddy_sites()["internal"]
    for name in SERVICES:
        parsed = parse(command_of(name))
        if parsed.path == ["tenant", "run"] or parsed.path == ["optimize"]:
            daemons += 1
            user = parsed.params["user"]
            assert user in provisioned, f"{name}: no provision step makes user {user}"
            assert set(parsed.params.get("instruments") or []) <= provisioned[user], name
            assert parsed.params["server"] == f"http://proxy:{internal}", f"{name}: talk to the replicas through the proxy"
            assert parsed.params["password_file"] is not None
        if parsed.path == ["optimize"]:
            (mount,) = [v for v in SERVICES[name]["volumes"] if v.split(":")[1] == "/campaigns"]
            source = REPO / mount.split(":")[0]
            inside = Path(parsed.params["campaign_file"]).relative_to("/campaigns")
            Campaign.from_file(source / inside)  # the campaign file exists and is valid
    assert daemons >= 3


def caddy_sites() -> dict[str, Any]:
    text = CADDYFILE.read_text()
    upstreams = re.search(r"^\s*reverse_proxy\s+(.+?)\s*\{", text, re.M)
    internal = re.search(r"^http://:(\d+)\s*\{", text, re.M)
    health = re.search(r"^\s*health_uri\s+(\S+)", text, re.M)
    flush = re.search(r"^\s*flush_interval\s+(\S+)", text, re.M)
    assert upstreams and internal and health and flush, "the Caddyfile lost a part the tests read"
    return {"upstreams": upstreams.group(1).split(), "internal": int(internal.group(1)),
            "health": health.group(1), "flush": flush.group(1), "site": "{$LABWEAVE_SITE}" in text}


def test_the_proxy_balances_every_replica_and_passes_event_streams_through():
    caddy = caddy_sites()
    servers = {f"{n}:{parse(command_of(n)).params['port']}" for n in SERVICES if parse(command_of(n)).path == ["serve"]}
    assert set(caddy["upstreams"]) == servers
    assert caddy["health"] == "/healthz/ready" and answers(caddy["health"]) == 200
    assert caddy["flush"] == "-1", "server-sent events are passed on at once, never buffered"
    proxy = DOC["services"]["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert caddy["site"] and "LABWEAVE_SITE" in proxy["environment"]
    assert ":?" in proxy["environment"]["LABWEAVE_SITE"], "no default site: the operator chooses HTTPS or plain HTTP"


def test_the_dockerfile_is_multi_stage_non_root_torch_cpu_first_and_runs_labweave():
    stages = dockerfile_stages(DOCKERFILE.read_text())
    assert len(stages) >= 2, "multi-stage"
    runtime = stages[-1]
    users = [args for ins, args in runtime if ins == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime runs as an unprivileged user"
    build_runs = [args for ins, args in stages[0] if ins == "RUN"]
    torch = next(i for i, a in enumerate(build_runs) if "torch==2.13.0" in a)
    assert "--index-url https://download.pytorch.org/whl/cpu" in build_runs[torch]
    project = next(i for i, a in enumerate(build_runs) if re.search(r"pip install .*--constraint \S+ \.(\s|$)", a))
    assert torch < project, "torch's CPU build is installed before the project"
    for ins, args in stages[0]:
        if ins == "COPY" and not args.startswith("--from"):
            *sources, _target = args.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert any(ins == "COPY" and args.startswith("--from=build") for ins, args in runtime)
    # a named volume a labweave service writes to is a directory the image gives its user
    user = users[-1].split(":")[0]
    made = " ".join(a for ins, a in runtime if ins == "RUN")
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            if not source.startswith(".") and not volume.endswith(":ro"):
                assert re.search(rf"install -d -o {user} .*{re.escape(target)}(\s|$)", made), \
                    f"{name}: {target} is not made for {user} in the image"
    (cmd,) = [exec_form(args) for ins, args in runtime if ins == "CMD"]
    assert not [a for ins, a in runtime if ins == "ENTRYPOINT"], "compose gives each service its whole command"
    assert parse(cmd).path == ["serve"]
    assert console_script("labweave") and console_script("dask")
    # every program compose runs from the image is installed by the image (labweave, and dask by its dependencies)
    assert {c[0] for c in (command_of(n) for n in SERVICES)} == {"labweave", "dask"}


@pytest.mark.parametrize("argv, refused", [
    (["labweave", "serve", "--prot", "8000"], "No such option"),
    (["labweave", "tenant", "run", "emt", "--lease", "0"], "--lease"),
    (["labweave", "tenant", "provison", "emt"], "No such command"),
    (["dask", "worker", "tcp://s:8786", "--nthread", "1"], "No such option"),
    (["dask", "schedular"], "no command"),
])
def test_the_parsing_refuses_what_the_programs_refuse(argv, refused, monkeypatch):
    monkeypatch.setenv("LABWEAVE_USER", "u")
    with pytest.raises(click.UsageError, match=refused):
        parse(argv)


def test_the_environment_check_refuses_a_variable_nobody_reads(tmp_path, monkeypatch):
    parsed = parse(["labweave", "serve"])
    with pytest.raises(AssertionError, match="neither a setting"):
        check_environment("x", {"LABWEAVE_DATABASE_ULR": "postgresql://db/x"}, parsed, tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match="read only by"):
        check_environment("x", {"FORWARDED_ALLOW_IPS": "*"}, parse(["labweave", "db", "upgrade"]), tmp_path,
                          monkeypatch)
    with pytest.raises(Exception, match="lease_seconds"):
        check_environment("x", {"LABWEAVE_LEASE_SECONDS": "-1"}, parsed, tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match="not a Dask setting"):
        check_environment("x", {"DASK_DISTRIBUTED__SCHEDULER__ALOWED_FAILURES": "0"},
                          parse(["dask", "scheduler"]), tmp_path, monkeypatch)
