"""The octet82 data set of the SISSO study: 82 AB compounds, rocksalt vs zincblende.

The target ``dE`` is the DFT energy difference between the rocksalt and the
zincblende structure of each compound (eV); the primary features are atomic
properties of A and B (Ghiringhelli et al., Phys. Rev. Lett. 114, 105503
(2015); the SISSO++ tutorial data set).

Units follow the SISSO++ tutorial's data file, in pint's syntax: nuclear
charges ``Z`` carry their own unit, periods are dimensionless, the measured
atomic ionisation potentials and electron affinities (``IP``, ``EA``) are in
``eV_IP``, the Kohn-Sham orbital energies (``E_HOMO``, ``E_LUMO``) in ``eV`` and
all radii in ``angstrom``. ``nuc_charge`` and ``eV_IP`` are dimensions of their
own (:data:`OCTET82_DEFINITIONS`, added to the lab's unit registry when the
data is loaded). Keeping the two kinds of energy apart means SISSO never adds
an ionisation potential to an orbital eigenvalue: they are energies measured
against different references.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labweave.schemas.units import define_units

__all__ = ["OCTET82_DEFINITIONS", "OCTET82_UNITS", "OctetData", "load_octet82", "find_octet82"]

#: The data set's own kinds of quantity, as pint definitions.
OCTET82_DEFINITIONS = ("nuc_charge = [nuclear_charge]", "eV_IP = [ionisation_energy]")

OCTET82_UNITS: dict[str, str] = {
    "Z_A": "nuc_charge",
    "Z_B": "nuc_charge",
    "period_A": "",
    "period_B": "",
    "IP_A": "eV_IP",
    "IP_B": "eV_IP",
    "EA_A": "eV_IP",
    "EA_B": "eV_IP",
    "E_HOMO_A": "eV",
    "E_HOMO_B": "eV",
    "E_LUMO_A": "eV",
    "E_LUMO_B": "eV",
    "r_s_A": "angstrom",
    "r_s_B": "angstrom",
    "r_p_A": "angstrom",
    "r_p_B": "angstrom",
    "r_d_A": "angstrom",
    "r_d_B": "angstrom",
    "r_sigma": "angstrom",
    "r_pi": "angstrom",
}

_NOT_FEATURES = ("Material", "Class", "dE")
#: The clone this study runs from (its parent holds ``shared/``).
CLONE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class OctetData:
    """The octet82 table.

    Attributes:
        X: primary features, shape ``(82, 20)``.
        y: ``dE`` in eV, shape ``(82,)``.
        feature_names: the 20 primary feature names, in file order.
        units: unit text per feature name.
        materials: compound labels.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    units: dict[str, str]
    materials: list[str]


def find_octet82(path: str | os.PathLike | None = None) -> Path:
    """Locate ``octet82.csv``.

    Args:
        path: an explicit file path; if ``None``, look for ``shared/data/octet82.csv``
            beside the clone (``../shared``), then under the current directory and its parent.

    Returns:
        The path of the file.

    Raises:
        FileNotFoundError: naming the places searched.
    """
    if path is not None:
        candidate = Path(path)
        if not candidate.is_file():
            raise FileNotFoundError(f"octet82 path: no file at {candidate}")
        return candidate
    here = Path.cwd()
    bases = dict.fromkeys((CLONE.parent, here, here.parent))
    searched = [base / "shared" / "data" / "octet82.csv" for base in bases]
    for candidate in searched:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"octet82.csv not found; looked at {[str(p) for p in searched]}")


def load_octet82(path: str | os.PathLike | None = None) -> OctetData:
    """Read ``octet82.csv``.

    Args:
        path: the file, or ``None`` to search as :func:`find_octet82` does.

    Returns:
        The data set.

    Raises:
        ValueError: if a required column is missing or a value is not a number.
    """
    file = find_octet82(path)
    with open(file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"octet82: {file} has no rows")
    header = list(rows[0])
    missing = [name for name in list(OCTET82_UNITS) + ["Material", "dE"] if name not in header]
    if missing:
        raise ValueError(f"octet82: columns missing from {file}: {missing}")
    names = [name for name in header if name not in _NOT_FEATURES]
    try:
        X = np.array([[float(row[name]) for name in names] for row in rows])
        y = np.array([float(row["dE"]) for row in rows])
    except ValueError as error:
        raise ValueError(f"octet82: non-numeric value in {file}: {error}") from error
    define_units(*OCTET82_DEFINITIONS)
    units = {name: OCTET82_UNITS.get(name, "") for name in names}
    return OctetData(X, y, names, units, [row["Material"] for row in rows])
