"""Relabelling small cells with several functionals through the lab's requests.

``labweave relabel`` takes small cells (elements in their ground-state
structure, or any file ASE reads: extxyz, CIF, POSCAR; at most
:data:`~labweave.schemas.atomistic.DFT_MAX_ATOMS` atoms each), posts one
``bulk_properties`` request by ``dft`` per cell and functional, waits for the
lab's DFT tenants to compute them, and reports each functional's lattice
constant and bulk modulus against experiment for the elements with a measured
value (:mod:`labweave.drivers.atomistic.experiment`). With ``--embedded`` it
starts a lab of its own for the run (a server on a fresh SQLite database and
``--tenants`` DFT tenant processes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.build import bulk

from labweave.drivers.atomistic.experiment import FCC_METALS, SOURCE
from labweave.schemas.atomistic import DFT_MAX_ATOMS, ELEMENTS
from labweave.services.client import AsyncLabClient

log = logging.getLogger(__name__)

QUANTITY = "bulk_properties"
METHOD = "dft"
#: The requester account an embedded lab makes for the run.
REQUESTER = "relabel"


@dataclass(frozen=True)
class Cell:
    """A small cell to compute: a name for the report and the atoms."""

    name: str
    atoms: Atoms

    @property
    def element(self) -> str | None:
        """The element, when the cell holds one element only."""
        symbols = set(self.atoms.get_chemical_symbols())
        return next(iter(symbols)) if len(symbols) == 1 else None


def element_cell(symbol: str) -> Cell:
    """An element's ground-state primitive cell, at its measured lattice constant where one is tabled.

    Raises:
        ValueError: not a chemical symbol, or no crystalline ground state known to ASE.
    """
    if symbol not in ELEMENTS:
        raise ValueError(f"{symbol!r} is not a chemical symbol")
    measured = FCC_METALS.get(symbol)
    try:
        atoms = bulk(symbol, "fcc", a=measured.lattice_constant) if measured else bulk(symbol)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{symbol}: no ground-state crystal to start from ({exc}); give a structure file") from None
    return Cell(symbol, atoms)


def read_cells(path: Path) -> list[Cell]:
    """Every frame of a structure file as a cell.

    Raises:
        ValueError: the file cannot be read, or a frame is not periodic.
    """
    from ase.io import read

    try:
        frames = read(path, index=":")
    except Exception as exc:  # ASE raises many kinds for an unreadable file
        raise ValueError(f"{path}: cannot read structures ({type(exc).__name__}: {exc})") from None
    frames = frames if isinstance(frames, list) else [frames]
    cells = []
    for i, atoms in enumerate(frames):
        if not all(atoms.pbc):
            raise ValueError(f"{path} frame {i}: bulk properties need a cell periodic in all three directions")
        cells.append(Cell(f"{path.name}[{i}] {atoms.get_chemical_formula()}", atoms))
    return cells


def check_small(cells: Sequence[Cell]) -> None:
    """Refuse cells too large for DFT here.

    Raises:
        ValueError: naming the first cell with more than :data:`DFT_MAX_ATOMS` atoms.
    """
    for cell in cells:
        if len(cell.atoms) > DFT_MAX_ATOMS:
            raise ValueError(f"{cell.name}: {len(cell.atoms)} atoms; relabelling takes cells of at most "
                             f"{DFT_MAX_ATOMS}")


def parameters(cell: Cell, xc: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``dft`` parameters of one cell and functional."""
    atoms = cell.atoms
    return {"structure": {"cell": atoms.cell.tolist(), "positions": atoms.positions.tolist(),
                          "symbols": atoms.get_chemical_symbols()}, "xc": xc, **settings}


@dataclass
class Computed:
    """One cell by one functional: the result's data, or why there is none."""

    cell: Cell
    xc: str
    request_uuid: str
    data: dict[str, Any] | None = None
    error: str | None = None


async def relabel(client: AsyncLabClient, tenant_uuid: str | None, cells: Sequence[Cell], functionals: Sequence[str],
                  settings: Mapping[str, Any], timeout: float, poll: float = 2.0) -> list[Computed]:
    """Post a request per cell and functional and wait for every one to end.

    Args:
        client: a requester's client.
        tenant_uuid: the tenant the requester acts for.
        cells: the cells.
        functionals: ``LDA``, ``PBE``...
        settings: further ``dft`` parameters (cutoff, kpoint_density, smearing).
        timeout: seconds to wait for all of them.
        poll: seconds between checks.

    Returns:
        One entry per request, with its data or its failure.
    """
    posted = []
    for cell in cells:
        for xc in functionals:
            body = {"quantity": QUANTITY, "methods": [METHOD], "parameters": {METHOD: parameters(cell, xc, settings)}}
            if tenant_uuid:
                body["tenant_uuid"] = tenant_uuid
            posted.append(Computed(cell, xc, await client.post_request(body)))
    deadline = time.monotonic() + timeout
    waiting = list(posted)
    while waiting:
        for item in list(waiting):
            detail = await client.request(item.request_uuid)
            if detail.status == "resolved":
                info = await client.result_for_request(item.request_uuid)
                item.data = info.result.data if info is not None else None
                waiting.remove(item)
            elif detail.status in ("failed", "retracted"):
                history = await client.history(item.request_uuid)
                item.error = history[-1].message if history else detail.status
                waiting.remove(item)
        if waiting:
            if time.monotonic() > deadline:
                for item in waiting:
                    item.error = f"not computed within {timeout:.0f} s"
                break
            await asyncio.sleep(poll)
    return posted


