"""``labweave relabel``: compute small cells with LDA and PBE through the lab's DFT requests, against experiment."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import typer

from .common import fail


def relabel(
    cells: list[str] = typer.Argument(..., help="element symbols (their ground-state cell) or structure files "
                                                "ASE reads (every frame; at most 10 atoms each)"),
    xc: list[str] = typer.Option(["LDA", "PBE"], "--xc", help="functionals (repeatable)"),
    cutoff: float | None = typer.Option(None, "--cutoff", help="plane-wave cutoff, eV (the tenant's default if unset)"),
    kpoint_density: float | None = typer.Option(None, "--kpoint-density", help="k-points per 1/A"),
    smearing: float | None = typer.Option(None, "--smearing", help="Fermi-Dirac width, eV"),
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="LABWEAVE_SERVER_URL", help="server URL"),
    user: str | None = typer.Option(None, "--user", envvar="LABWEAVE_USER", help="a requester bound to a tenant"),
    password: str | None = typer.Option(None, "--password", envvar="LABWEAVE_PASSWORD", help="its password"),
    embedded: Path | None = typer.Option(None, "--embedded", help="start a lab of its own in this folder "
                                                                  "(server, fresh SQLite, DFT tenants)"),
    tenants: int = typer.Option(1, "--tenants", min=1, max=16, help="--embedded: DFT tenant processes"),
    timeout: float = typer.Option(3600.0, "--timeout", min=1.0, help="seconds to wait for every result"),
    out: Path | None = typer.Option(None, "--out", help="write every result (JSON) here"),
) -> None:
    """Compute CELLS with each functional through the lab and report a0 and B against experiment."""
    from labweave.services.client import AsyncLabClient
    from labweave.services.client.errors import LabweaveError
    from labweave.services.relabel import check_small, element_cell, embedded_lab, read_cells, relabel, report

    chosen = []
    try:
        for text in cells:
            path = Path(text)
            chosen.extend(read_cells(path) if path.exists() else [element_cell(text)])
        check_small(chosen)
    except ValueError as exc:
        fail(str(exc))
    settings = {k: v for k, v in {"cutoff": cutoff, "kpoint_density": kpoint_density, "smearing": smearing}.items()
                if v is not None}
    if embedded is None and not (user and password):
        fail("give --user and --password of a requester (or LABWEAVE_USER/LABWEAVE_PASSWORD), or --embedded FOLDER")

    async def against(url: str, name: str, secret: str, tenant: str | None):
        async with AsyncLabClient(url, name, secret) as client:
            if tenant is None:
                tenant = (await client.me()).tenant_uuid
            return await relabel(client, tenant, chosen, xc, settings, timeout)

    async def main():
        if embedded is not None:
            async with embedded_lab(embedded, tenants) as (url, name, secret, tenant):
                return await against(url, name, secret, tenant)
        assert user and password
        return await against(server, user, password, None)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: an embedded lab's server and tenants are stopped on the way out

    signal.signal(signal.SIGTERM, interrupted)
    try:
        computed = asyncio.run(main())
    except LabweaveError as exc:
        fail(str(exc))
    typer.echo(report(computed))
    if out is not None:
        out.write_text(json.dumps([{"cell": c.cell.name, "xc": c.xc, "request": c.request_uuid, "data": c.data,
                                    "error": c.error} for c in computed], indent=1) + "\n")
    if any(c.data is None for c in computed):
        raise typer.Exit(1)
