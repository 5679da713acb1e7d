"""``labweave capability add`` and ``labweave tenant add``: FINALES2's JSON files as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from labweave.schemas.capability import Capability
from labweave.schemas.tenant import TenantDefinition
from labweave.services.server.errors import ServiceError
from labweave.services.server.registry import Registry

from . import tenant_run
from .common import database, fail, read_json

capability_app = typer.Typer(help="Capabilities: what quantities which methods give.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants: instruments and codes serving requests.", no_args_is_help=True)


def _model(model, data, path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{path}: {'.'.join(str(p) for p in first['loc']) or 'file'}: {first['msg']}")


def _files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        out.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    return out


@capability_app.command("add")
def add_capability(files: list[Path] = typer.Argument(..., help="capability JSON files or folders of them")) -> None:
    """Register capabilities from FINALES2 capability files (serialized_quantities/...)."""
    registry = Registry(database())
    for path in _files(files):
        cap = _model(Capability, read_json(path), path)
        try:
            registry.add_capability(cap, "cli")
        except ServiceError as exc:
            fail(f"{path}: {exc.message}")
        typer.echo(f"capability {cap.quantity}/{cap.method}")


@tenant_app.command("add")
def add_tenant(
    files: list[Path] = typer.Argument(..., help="tenant JSON files (FINALES2's examples/tenants/...)"),
    uuid: Optional[str] = typer.Option(None, "--uuid", help="register with this tenant UUID (one file only)"),
) -> None:
    """Register tenants from FINALES2 tenant files; prints each tenant's UUID."""
    paths = _files(files)
    if uuid and len(paths) != 1:
        fail("--uuid needs exactly one tenant file")
    registry = Registry(database())
    for path in paths:
        data = read_json(path)
        definition = _model(TenantDefinition, data, path)
        if uuid:
            definition.tenant_uuid = uuid
        try:
            row = registry.add_tenant(definition, "cli")
        except ServiceError as exc:
            fail(f"{path}: {exc.message}")
        typer.echo(f"{row.uuid} {row.name}")


tenant_app.command("run")(tenant_run.run)
tenant_app.command("backends")(tenant_run.backends)
