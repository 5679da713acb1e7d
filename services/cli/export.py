"""``labweave export CAMPAIGN``: a campaign's requests, results, provenance and predictions as a table
(CSV, Parquet or JSON), and optionally as an RO-Crate."""

from __future__ import annotations

import asyncio
from enum import Enum
from pathlib import Path

import typer

from .common import fail


class ExportFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


def export(
    campaign: str = typer.Argument(..., help="the campaign's name"),
    fmt: ExportFormat = typer.Option(ExportFormat.csv, "--format", "-f", help="the table's format"),
    out: Path | None = typer.Option(None, "--out", "-o", help="the table's file (default: CAMPAIGN.FORMAT)"),
    crate: Path | None = typer.Option(None, "--crate", help="also pack the campaign as an RO-Crate in this "
                                      "folder (or this zip file, if it ends in .zip)"),
    license_id: str | None = typer.Option(None, "--license", help="URL of the data's licence, for the crate"),
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="LABWEAVE_SERVER_URL", help="server URL"),
    user: str = typer.Option(..., "--user", envvar="LABWEAVE_USER", help="a user who may read the campaign"),
    password: str = typer.Option(..., "--password", envvar="LABWEAVE_PASSWORD", help="its password"),
) -> None:
    """Write a campaign as a table, one row per request (its columns: see the README), and as an RO-Crate."""
    from labweave.services.client import AsyncLabClient
    from labweave.services.client.errors import LabweaveError, NotFound
    from labweave.services.export.bundle import CampaignData
    from labweave.services.export.crate import pack_crate
    from labweave.services.export.files import write_frame

    async def fetch() -> CampaignData:
        async with AsyncLabClient(server, user, password) as client:
            return await client.campaign_data(campaign)

    try:
        data = asyncio.run(fetch())
    except NotFound:
        fail(f"no campaign named {campaign!r} on {server}")
    except LabweaveError as exc:
        fail(str(exc))
    frame = data.frame()
    table = out or Path(f"{campaign}.{fmt.value}")
    try:
        write_frame(frame, table, fmt.value)
        typer.echo(f"{table}: {len(frame)} requests, {len(frame.columns)} columns")
        if crate is not None:
            pack_crate(data, crate, license_id=license_id, zip_file=crate.suffix == ".zip")
            typer.echo(f"{crate}: RO-Crate of campaign {campaign}")
    except OSError as exc:
        fail(f"cannot write: {exc}")
