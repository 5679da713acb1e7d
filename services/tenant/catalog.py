"""The instruments a tenant daemon can run, by name, each with a backend chosen by name.

An instrument's frontend (its operations, limits and policy) is labweave's and
listed here; its backend comes from the backend registry
(:mod:`labweave.drivers.registry`): the simulated one unless another is named,
from labweave or from any installed package. Heavy imports (PyBaMM, ASE,
CHGNet) happen only for the instruments and backends asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from labweave.drivers import registry
from labweave.drivers.base import BackendContext, Instrument

#: Catalogue names of the instruments and their frontend classes.
INSTRUMENTS: dict[str, str] = {
    "pld": "labweave.drivers.pld.frontend:PldChamber",
    "emt": "labweave.drivers.atomistic.frontend:EmtSimulator",
    "chgnet": "labweave.drivers.atomistic.frontend:ChgnetSimulator",
    "dft": "labweave.drivers.atomistic.frontend:DftSimulator",
    "robot": "labweave.drivers.coin_cell_robot.frontend:CoinCellRobot",
    "cycler": "labweave.drivers.cycler.frontend:Cycler",
    "tomato": "labweave.drivers.tomato.frontend:TomatoDevice",
}


def frontend(name: str) -> type[Instrument]:
    """The frontend class of a catalogue instrument.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    try:
        module, _, attribute = INSTRUMENTS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown instrument {name!r}; choose from {', '.join(sorted(INSTRUMENTS))}") from None
    return getattr(importlib.import_module(module), attribute)


def build(name: str, backend: str = registry.DEFAULT, seed: int = 0, state: Path | None = None,
          options: Mapping[str, object] | None = None) -> Instrument:
    """An instrument by name, driving the backend ``backend`` built with ``options``.

    Args:
        name: a key of :data:`INSTRUMENTS`.
        backend: a registered backend of it (``simulated`` by default).
        seed: seed of a simulated backend.
        state: the lab's folder on this machine (the simulated lab's cell shelf).
        options: the backend's options, checked by its settings model.

    Raises:
        ValueError: an unknown instrument or backend (listing the known ones), a
            bad option, or a backend that is not of the kind the frontend drives.
    """
    cls = frontend(name)
    built = registry.create(name, backend, options, BackendContext(seed=seed, state_dir=Path(state or "labweave-lab")))
    if not isinstance(built, cls.backend_type):
        raise ValueError(
            f"backend {name}.{backend} is a {type(built).__name__}, not a {cls.backend_type.__name__}: "
            f"the {name} cannot drive it"
        )
    return cls(built)


def workflow(client, cells: int = 2, cycles: int = 150) -> Instrument:
    """The degradation workflow tenant: it needs the client it posts sub-requests with."""
    from labweave.services.tenant.workflow import DegradationWorkflow

    return DegradationWorkflow(client, cells=cells, cycles=cycles)
