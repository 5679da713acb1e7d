"""A campaign as a pandas DataFrame: one row per request, with its provenance, its result and the
campaign's objectives read from that result.

The columns, in order (``P``, ``O`` stand for the campaign's parameter and objective names):

* the request: ``request_uuid``, ``campaign``, ``status``, ``quantity``, ``methods`` (comma-separated),
  ``priority``, ``created``, ``updated`` (UTC timestamps), ``created_by``, ``owner_tenant_uuid``,
  ``owner_tenant`` (its name), ``attempts``, ``lease_expiries``, ``failure_reason``, ``parameters``
  (the request's parameters as JSON text);
* its provenance from the optimizer: ``param.P`` (the point), ``strategy``, ``model_version``,
  ``reason``, ``acquisition_value``, ``fidelity``, ``mlip_model`` (the fine-tuned MLIP that informed the
  proposal, in a campaign whose MLIP learns; empty: the pretrained one, or none), ``predicted_mean.O``, ``predicted_std.O``, and for a
  strategy with a symbolic model (``sisso``) ``leading_formula`` (the equation most members agreed on when
  the request was made) and ``leading_formula_members`` (how many of the ensemble's members);
* its result (the newest one not deleted): ``result_uuid``, ``result_status``, ``result_method``,
  ``result_tenant_uuid``, ``result_tenant``, ``result_time``, ``objective.O`` (and
  ``constraint.C`` for outcome constraints, read with the campaign's own paths; empty where the result
  does not hold them), ``result_data`` (the result's data as JSON text).

Nested values stay JSON text so that every column is flat and every format (CSV, Parquet, JSON) can
hold the frame without loss of a row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import ValidationError

from labweave.schemas.api import CampaignRecord, RequestDetail
from labweave.schemas.campaign import CampaignSpec, read_quantity
from labweave.schemas.core import ResultInfo, ResultStatus

#: The columns every campaign frame has, in order (the campaign's own columns are put among them).
REQUEST_COLUMNS = ["request_uuid", "campaign", "status", "quantity", "methods", "priority", "created", "updated",
                   "created_by", "owner_tenant_uuid", "owner_tenant", "attempts", "lease_expiries",
                   "failure_reason", "parameters"]
PROVENANCE_COLUMNS = ["strategy", "model_version", "reason", "acquisition_value", "fidelity", "mlip_model"]
#: Columns of the leading symbolic formula, present when a request of the campaign carries formulas.
FORMULA_COLUMNS = ["leading_formula", "leading_formula_members"]
RESULT_COLUMNS = ["result_uuid", "result_status", "result_method", "result_tenant_uuid", "result_tenant",
                  "result_time"]
TIME_COLUMNS = ("created", "updated", "result_time")


def campaign_spec(record: CampaignRecord) -> CampaignSpec | None:
    """The record's spec as a campaign definition, or None where it is not one (the server stores any object)."""
    try:
        return CampaignSpec.model_validate(record.spec)
    except ValidationError:
        return None


def latest_results(results: Sequence[ResultInfo]) -> dict[str, ResultInfo]:
    """By request, its newest result that is not deleted (an amended result replaces the original)."""
    out: dict[str, ResultInfo] = {}
    for info in sorted(results, key=lambda r: r.ctime):
        if info.status is not ResultStatus.DELETED and info.result.request_uuid:
            out[info.result.request_uuid] = info
    return out


def campaign_frame(record: CampaignRecord, requests: Sequence[RequestDetail], results: Sequence[ResultInfo],
                   tenant_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The campaign's requests, provenance, results and objectives as one frame (columns: see the module).

    Args:
        record: the campaign's record (its spec names the parameters and objectives).
        requests: the campaign's requests, any order (the frame is in creation order).
        results: their results (others are ignored).
        tenant_names: tenant uuid -> name, for the ``*_tenant`` columns.
    """
    names = dict(tenant_names or {})
    spec = campaign_spec(record)
    parameter_names = [p.name for p in spec.space.parameters] if spec else []
    objectives = list(spec.objectives) if spec else []
    constraints = list(spec.outcome_constraints) if spec else []
    by_request = latest_results(results)
    rows = []
    for req in sorted(requests, key=lambda r: r.ctime):
        prov = req.provenance
        raw_point = prov.get("parameters")
        point: dict[str, Any] = raw_point if isinstance(raw_point, dict) else {}
        for name in point:
            if name not in parameter_names:
                parameter_names.append(name)
        row: dict[str, Any] = {
            "request_uuid": req.uuid, "campaign": req.campaign or record.name, "status": req.status.value,
            "quantity": req.request.quantity, "methods": ",".join(req.request.methods), "priority": req.priority,
            "created": req.ctime, "updated": req.updated, "created_by": req.created_by,
            "owner_tenant_uuid": req.owner_tenant_uuid, "owner_tenant": names.get(req.owner_tenant_uuid or ""),
            "attempts": req.attempts, "lease_expiries": req.lease_expiries, "failure_reason": req.failure_reason,
            "parameters": json.dumps(req.request.parameters, sort_keys=True),
        }
        row |= {f"param.{name}": value for name, value in point.items()}
        row |= {key: prov.get(key) for key in PROVENANCE_COLUMNS}
        for kind in ("predicted_mean", "predicted_std"):
            values = prov.get(kind)
            if isinstance(values, dict):
                row |= {f"{kind}.{name}": value for name, value in values.items()}
        formulas = prov.get("formulas")
        if isinstance(formulas, list) and formulas and isinstance(formulas[0], dict):
            row |= {"leading_formula": formulas[0].get("formula"),
                    "leading_formula_members": f"{formulas[0].get('members')}/{formulas[0].get('of')}"}
        info = by_request.get(req.uuid)
        if info is not None:
            res = info.result
            row |= {"result_uuid": info.uuid, "result_status": info.status.value, "result_method": res.method[0],
                    "result_tenant_uuid": res.tenant_uuid, "result_tenant": names.get(res.tenant_uuid),
                    "result_time": info.ctime, "result_data": json.dumps(res.data, sort_keys=True)}
            for quantity, prefix in [(o, "objective") for o in objectives] + [(c, "constraint") for c in constraints]:
                try:
                    row[f"{prefix}.{quantity.name}"] = read_quantity(res.data, quantity)
                except ValueError:
                    row[f"{prefix}.{quantity.name}"] = math.nan  # a failed measurement holds no value
        rows.append(row)
    predicted = sorted({k for row in rows for k in row if k.startswith(("predicted_mean.", "predicted_std."))})
    symbolic = FORMULA_COLUMNS if any("leading_formula" in row for row in rows) else []
    columns = (REQUEST_COLUMNS + [f"param.{n}" for n in parameter_names] + PROVENANCE_COLUMNS + predicted
               + symbolic + RESULT_COLUMNS + [f"objective.{o.name}" for o in objectives]
               + [f"constraint.{c.name}" for c in constraints] + ["result_data"])
    frame = pd.DataFrame(rows, columns=columns)
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in columns:
        if column.startswith(("objective.", "constraint.", "predicted_", "acquisition_value")):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
