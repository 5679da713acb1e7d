"""compose.yaml and the Dockerfile read as a container engine reads them, for the tests that keep them true.

No engine runs here: the commands are parsed by the real command-line parsers (labweave's typer
app, Dask's click commands) without being run, the settings are checked against the settings
class, and the routes against the app's.
"""

from __future__ import annotations

import importlib
import re
import shlex
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import typer
import yaml

from ..conftest import REPO

COMPOSE = REPO / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
CADDYFILE = REPO / "deploy" / "Caddyfile"
#: Where compose mounts a service's secrets.
SECRETS = "/run/secrets/"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML's safe loader resolves anchors and `<<` merges


def labweave_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the image built from this repository."""
    return {name: s for name, s in doc["services"].items() if s.get("build") == "."}


@dataclass
class Parsed:
    """A command line as its program's parser read it."""

    program: str
    path: list[str]  # the sub-commands, e.g. ["tenant", "run"]
    params: dict[str, Any]  # every parameter's value
    contexts: list[click.Context]

    def envvars(self) -> set[str]:
        """The environment variables the parsed commands' options read."""
        names: set[str] = set()
        for ctx in self.contexts:
            for param in ctx.command.params:
                envvar = getattr(param, "envvar", None)
                if isinstance(envvar, str):
                    names.add(envvar)
                elif envvar:
                    names.update(envvar)
        return names


def console_script(program: str):
    """The function an installed console script ``program`` runs."""
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == program]
    return ep.load()


def root_command(program: str) -> Any:
    if program == "labweave":
        from labweave.services.cli.main import app

        return typer.main.get_command(app)
    raise ValueError(program)


def parse(argv: list[str]) -> Parsed:
    """Parse ``argv`` (``labweave ...`` or ``dask SUBCOMMAND ...``) with the program's own parser; a
    :class:`click.UsageError` (an unknown option, a missing argument, a bad value) if it refuses."""
    try:
        return _parse(argv)
    except Exception as exc:  # typer carries its own copy of click: its UsageError is another class
        if any(cls.__name__ == "UsageError" for cls in type(exc).__mro__) and not isinstance(exc, click.UsageError):
            raise click.UsageError(exc.format_message()) from exc  # type: ignore[attr-defined]
        raise


def _parse(argv: list[str]) -> Parsed:
    program, args = argv[0], list(argv[1:])
    console_script(program)  # the executable exists in this environment
    if program == "dask":  # dask's command finds its sub-commands as entry points of `dask_cli`
        sub, *rest = args
        found = [e for e in entry_points(group="dask_cli") if e.name == sub]
        if not found:
            raise click.UsageError(f"dask has no command {sub!r}")
        command = found[0].load()
        ctx = command.make_context(f"dask {sub}", rest)
        return Parsed(program, [sub], dict(ctx.params), [ctx])
    command = root_command(program)
    ctx = command.make_context(program, args)
    contexts, path, params = [ctx], [], dict(ctx.params)
    while hasattr(command, "resolve_command"):  # a group (typer's own or click's)
        rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        if not rest:
            raise click.UsageError(f"{' '.join([program, *path])}: a command is missing")
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
        contexts.append(ctx)
        path.append(name)
        params.update(ctx.params)
    return Parsed(program, path, params, contexts)


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def exec_form(arguments: str) -> list[str]:
    """A CMD or ENTRYPOINT in exec form (a JSON list)."""
    import json

    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def module_reads(module: str, name: str) -> bool:
    """Whether ``module``'s source names the environment variable ``name``."""
    source = Path(importlib.import_module(module).__file__ or "").read_text()
    return re.search(rf"[\"']{re.escape(name)}[\"']", source) is not None


def split_shell(text: str) -> list[str]:
    return shlex.split(text)
