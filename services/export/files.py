"""A campaign frame written as CSV, Parquet or JSON, and read back."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

Format = Literal["csv", "parquet", "json"]
FORMATS: tuple[Format, ...] = ("csv", "parquet", "json")
#: The media type of each format, as an RO-Crate names a file's encoding.
MEDIA_TYPES: dict[Format, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
                                  "json": "application/json"}


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding several kinds of value (a categorical parameter's choices may mix text and numbers) as
    text, which Parquet needs (a column has one type); other columns are left as they are."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            kinds = {type(v) for v in out[column] if v is not None and not (isinstance(v, float) and pd.isna(v))}
            if len(kinds) > 1:
                out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out


def write_frame(frame: pd.DataFrame, path: Path, fmt: Format) -> Path:
    """Write ``frame`` to ``path`` as ``fmt`` (timestamps as ISO 8601 in UTC in CSV and JSON).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = _flat(frame)
    if fmt == "csv":
        flat.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
    elif fmt == "parquet":
        flat.to_parquet(path, index=False)
    else:
        flat.to_json(path, orient="records", date_format="iso", date_unit="us", indent=1)
    return path


def read_frame(path: Path, fmt: Format) -> pd.DataFrame:
    """A frame written by :func:`write_frame` (timestamps as UTC datetimes again)."""
    from .frame import TIME_COLUMNS

    if fmt == "csv":
        frame = pd.read_csv(path)
    elif fmt == "parquet":
        frame = pd.read_parquet(path)
    elif fmt == "json":
        frame = pd.read_json(path, orient="records", convert_dates=False)
    else:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    for column in TIME_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame
