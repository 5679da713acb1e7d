"""``labweave capability add`` and ``labweave tenant add``: FINALES2's JSON files as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from labweave.schemas.capability import Capability
from labweave.schemas.tenant import TenantDefinition
from sqlmodel import Session, col, select

from labweave.services.server.auth import add_user
from labweave.services.server.db.tables import Tenant
from labweave.services.server.errors import ServiceError
from labweave.services.server.registry import Registry

from . import tenant_run
from .common import database, fail, read_json, secret, settings

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


@tenant_app.command("provision")
def provision(
    instruments: list[str] = typer.Argument(
        None, help="instruments the tenant runs (pld, emt, chgnet, robot, cycler); none for a requesters' tenant",
    ),
    name: str = typer.Option(..., "--name", help="the tenant's name (provisioning it again updates it)"),
    user: str = typer.Option(..., "--user", help="its user, made or reset"),
    password: Optional[str] = typer.Option(None, "--password", help="the user's password"),
    password_file: Optional[Path] = typer.Option(None, "--password-file", help="a file holding the user's password"),
    role: str = typer.Option("tenant", "--role", help="the user's role: tenant (runs the instruments) or requester"),
) -> None:
    """Register the instruments' capabilities, a tenant NAME offering them and its user, in one step;
    run again, it brings them up to date (the same tenant UUID, the password reset)."""
    from labweave.services.tenant.catalog import build

    if role not in ("tenant", "requester"):
        fail(f"--role must be tenant or requester, not {role!r}")
    login = secret(password, password_file, "--password")
    built = []
    for instrument in instruments or []:
        try:
            built.append(build(instrument))
        except ValueError as exc:
            fail(str(exc))
    s = settings()
    db = database(s)
    registry = Registry(db)
    try:
        for inst in built:
            for cap in inst.capabilities():
                registry.add_capability(Capability.model_validate(cap), "cli")
        with Session(db.read) as session:
            existing = session.exec(select(Tenant.uuid).where(Tenant.name == name).order_by(col(Tenant.created))).first()
        definition = TenantDefinition(name=name, contact_person="labweave tenant provision", tenant_uuid=existing,
                                      limitations=[e for inst in built for e in inst.limitations()])
        row = registry.add_tenant(definition, "cli")
        add_user(db, user, login, role, row.uuid, s.password_rounds)
    except ServiceError as exc:
        fail(exc.message)
    typer.echo(f"{row.uuid} {row.name}: user {user} ({role})")


def _tenant_named(registry: Registry, name: str) -> str:
    """The UUID of the tenant called ``name`` (or with that UUID)."""
    tenants = registry.catalogue().tenants
    if name in tenants:
        return name
    found = [uuid for uuid, t in tenants.items() if t.name == name]
    if len(found) == 1:
        return found[0]
    if found:
        fail(f"{len(found)} tenants are called {name!r}; give the UUID of one: {', '.join(found)}")
    fail(f"no tenant {name!r}; registered: {', '.join(sorted(t.name for t in tenants.values())) or 'none'}")


@tenant_app.command("estop")
def estop(name: str = typer.Argument(..., help="the tenant's name or UUID")) -> None:
    """Emergency stop of a tenant: its runtime brings its instruments to their safe state and fails its work."""
    registry = Registry(database())
    row = registry.request_stop(_tenant_named(registry, name), "cli")
    typer.echo(f"{row.uuid} {row.name}: emergency stop requested; it holds until `labweave tenant reset`")


@tenant_app.command("reset")
def reset(name: str = typer.Argument(..., help="the tenant's name or UUID")) -> None:
    """Reset a tenant's emergency stop (an operator's, or one made at the instrument): it claims again."""
    registry = Registry(database())
    row = registry.clear_stop(_tenant_named(registry, name), "cli")
    typer.echo(f"{row.uuid} {row.name}: emergency stop reset")


tenant_app.command("run")(tenant_run.run)
tenant_app.command("backends")(tenant_run.backends)
tenant_app.command("outbox")(tenant_run.outbox)
