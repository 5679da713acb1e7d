"""Fixtures of the fault-injection tests: a seeded database made once, a lab per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from .lab import FaultLab, seed_template


@pytest.fixture(scope="session")
def lab_template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    return seed_template(tmp_path_factory.mktemp("fault-template"))


@pytest.fixture
def make_lab(lab_template, tmp_path):
    """``make_lab(server_env=..., db_path=...)``: a lab in this test's folder, its processes ended after."""
    labs: list[FaultLab] = []

    def make(server_env: dict[str, str] | None = None, db_path: Path | None = None) -> FaultLab:
        template, tenants = lab_template
        lab = FaultLab(tmp_path, template, tenants, db_path or tmp_path / "labweave.db", server_env or {})
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()
