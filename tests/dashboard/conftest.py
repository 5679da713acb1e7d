"""Fixtures of the dashboard tests: a seeded lab, a real server process, headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboard_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, SeededLab
from labweave.services.server.process import ServerProcess
from tests.server.helpers import open_lab, two_flow_tenants


@pytest.fixture
def seeded(tmp_path):
    """A lab with the FINALES2 fixtures, users op/alice/asab/asab2 and a campaign, served on a loopback port."""
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    lab = open_lab(url)
    two_flow_tenants(lab)
    tenants = dict(lab.tenants)
    lab.lab.close()
    server = ServerProcess(url, env={"LABWEAVE_PASSWORD_ROUNDS": "4", "LABWEAVE_CACHE_SECONDS": "0.5"},
                           log_path=tmp_path / "server.log")
    with server:
        yield SeededLab(url, server, tenants)


def _chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing (CI installs it: apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")


@pytest.fixture
def browser():
    # Per test, not per session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, which would break any later test of this worker that calls asyncio.run.
    """Headless Chromium driven by Playwright, for one test."""
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_page(browser, seeded):
    """Pages in fresh browser contexts (own cookies), closed at the end of the test."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=seeded.base)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()
