"""A campaign packed as an RO-Crate 1.1: its files and a JSON-LD description of who ran what, when, with
which instrument and which strategy, so that it can be archived and shared.

The crate is built with ``rocrate`` (the RO-Crate community's Python library), which writes the
metadata descriptor and the root dataset in the 1.1 shape. Its content:

* ``campaign.json``: the campaign's record (spec, status, the optimizer daemon's state);
* ``requests.csv`` and ``requests.parquet``: the campaign frame (:mod:`.frame`);
* ``results/RESULT_UUID.json``: each result as the server holds it.

Contextual entities: the people who asked (``Person``), each tenant as the instrument it is
(``IndividualProduct``, as RO-Crate describes equipment) with its contact person, each strategy that
proposed (``SoftwareApplication``), each request (``CreativeWork``), and two ``CreateAction``s per
request: the proposal (agent: the requester, instrument: the strategy, result: the request) and the
measurement (agent: the tenant's contact person, instrument: the tenant, object: the request, result:
the result's file, with start and end time). The root dataset ``mentions`` every action.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.model.person import Person
from rocrate.model.softwareapplication import SoftwareApplication
from rocrate.rocrate import ROCrate

from labweave.schemas.core import RequestStatus

from .bundle import CampaignData
from .files import MEDIA_TYPES, Format, write_frame
from .frame import latest_results

#: The RO-Crate version the crates conform to.
RO_CRATE_VERSION = "1.1"
STATUS = {RequestStatus.RESOLVED: "CompletedActionStatus", RequestStatus.FAILED: "FailedActionStatus",
          RequestStatus.RESERVED: "ActiveActionStatus", RequestStatus.PENDING: "PotentialActionStatus",
          RequestStatus.PROPOSED: "PotentialActionStatus"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "unnamed"


def _ref(entity_id: str) -> dict[str, str]:
    return {"@id": entity_id}


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def pack_crate(data: CampaignData, out: Path, *, license_id: str | None = None, zip_file: bool = False) -> Path:
    """Write the campaign as an RO-Crate into the folder ``out`` (or the zip file ``out``).

    Args:
        data: the campaign as fetched from the server.
        out: the crate's folder (made if missing; files of the same names are replaced), or zip file.
        license_id: the URL of the data's licence (RO-Crate asks for one; labweave cannot choose it).
        zip_file: write one zip file instead of a folder.

    Returns:
        ``out``.
    """
    record = data.record
    names = data.tenant_names
    tenants = {t.tenant_uuid: t for t in data.tenants}
    crate = ROCrate(version=RO_CRATE_VERSION)
    crate.name = f"labweave campaign {record.name}"
    spec_text = record.spec.get("description") if isinstance(record.spec.get("description"), str) else ""
    crate.description = (spec_text or f"The requests, results and provenance of the labweave campaign "
                         f"{record.name!r}") + f" (status {record.status.value}, {len(data.requests)} requests)."
    crate.datePublished = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    root = crate.root_dataset
    root["identifier"] = record.name
    root["dateCreated"] = _time(record.created)
    root["dateModified"] = _time(record.updated)
    if license_id:
        root["license"] = crate.add(ContextEntity(crate, license_id, {"@type": "CreativeWork", "name": license_id}))

    people: dict[str, Person] = {}

    def person(name: str) -> Person:
        if name not in people:
            people[name] = crate.add(Person(crate, f"#person-{_slug(name)}", {"name": name}))
        return people[name]

    root["creator"] = person(record.created_by or "unknown")

    with tempfile.TemporaryDirectory(prefix="labweave-crate-") as staging:
        stage = Path(staging)
        (stage / "campaign.json").write_text(json.dumps(record.model_dump(mode="json"), indent=2), encoding="utf-8")
        crate.add_file(stage / "campaign.json", "campaign.json", properties={
            "name": "campaign record", "encodingFormat": "application/json",
            "description": "The campaign's spec (search space, objectives, strategy, budget), status and the "
                           "optimizer daemon's state."})
        frame = data.frame()
        formats: tuple[Format, ...] = ("csv", "parquet")
        for fmt in formats:
            path = write_frame(frame, stage / f"requests.{fmt}", fmt)
            crate.add_file(path, path.name, properties={
                "name": f"campaign frame ({fmt})", "encodingFormat": MEDIA_TYPES[fmt],
                "description": "One row per request: its parameters, provenance, result and objectives."})
        result_files: dict[str, str] = {}
        finished = latest_results(data.results)
        for request_uuid, done in finished.items():
            rel = f"results/{done.uuid}.json"
            (stage / "results").mkdir(exist_ok=True)
            (stage / rel).write_text(json.dumps(done.model_dump(mode="json"), indent=2), encoding="utf-8")
            crate.add_file(stage / rel, rel, properties={
                "name": f"result of request {request_uuid}", "encodingFormat": "application/json",
                "dateCreated": _time(done.ctime)})
            result_files[request_uuid] = rel

        instruments: dict[str, ContextEntity] = {}

        def instrument(tenant_uuid: str) -> ContextEntity:
            if tenant_uuid not in instruments:
                tenant = tenants.get(tenant_uuid)
                props: dict[str, Any] = {"@type": "IndividualProduct", "identifier": tenant_uuid,
                                         "name": names.get(tenant_uuid, f"tenant {tenant_uuid}")}
                if tenant is not None and tenant.contact_person:
                    props["manufacturer"] = person(tenant.contact_person)
                instruments[tenant_uuid] = crate.add(ContextEntity(crate, f"#tenant-{tenant_uuid}", props))
            return instruments[tenant_uuid]

        strategies: dict[str, SoftwareApplication] = {}

        def strategy(name: str) -> SoftwareApplication:
            if name not in strategies:
                strategies[name] = crate.add(SoftwareApplication(crate, f"#strategy-{_slug(name)}", {
                    "name": f"labweave optimizer strategy {name}"}))
            return strategies[name]

        actions = []
        for req in sorted(data.requests, key=lambda r: r.ctime):
            request_entity = crate.add(ContextEntity(crate, f"#request-{req.uuid}", {
                "@type": "CreativeWork", "identifier": req.uuid, "dateCreated": _time(req.ctime),
                "name": f"request for {req.request.quantity} by {', '.join(req.request.methods)}",
                "text": json.dumps(req.request.parameters, sort_keys=True),
                "creativeWorkStatus": req.status.value}))
            proposal: dict[str, Any] = {"@type": "CreateAction", "name": f"proposal of request {req.uuid}",
                                        "agent": person(req.created_by or "unknown"), "result": request_entity,
                                        "startTime": _time(req.ctime), "actionStatus": "CompletedActionStatus"}
            made_by = req.provenance.get("strategy")
            if isinstance(made_by, str) and made_by:
                proposal["instrument"] = strategy(made_by)
                if isinstance(req.provenance.get("model_version"), str):
                    proposal["description"] = (f"{req.provenance.get('reason', '')} "
                                               f"(model version {req.provenance['model_version']})").strip()
            actions.append(crate.add(ContextEntity(crate, f"#propose-{req.uuid}", proposal)))
            info = finished.get(req.uuid)
            runner = info.result.tenant_uuid if info is not None else req.owner_tenant_uuid
            if runner is None and req.status is not RequestStatus.FAILED:
                continue  # not measured (yet); a failed request keeps no owner, but its failure is told
            run: dict[str, Any] = {"@type": "CreateAction", "name": f"measurement of request {req.uuid}",
                                   "object": request_entity, "startTime": _time(req.ctime),
                                   "actionStatus": STATUS.get(req.status, "FailedActionStatus")}
            if runner is not None:
                run["instrument"] = instrument(runner)
            tenant = tenants.get(runner or "")
            if tenant is not None and tenant.contact_person:
                run["agent"] = person(tenant.contact_person)
            if info is not None:
                run["result"] = _ref(result_files[req.uuid])
                run["endTime"] = _time(info.ctime)
            if req.failure_reason:
                run["error"] = req.failure_reason
            actions.append(crate.add(ContextEntity(crate, f"#run-{req.uuid}", run)))
        root["mentions"] = actions

        if zip_file:
            out.parent.mkdir(parents=True, exist_ok=True)
            crate.write_zip(out)
        else:
            crate.write(out)
    return out
