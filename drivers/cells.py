"""The simulated lab's cell shelf and its chemical catalogue.

A coin cell is a physical object: the assembly robot makes it, puts it on a
shelf, and the cycler later takes it from there. In the simulated lab the shelf
is a directory of JSON files, one :class:`CellRecord` per cell, written
atomically (a temporary file, then :func:`os.replace`), so that the simulated
robot and the simulated cycler may run in different processes and still hand
cells over. The record holds what the cell physically is: its electrolyte as
formulated, the electrolyte volume actually dispensed, the electrode loadings
and areas, how well the electrodes were aligned, how hard it was crimped, and
the defects assembly left in it (an internal short, a leak). Nothing in a
record is visible to the requester; it is what the cycler's physics reads.

A cell the shelf does not know (FINALES2's example request cycles "CELL-1")
gets a *stand-in*: a nominal CR2032 of the reference electrolyte whose small
cell-to-cell variations are seeded from its uuid, so the same uuid always
stands for the same cell (see :func:`stand_in_cell`). The cycler logs a
warning when it uses one.

The catalogue (:data:`CATALOGUE`) lists the chemicals the lab stocks, with the
molar masses and densities the robot needs to dose them and the cycler needs
to turn molar fractions into concentrations (densities at 25 °C, EC as the
supercooled liquid; Xu, Chem. Rev. 104, 4303 (2004), Table 1, and supplier
data for VC, FEC and LiPF6).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field

from labweave.schemas.battery import FormulationComponent, Location, StockedChemical

try:  # POSIX advisory locks serialise read-modify-write of one record across processes
    import fcntl

    HAVE_FLOCK = True
except ImportError:  # pragma: no cover - non-POSIX hosts fall back to atomic replace only
    HAVE_FLOCK = False

log = logging.getLogger(__name__)


# -- chemicals --------------------------------------------------------------


@dataclass(frozen=True)
class ChemicalProperties:
    """What the lab knows about one stocked chemical.

    Attributes:
        key: InChIKey.
        name: common abbreviation (EC, EMC, LiPF6...).
        smiles: SMILES as the lab writes it.
        molar_mass: g/mol.
        density: g/cm3 at 25 °C (of the pure liquid; of the crystal for a salt).
        role: ``salt``, ``solvent`` or ``additive``.
        family: ``cyclic`` or ``linear`` carbonate, or ``salt``.
        apparent_molar_volume: cm3/mol the chemical occupies in solution, if it
            differs from molar_mass / density (a dissolved salt).
    """

    key: str
    name: str
    smiles: str
    molar_mass: float
    density: float
    role: Literal["salt", "solvent", "additive"]
    family: Literal["cyclic", "linear", "salt"]
    apparent_molar_volume: float | None = None

    @property
    def molar_volume(self) -> float:
        """cm3 one mole occupies in an electrolyte (ideal mixing of the liquids)."""
        if self.apparent_molar_volume is not None:
            return self.apparent_molar_volume
        return self.molar_mass / self.density


#: The stocked chemicals by InChIKey. LiPF6 is given an apparent molar volume
#: in carbonates of about 55 cm3/mol, which makes a 1 M solution about
#: 0.1 g/cm3 denser than its solvent blend, as measured for EC/EMC blends.
CATALOGUE: dict[str, ChemicalProperties] = {
    c.key: c
    for c in (
        ChemicalProperties(
            StockedChemical.LIPF6.value, "LiPF6", "[Li+].F[P-](F)(F)(F)(F)F", 151.905, 1.50, "salt", "salt", 55.0
        ),
        ChemicalProperties(StockedChemical.EC.value, "EC", "C1COC(=O)O1", 88.06, 1.321, "solvent", "cyclic"),
        ChemicalProperties(StockedChemical.PC.value, "PC", "CC1COC(=O)O1", 102.09, 1.200, "solvent", "cyclic"),
        ChemicalProperties(StockedChemical.EMC.value, "EMC", "CCOC(=O)OC", 104.10, 1.006, "solvent", "linear"),
        ChemicalProperties(StockedChemical.DMC.value, "DMC", "COC(=O)OC", 90.08, 1.063, "solvent", "linear"),
        ChemicalProperties(StockedChemical.DEC.value, "DEC", "CCOC(=O)OCC", 118.13, 0.969, "solvent", "linear"),
        ChemicalProperties(StockedChemical.VC.value, "VC", "C1=COC(=O)O1", 86.05, 1.355, "additive", "cyclic"),
        ChemicalProperties(StockedChemical.FEC.value, "FEC", "C1C(OC(=O)O1)F", 106.05, 1.454, "additive", "cyclic"),
    )
}


def chemical(key: str) -> ChemicalProperties:
    """The catalogue entry of an InChIKey.

    Raises:
        KeyError: the lab does not stock it.
    """
    try:
        return CATALOGUE[str(getattr(key, "value", key))]
    except KeyError:
        raise KeyError(f"chemical {key} is not in the lab's catalogue") from None


def component(key: str, fraction: float) -> FormulationComponent:
    """A molar-fraction formulation component of a catalogue chemical."""
    props = chemical(key)
    return FormulationComponent.model_validate(
        {
            "chemical": {"SMILES": props.smiles, "InChIKey": props.key},
            "fraction": fraction,
            "fraction_type": "molPerMol",
        }
    )


def formulation_from_recipe(
    salt_molarity: float, solvent_mass_fractions: dict[str, float]
) -> list[FormulationComponent]:
    """Molar fractions of a LiPF6 electrolyte given as a lab recipe.

    Args:
        salt_molarity: LiPF6 concentration, mol/L of solution.
        solvent_mass_fractions: solvent name (EC, EMC...) to mass fraction of
            the solvent blend; normalised here.

    Returns:
        The formulation as molar fractions (salt first), rounded to 1e-6.
    """
    by_name = {c.name: c for c in CATALOGUE.values()}
    total = sum(solvent_mass_fractions.values())
    moles = {by_name[n].key: w / total / by_name[n].molar_mass for n, w in solvent_mass_fractions.items() if w > 0}
    # volume (cm3) of the blend per gram of solvent, then salt moles per gram of solvent
    solvent_volume = sum(n * chemical(k).molar_volume for k, n in moles.items())
    salt = chemical(StockedChemical.LIPF6.value)
    # c = n_s / (V_solv + n_s * v_s) * 1000  =>  n_s = c V / (1000 - c v_s)
    n_salt = salt_molarity * solvent_volume / (1000.0 - salt_molarity * salt.molar_volume)
    moles = {salt.key: n_salt, **moles}
    n_total = sum(moles.values())
    return [component(k, round(n / n_total, 6)) for k, n in moles.items()]


#: The reference electrolyte: 1.0 M LiPF6 in EC:EMC 3:7 (w/w), the common
#: "LP57"-type baseline for graphite/NMC cells.
REFERENCE_ELECTROLYTE: list[FormulationComponent] = formulation_from_recipe(1.0, {"EC": 3.0, "EMC": 7.0})


# -- the physical cell --------------------------------------------------------


class InternalShort(BaseModel):
    """A soft internal short: a parallel resistance that shrinks as it grows."""

    kind: Literal["short"] = "short"
    resistance_ohm: float = Field(gt=0, description="Short resistance when the cell is first cycled.")
    decay_per_cycle: float = Field(ge=0, lt=1, description="Fraction by which the resistance drops each cycle.")
    cause: str = Field(description="What assembly did wrong (misalignment, over-crimp, burr).")


class ElectrolyteLeak(BaseModel):
    """A leaking seal: electrolyte loss and moisture ingress speed up parasitic reactions."""

    kind: Literal["leak"] = "leak"
    severity: float = Field(gt=0, le=1, description="0 (seeping) to 1 (open seal).")
    cause: str = Field(description="What assembly did wrong (under-crimp, gasket).")


Defect = Annotated[InternalShort | ElectrolyteLeak, Field(discriminator="kind")]


class CellRecord(BaseModel):
    """A physical coin cell as it sits on the shelf."""

    uuid: str
    cell_name: str = "CR2032"
    batch_id: str
    assembled_by: str
    assembled_at: str
    electrolyte: list[FormulationComponent]
    electrolyte_uuid: str | None = None
    electrolyte_volume_ul: float = Field(gt=0, description="Electrolyte actually dispensed, microlitre.")
    nominal_electrolyte_volume_ul: float = Field(gt=0)
    cathode_loading_mah_cm2: float = Field(gt=0)
    anode_loading_mah_cm2: float = Field(gt=0)
    cathode_area_cm2: float = Field(gt=0)
    anode_area_cm2: float = Field(gt=0)
    cathode_material: str = "NMC811"
    anode_material: str = "graphite-SiOx"
    separator_material: str = "Celgard(R) 2325"
    separator_area_cm2: float = Field(gt=0, default=2.0096)
    alignment_offset_mm: float = Field(ge=0, description="Centre-to-centre offset of anode and cathode discs.")
    crimp_pressure_mpa: float = Field(gt=0)
    nominal_crimp_pressure_mpa: float = Field(gt=0)
    defects: list[Defect] = Field(default_factory=list)
    location: Location | None = None
    stand_in: bool = Field(default=False, description="True for a nominal cell standing in for one not on the shelf.")
    history: list[dict] = Field(default_factory=list, description="What happened to the cell since assembly.")

    def has_defect(self, kind: str) -> bool:
        return any(d.kind == kind for d in self.defects)

    @property
    def cycled(self) -> bool:
        return any(event.get("event") == "cycled" for event in self.history)


#: A CR2032 as the lab builds it by default: cathode Ø14 mm, anode Ø15 mm,
#: separator Ø16 mm (areas as FINALES2's example, pi taken as 3.14), 35 uL.
NOMINAL_BUILD = {
    "cathode_area_cm2": 1.5386,
    "anode_area_cm2": 1.7663,
    "separator_area_cm2": 2.0096,
    "cathode_loading_mah_cm2": 1.0,
    "anode_loading_mah_cm2": 1.1,
    "electrolyte_volume_ul": 35.0,
    "crimp_pressure_mpa": 6.9,
}


def _seed_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def stand_in_cell(uuid: str, electrolyte: list[FormulationComponent] | None = None) -> CellRecord:
    """A nominal cell standing in for a cell the shelf does not hold.

    Its variations (loading ±1.5 %, dispensed volume ±2 %, a sub-margin
    alignment offset, crimp ±2 %) are drawn from a generator seeded with the
    uuid, so a uuid always stands for the same cell. It has no defects.

    Args:
        uuid: the cell's identifier as requested.
        electrolyte: its electrolyte; the reference electrolyte if None.

    Returns:
        The stand-in record (not written to any shelf).
    """
    rng = np.random.default_rng(_seed_of(uuid))
    build = NOMINAL_BUILD
    return CellRecord(
        uuid=uuid,
        batch_id="stand-in",
        assembled_by="stand-in",
        assembled_at="1970-01-01T00:00:00+00:00",
        electrolyte=list(electrolyte or REFERENCE_ELECTROLYTE),
        electrolyte_volume_ul=build["electrolyte_volume_ul"] * (1 + 0.02 * rng.standard_normal()),
        nominal_electrolyte_volume_ul=build["electrolyte_volume_ul"],
        cathode_loading_mah_cm2=build["cathode_loading_mah_cm2"] * (1 + 0.015 * rng.standard_normal()),
        anode_loading_mah_cm2=build["anode_loading_mah_cm2"] * (1 + 0.015 * rng.standard_normal()),
        cathode_area_cm2=build["cathode_area_cm2"],
        anode_area_cm2=build["anode_area_cm2"],
        separator_area_cm2=build["separator_area_cm2"],
        alignment_offset_mm=float(np.hypot(*(0.08 * rng.standard_normal(2)))),
        crimp_pressure_mpa=build["crimp_pressure_mpa"] * (1 + 0.02 * rng.standard_normal()),
        nominal_crimp_pressure_mpa=build["crimp_pressure_mpa"],
        stand_in=True,
    )


# -- the shelf ------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CellShelf:
    """A directory of cell records shared by the robot and the cycler.

    Args:
        directory: where the records live; created if missing.
    """

    #: The shelf's folder in a lab's state folder (where the simulated robot and cycler meet).
    FOLDER = "cells"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def of_lab(cls, state_dir: str | os.PathLike) -> CellShelf:
        """The shelf of the lab whose state folder is ``state_dir``."""
        return cls(Path(state_dir) / cls.FOLDER)

    def _path(self, uuid: str) -> Path:
        name = uuid if _SAFE_NAME.fullmatch(uuid) else hashlib.sha256(uuid.encode()).hexdigest()
        return self.directory / f"{name}.json"

    def __contains__(self, uuid: str) -> bool:
        return self._path(uuid).exists()

    def get(self, uuid: str) -> CellRecord | None:
        """The record of a cell, or None if the shelf does not hold it."""
        path = self._path(uuid)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        record = CellRecord.model_validate_json(text)
        return record if record.uuid == uuid else None

    def put(self, record: CellRecord) -> Path:
        """Place a cell on the shelf (atomically replacing any earlier record)."""
        path = self._path(record.uuid)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(record.model_dump_json(indent=1))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        log.debug("shelf %s: stored cell %s", self.directory, record.uuid)
        return path

    def uuids(self) -> list[str]:
        """The uuids of every cell on the shelf."""
        out = []
        for path in sorted(self.directory.glob("*.json")):
            if path.name.startswith(".tmp-"):
                continue
            with contextlib.suppress(ValueError, OSError):
                out.append(json.loads(path.read_text())["uuid"])
        return out

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if not HAVE_FLOCK:
            yield
            return
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record_event(self, uuid: str, event: str, **details) -> CellRecord:
        """Append an event (``cycled``...) to a cell's history.

        Raises:
            KeyError: the shelf does not hold the cell.
        """
        with self._locked():
            record = self.get(uuid)
            if record is None:
                raise KeyError(f"cell {uuid} is not on the shelf")
            entry = {"event": event, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **details}
            record.history.append(entry)
            self.put(record)
            return record
