"""A tomato job's data: the NetCDF file the job writes when it ends, read back with xarray.

tomato stores a job's data as one ``xarray.DataTree`` in NetCDF (HDF5, read with h5netcdf): one group per
component role, each a dataset over the ``uts`` coordinate (Unix timestamps) with a variable per
measured quantity (``units`` in its attributes); the root's attributes hold the tomato version and the
job (``tomato_Job``, JSON).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr


class JobDataError(ValueError):
    """The job's file is missing or not what tomato writes."""


@dataclass
class JobData:
    """A finished job's data.

    Attributes:
        groups: by component role, its dataset (loaded into memory).
        tomato_version: the tomato that wrote it.
        job: the job's record as tomato stored it.
    """

    groups: dict[str, xr.Dataset]
    tomato_version: str | None
    job: dict[str, Any]


def read_job_data(path: Path) -> JobData:
    """Read a job's NetCDF file.

    Raises:
        JobDataError: no such file, or not a tomato data tree.
    """
    if not path.is_file():
        raise JobDataError(f"tomato wrote no data file at {path}")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            groups = {node.name: node.to_dataset().load() for node in tree.children.values()}
            attrs = dict(tree.attrs)
    except (OSError, ValueError) as exc:
        raise JobDataError(f"{path} is not a tomato data file: {exc}") from None
    job_text = attrs.get("tomato_Job")
    try:
        job = json.loads(job_text) if isinstance(job_text, str) else {}
    except json.JSONDecodeError:
        job = {}
    return JobData({str(k): v for k, v in groups.items()}, attrs.get("tomato_version"), job)


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def summarise(data: JobData) -> dict[str, dict[str, dict[str, Any]]]:
    """By role and variable: its units, the number of points, first, last, least, greatest and mean value
    (numbers), or the number of points and the last value (text)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for role, ds in sorted(data.groups.items()):
        variables: dict[str, dict[str, Any]] = {}
        for name, var in sorted(ds.data_vars.items()):
            values = np.asarray(var.values).ravel()
            entry: dict[str, Any] = {"units": var.attrs.get("units"), "n": int(values.size)}
            if values.size and np.issubdtype(values.dtype, np.number):
                numbers = values.astype(float)
                entry |= {"first": _number(numbers[0]), "last": _number(numbers[-1]),
                          "min": _number(np.nanmin(numbers)), "max": _number(np.nanmax(numbers)),
                          "mean": _number(np.nanmean(numbers))}
            elif values.size:
                entry["last"] = str(values[-1])
            variables[str(name)] = entry
        out[role] = variables
    return out
