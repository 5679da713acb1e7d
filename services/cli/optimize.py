"""``labweave optimize CAMPAIGN.toml``: run a campaign's optimizer daemon."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Optional

import typer

from .common import fail, secret


def optimize(
    campaign_file: Path = typer.Argument(..., help="the campaign's TOML file"),
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="LABWEAVE_SERVER_URL", help="server URL"),
    user: str = typer.Option(..., "--user", envvar="LABWEAVE_USER", help="a requester bound to a tenant"),
    password: Optional[str] = typer.Option(None, "--password", envvar="LABWEAVE_PASSWORD", help="its password"),
    password_file: Optional[Path] = typer.Option(
        None, "--password-file", envvar="LABWEAVE_PASSWORD_FILE", help="a file holding its password (a secret)",
    ),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="poll interval in seconds"),
) -> None:
    """Propose, post and learn until the campaign's budget or stopping rule; restartable at any time."""
    from labweave.optimizer.campaign import Campaign, CampaignFileError
    from labweave.services.client import AsyncLabClient
    from labweave.services.client.errors import LabweaveError
    from labweave.services.optimizer_daemon import OptimizerDaemon

    login = secret(password, password_file, "--password")
    try:
        campaign = Campaign.from_file(campaign_file)
    except (CampaignFileError, OSError) as exc:
        fail(str(exc))
    try:
        # Built before anything is posted: a strategy refuses a campaign it cannot run here (a SISSO
        # feature space too large for memory, a pool outside the space), naming the setting.
        strategy = campaign.make_strategy()
    except ValueError as exc:
        fail(f"{campaign_file}: the {campaign.spec.strategy.name} strategy refuses this campaign: {exc}")

    async def main() -> str:
        async with AsyncLabClient(server, user, login) as client:
            daemon = OptimizerDaemon(client, campaign, poll_seconds=poll, strategy=strategy)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, daemon.shutdown)
            return await daemon.run()

    try:
        typer.echo(asyncio.run(main()))
    except LabweaveError as exc:
        fail(str(exc))
