"""A process's settings are set once, at its start: importing labweave changes none, computing toggles none."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import threadpoolctl
import torch
from typer.testing import CliRunner

from labweave.drivers.atomistic.frontend import EmtSimulator
from labweave.optimizer.space import SearchSpace
from labweave.optimizer.strategies import get_strategy
from labweave.schemas.campaign import Objective
from labweave.services.cli.main import app
from labweave.services.process import THREAD_VARIABLES, configure_threads

IMPORT_EVERYTHING = """
import os, pkgutil, importlib, json
for library in ("torch", "pybamm", "botorch", "ase", "chgnet.model", "matplotlib", "pint"):  # theirs, not ours
    importlib.import_module(library)
before = dict(os.environ)
import torch
threads = torch.get_num_threads()
import labweave
names = [m.name for m in pkgutil.walk_packages(labweave.__path__, "labweave.")
         if not m.name.rsplit(".", 1)[-1].endswith("bench")]  # studies on their way out of the packages
for name in names:
    importlib.import_module(name)
changed = {k: os.environ.get(k) for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}
print(json.dumps({"modules": len(names), "changed": changed, "threads": [threads, torch.get_num_threads()]}))
"""


@pytest.mark.slow
def test_importing_every_module_changes_nothing_in_the_process():
    env = {k: v for k, v in os.environ.items() if k != "PYBAMM_DISABLE_TELEMETRY" and k not in THREAD_VARIABLES}
    env["CI"] = "1"  # PyBaMM then skips its telemetry prompt without being told to
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["modules"] > 100
    assert report["changed"] == {}
    assert report["threads"][0] == report["threads"][1]


def test_the_command_limits_threads_once_before_any_command():
    # numpy's BLAS, torch's OpenMP (not a BLAS built without threads, such as PyBaMM's solvers' OpenBLAS)
    loaded = {p["filepath"] for p in threadpoolctl.threadpool_info() if p.get("threading_layer") != "disabled"}
    assert loaded and torch.get_num_threads() == 1
    try:
        r = CliRunner().invoke(app, ["--threads", "2", "tenant", "backends"])
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == 2
        assert all(os.environ[variable] == "2" for variable in THREAD_VARIABLES)  # for what loads later
        assert {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["filepath"] in loaded} == {2}
    finally:
        configure_threads(1)
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="at least 1"):
        configure_threads(0)


@pytest.fixture
def toggles(monkeypatch) -> list[str]:
    """Every change of torch's or BLAS's thread count made by labweave's code (BoTorch limits BLAS to
    one thread around its own scipy calls, which is a no-op under the process's limit of one)."""
    seen: list[str] = []
    original = threadpoolctl.threadpool_limits.__init__

    def caller() -> str:
        return sys._getframe(2).f_globals.get("__name__", "")

    def limits(self, *args, **kwargs):
        if caller().startswith("labweave"):
            seen.append(f"{caller()}: threadpool_limits{args}{kwargs}")
        original(self, *args, **kwargs)

    def set_num_threads(n):
        if caller().startswith("labweave"):
            seen.append(f"{caller()}: torch.set_num_threads({n})")

    monkeypatch.setattr(threadpoolctl.threadpool_limits, "__init__", limits)
    monkeypatch.setattr(torch, "set_num_threads", set_num_threads)
    return seen


def test_a_proposal_leaves_the_threads_alone(toggles):
    space = SearchSpace.from_parameters([{"name": "x", "lower": 0.0, "upper": 1.0},
                                         {"name": "y", "lower": 0.0, "upper": 1.0}])
    strategy = get_strategy("bayesian", {"initial_design": 2, "num_restarts": 2, "raw_samples": 32, "maxiter": 20},
                            space=space, objectives=[Objective(name="f", path="f")])
    points = space.sample_points(4, seed=1)
    observations = [(p, {"f": -(p["x"] - 0.3) ** 2 - (p["y"] - 0.6) ** 2}) for p in points]
    (proposal,) = strategy.propose(observations)
    assert proposal.acquisition_value is not None  # the model was fitted and the acquisition optimised
    assert strategy.recommend(observations) is not None
    assert toggles == []


def test_a_calculation_leaves_the_threads_alone(toggles):
    result = asyncio.run(EmtSimulator().perform("bulk_properties", "emt",
                                                {"alloy": {"composition": {"Cu": 1.0}, "supercell": 1}}))
    assert result["lattice_constant"] == pytest.approx(3.59, abs=0.01)
    assert toggles == []