def _pct(value: float, reference: float) -> str:
    return f"{100.0 * (value - reference) / reference:+.1f}%"


def report(computed: Sequence[Computed]) -> str:
    """The table: per cell and functional a0, B (against experiment where tabled), CPU time."""
    lines = [f"{'cell':<24} {'xc':<4} {'a0 (A)':>7} {'exp':>5} {'dev':>6}  {'B (GPa)':>7} {'exp':>6} {'dev':>7}"
             f"  {'CPU s':>6}  mesh"]
    for item in computed:
        if item.data is None:
            lines.append(f"{item.cell.name:<24} {item.xc:<4} failed: {item.error}")
            continue
        a, b = item.data["lattice_constant"], item.data["bulk_modulus"]
        measured = FCC_METALS.get(item.cell.element or "")
        if measured is not None:
            exp = (f"{measured.lattice_constant:5.2f} {_pct(a, measured.lattice_constant):>6}  {b:7.1f} "
                   f"{measured.bulk_modulus:6.1f} {_pct(b, measured.bulk_modulus):>7}")
        else:
            exp = f"{'':5} {'':6}  {b:7.1f} {'':6} {'':7}"
        mesh = "x".join(str(n) for n in item.data.get("dft", {}).get("kpoints", []))
        lines.append(f"{item.cell.name:<24} {item.xc:<4} {a:7.3f} {exp}  {item.data['cost_cpu_seconds']:6.1f}  {mesh}")
    elements = {i.cell.element for i in computed if i.data is not None and i.cell.element in FCC_METALS}
    if elements:
        lines.append(f"experiment (room temperature): {SOURCE}")
    by_xc: dict[str, list[tuple[float, float]]] = {}
    for item in computed:
        measured = FCC_METALS.get(item.cell.element or "")
        if item.data is not None and measured is not None:
            by_xc.setdefault(item.xc, []).append(
                (item.data["lattice_constant"] / measured.lattice_constant - 1.0,
                 item.data["bulk_modulus"] / measured.bulk_modulus - 1.0))
    for xc, pairs in by_xc.items():
        da = sum(p[0] for p in pairs) / len(pairs)
        db = sum(p[1] for p in pairs) / len(pairs)
        lines.append(f"{xc}: mean deviation from experiment over {len(pairs)} elements: a0 {100 * da:+.1f}%, "
                     f"B {100 * db:+.1f}%")
    return "\n".join(lines)


@asynccontextmanager
async def embedded_lab(folder: Path, tenants: int = 1) -> AsyncIterator[tuple[str, str, str, str]]:
    """A lab for one run: a server on a fresh SQLite database in ``folder`` and ``tenants`` DFT tenants.

    Yields:
        The server's URL, a requester's user name and password, and its tenant's UUID.
    """
    from labweave.services.demo import tenants as lab_tenants
    from labweave.services.demo.lab import fresh_sqlite, prepare_database
    from labweave.services.server.process import ServerProcess

    folder.mkdir(parents=True, exist_ok=True)
    url = fresh_sqlite(folder)
    await asyncio.to_thread(prepare_database, url)
    server = ServerProcess(url, log_path=folder / "server.log").start()
    processes: list[lab_tenants.TenantProcess] = []
    try:
        async with AsyncLabClient(server.url, "operator", "operator") as operator:
            wanted = [lab_tenants.DemoTenant(f"dft-{i + 1}", "GPAW plane-wave DFT", ("dft",))
                      for i in range(tenants)]
            credentials = await lab_tenants.provision(operator, wanted, folder / "lab", 0)
            for tenant in wanted:
                processes.append(lab_tenants.TenantProcess(
                    tenant, server.url, credentials[tenant.name], folder / "lab", 0,
                    folder / f"{tenant.name}.log").start())
            uuid = (await operator.register_tenant(
                {"name": REQUESTER, "limitations": [], "contact_person": "labweave relabel"})).tenant_uuid
            password = secrets.token_urlsafe(12)
            await operator.add_user(REQUESTER, password, "requester", uuid)
        yield server.url, REQUESTER, password, uuid
    finally:
        for process in processes:
            process.stop()
        server.stop()
