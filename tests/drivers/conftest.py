"""Fixtures of the battery-line driver tests: FINALES2 fixtures and a cell shelf."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import shared_path

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")


class Finales2Fixtures:
    """FINALES2's capability definitions and example bodies (the compatibility fixtures)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def load(self, relative: str):
        return json.loads((self.directory / relative).read_text())

    def example_parameters(self, quantity: str, method: str) -> dict:
        """The parameters of FINALES2's example request for a quantity and method."""
        return self.load(f"examples/requests/{quantity}/{method}.json")["parameters"][method]

    def input_schema(self, quantity: str, method: str) -> dict:
        return self.load(f"serialized_quantities/{quantity}/{method}.json")["json_schema_specifications"]

    def output_schema(self, quantity: str, method: str) -> dict:
        return self.load(f"serialized_quantities/{quantity}/{method}.json")["json_schema_result_output"]


@pytest.fixture(scope="session")
def finales2() -> Finales2Fixtures:
    return Finales2Fixtures(shared_path("finales2"))


@pytest.fixture
def shelf_dir(tmp_path: Path) -> Path:
    """An empty cell shelf directory."""
    path = tmp_path / "shelf"
    path.mkdir()
    return path
