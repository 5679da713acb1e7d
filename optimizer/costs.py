"""What an evaluation costs, fitted from what evaluations measurably cost.

Every atomistic result records the CPU seconds it took (``cost_cpu_seconds``)
and its size: atoms and, for DFT, irreducible k-points. A :class:`CostModel`
fits, per method, a power law to those records by least squares on the logs,

    log t = c0 + c_atoms log n_atoms + c_k log n_k

(a term whose variable never varies in the records is left out: its exponent
is not identifiable and is reported as 0), and predicts the cost of the next
evaluation from its size. Plane-wave DFT grows roughly with the cube of the
atoms at fixed k-point density; a potential such as EMT linearly; the fit
says what this machine measured rather than what the textbook expects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class CostRecord(BaseModel):
    """One evaluation's measured cost and size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field(min_length=1)
    n_atoms: int = Field(ge=1)
    kpoints: int = Field(default=1, ge=1, description="Irreducible k-points (1 for methods without).")
    cpu_seconds: float = Field(gt=0)

    @classmethod
    def from_result(cls, data: Mapping[str, Any]) -> CostRecord:
        """The record of a ``bulk_properties`` result's data (any method)."""
        dft = data.get("dft") or {}
        return cls(method=str(data["method"]), n_atoms=int(data["n_atoms"]),
                   kpoints=int(dft.get("irreducible_kpoints", 1)), cpu_seconds=float(data["cost_cpu_seconds"]))


@dataclass(frozen=True)
class MethodCost:
    """The fitted power law of one method.

    Attributes:
        method: the method.
        log_scale: c0 (natural log of seconds).
        atoms_exponent: c_atoms (0 if the records never varied the atoms).
        kpoints_exponent: c_k (0 if they never varied the k-points).
        records: how many records it was fitted to.
        log_residual: RMS residual of the fit in log seconds (the factor exp(r) is its typical error).
    """

    method: str
    log_scale: float
    atoms_exponent: float
    kpoints_exponent: float
    records: int
    log_residual: float

    def seconds(self, n_atoms: int, kpoints: int = 1) -> float:
        """Predicted CPU seconds of one evaluation."""
        return math.exp(self.log_scale + self.atoms_exponent * math.log(n_atoms)
                        + self.kpoints_exponent * math.log(kpoints))


class CostModel:
    """Per-method power laws fitted to measured costs.

    Args:
        records: measured evaluations (at least one per method to be predicted).
    """

    def __init__(self, records: Iterable[CostRecord]) -> None:
        by_method: dict[str, list[CostRecord]] = {}
        for record in records:
            by_method.setdefault(record.method, []).append(record)
        self.methods: dict[str, MethodCost] = {m: _fit(m, rs) for m, rs in sorted(by_method.items())}

    def seconds(self, method: str, n_atoms: int, kpoints: int = 1) -> float:
        """Predicted CPU seconds of an evaluation by ``method``.

        Raises:
            KeyError: no record of that method, naming the methods measured.
        """
        try:
            fitted = self.methods[method]
        except KeyError:
            raise KeyError(f"no measured cost of {method!r} (measured: {', '.join(self.methods) or 'none'})") from None
        return fitted.seconds(n_atoms, kpoints)


def _fit(method: str, records: list[CostRecord]) -> MethodCost:
    t = np.log([r.cpu_seconds for r in records])
    columns = {"atoms": np.log([r.n_atoms for r in records]), "kpoints": np.log([r.kpoints for r in records])}
    varying = [name for name, x in columns.items() if np.ptp(x) > 0]
    design = np.column_stack([np.ones(len(records))] + [columns[name] for name in varying])
    if len(records) <= len(varying):  # too few to identify the exponents: the mean cost, no scaling
        varying, design = [], np.ones((len(records), 1))
    coef, *_ = np.linalg.lstsq(design, t, rcond=None)
    fitted = dict(zip(varying, coef[1:], strict=True))
    residual = float(np.sqrt(np.mean((design @ coef - t) ** 2)))
    return MethodCost(method, float(coef[0]), float(fitted.get("atoms", 0.0)), float(fitted.get("kpoints", 0.0)),
                      len(records), residual)
