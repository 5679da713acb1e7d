"""A real Dask scheduler per test, its workers started by the test."""

from __future__ import annotations

import pytest

from .dask_processes import DaskCluster


@pytest.fixture
def dask_cluster(tmp_path):
    cluster = DaskCluster(tmp_path / "dask").start()
    try:
        yield cluster
    finally:
        cluster.stop()
