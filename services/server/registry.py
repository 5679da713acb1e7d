"""Capabilities and tenants: registration, and the cached view requests are checked against.

The view (:class:`Catalogue`) holds compiled JSON-schema validators and each
active tenant's limitations per quantity and method, with their compiled checks
(:func:`~labweave.schemas.limitation.compile_limit`). It is rebuilt at most
every ``cache_seconds`` (and at once after a change made through this
replica), so validating a request costs no database query.
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Callable

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from sqlmodel import Session, select

from labweave.schemas.capability import Capability as CapabilityFile
from labweave.schemas.limitation import Predicate, alternatives_of, compile_limit, violations
from labweave.schemas.tenant import LimitationEntry, TenantDefinition

from .db.engine import Database
from .db.tables import Capability, Tenant
from .errors import Conflict, Forbidden, Invalid, NotFound
from .events import record


#: A tenant's remembered verdicts are dropped past this many (the pending listing keeps only the current ones).
MAX_VERDICTS = 200_000


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def schema_errors(validator: Draft202012Validator, instance: Any, prefix: str) -> str | None:
    """The most relevant error of ``instance``, with the path of the bad field."""
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    return f"{prefix}{_path(error.absolute_path)}: {error.message}"


class SchemaCheck:
    """A JSON schema compiled twice: a fast validator for the common case
    (jsonschema-rs), and the reference one to explain a failure with the path
    of the bad field."""

    def __init__(self, schema: dict):
        self.reference = Draft202012Validator(schema)
        self.fast: jsonschema_rs.Validator | None
        try:
            self.fast = jsonschema_rs.validator_for(schema)
        except Exception:  # a schema the fast validator cannot compile: use the reference alone
            self.fast = None

    def error(self, instance: Any, prefix: str) -> str | None:
        if self.fast is not None and self.fast.is_valid(instance):
            return None
        return schema_errors(self.reference, instance, prefix)


@dataclass
class CapabilityView:
    quantity: str
    method: str
    input_schema: dict
    output_schema: dict
    is_active: bool
    _in: SchemaCheck | None = None
    _out: SchemaCheck | None = None

    @property
    def input_check(self) -> SchemaCheck:
        if self._in is None:
            self._in = SchemaCheck(self.input_schema)
        return self._in

    @property
    def output_check(self) -> SchemaCheck:
        if self._out is None:
            self._out = SchemaCheck(self.output_schema)
        return self._out


@dataclass
class Catalogue:
    """A snapshot of capabilities and active tenants' limitations."""

    capabilities: dict[tuple[str, str], CapabilityView] = field(default_factory=dict)
    # (quantity, method) -> {tenant uuid: [alternative limitations]}: what each tenant publishes
    offers: dict[tuple[str, str], dict[str, list[Any]]] = field(default_factory=dict)
    # (quantity, method) -> {tenant uuid: [alternatives]}: what an operator granted it (the envelope)
    envelopes: dict[tuple[str, str], dict[str, list[Any]]] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    #: tenant uuid -> {request uuid: whether its limitations admit the request}. A request's
    #: parameters never change, so a verdict holds while the tenant's terms do (kept across reloads
    #: by :meth:`Registry.catalogue` when they are unchanged): a tenant polling FINALES2's
    #: ``/pending_requests/`` has each request matched against its limitations once, not per poll.
    verdicts: dict[str, dict[str, bool]] = field(default_factory=dict)
    #: tenant uuid -> {(quantity, method): its terms compiled into one check}, compiled on first use
    #: and kept across reloads while the tenant's terms are unchanged, like ``verdicts``.
    checks: dict[str, dict[tuple[str, str], Predicate]] = field(default_factory=dict)

    def capability(self, quantity: str, method: str) -> CapabilityView:
        cap = self.capabilities.get((quantity, method))
        if cap is None:
            if not any(q == quantity for q, _ in self.capabilities):
                raise Invalid(f"quantity: unknown quantity {quantity!r}")
            raise Invalid(f"methods: unknown method {method!r} for quantity {quantity!r}")
        if not cap.is_active:
            raise Invalid(f"methods: {quantity}/{method} is not active")
        return cap

    def tenant_offers(self, tenant_uuid: str) -> dict[str, list[str]]:
        """quantity -> methods the tenant offers."""
        out: dict[str, list[str]] = {}
        for (q, m), by_tenant in self.offers.items():
            if tenant_uuid in by_tenant:
                out.setdefault(q, []).append(m)
        return out

    def limit_violations(self, tenant_uuid: str, quantity: str, method: str, params: dict) -> list[str] | None:
        """None if the tenant does not offer the method; else what params break."""
        alternatives = self.offers.get((quantity, method), {}).get(tenant_uuid)
        if alternatives is None:
            return None
        found = _closest(alternatives, params, method)
        if found:
            return found
        # within what the tenant publishes: also within what the operator granted it?
        envelope = self.envelopes.get((quantity, method), {}).get(tenant_uuid)
        if envelope is None:
            return []
        return [f"{e} (outside what an operator granted this tenant)" for e in _closest(envelope, params, method)]

    def admits(self, tenant_uuid: str, quantity: str, method: str, params: dict) -> bool:
        """Whether :meth:`limit_violations` is empty, without building its messages."""
        key = (quantity, method)
        by_method = self.checks.get(tenant_uuid)
        check = by_method.get(key) if by_method is not None else None
        if check is None:
            alternatives = self.offers.get(key, {}).get(tenant_uuid)
            if alternatives is None:
                return False
            check = _compile_terms(alternatives, self.envelopes.get(key, {}).get(tenant_uuid))
            self.checks.setdefault(tenant_uuid, {})[key] = check
        return check(params)

    def can_serve(self, tenant_uuid: str, quantity: str, methods: list[str], parameters: dict) -> bool:
        return any(self.admits(tenant_uuid, quantity, m, parameters.get(m, {})) for m in methods)

    def terms(self, tenant_uuid: str) -> dict[tuple[str, str], tuple[Any, Any]]:
        """What decides which requests a tenant can serve: its limitations and envelope per method."""
        return {key: (by_tenant[tenant_uuid], self.envelopes.get(key, {}).get(tenant_uuid))
                for key, by_tenant in self.offers.items() if tenant_uuid in by_tenant}

    def serves(self, tenant_uuid: str, request_uuid: str, body: Callable[[], dict[str, Any]]) -> bool:
        """:meth:`can_serve` for a stored request, remembered (``body()`` gives its quantity, methods and
        parameters when the verdict is not known yet)."""
        known = self.verdicts.setdefault(tenant_uuid, {})
        verdict = known.get(request_uuid)
        if verdict is None:
            b = body()
            verdict = known[request_uuid] = self.can_serve(tenant_uuid, b["quantity"], b["methods"], b["parameters"])
        return verdict


def _compile_terms(alternatives: list[Any], envelope: list[Any] | None) -> Predicate:
    """One check of a tenant's terms for a method: one of its alternatives admits the parameters,
    and so does one of the alternatives an operator granted it (None: no envelope)."""
    offered = [compile_limit(alt) for alt in alternatives]
    if envelope is None or envelope == alternatives:  # what it offers is within the envelope already
        return lambda params: any(check(params) for check in offered)
    granted = [compile_limit(alt) for alt in envelope]
    return lambda params: any(check(params) for check in offered) and any(check(params) for check in granted)


def _closest(alternatives: list[Any], params: dict, method: str) -> list[str]:
    """No violations if one alternative admits ``params``, else the closest alternative's."""
    best: list[str] | None = None
    for alt in alternatives:
        found = violations(alt, params, f"parameters.{method}")
        if not found:
            return []
        if best is None or len(found) < len(best):
            best = found
    return best or []


def _pairs(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["quantity"], e["method"]) for e in entries}


def check_serving(tenant_uuid: str, tenant: Any | None) -> None:
    """Whether a tenant may take, hold and answer requests now: registered, active and not asked to stop.

    ``tenant`` has the tenant's ``name``, ``is_active`` and ``stop_requested`` (None: not registered).

    Raises:
        Forbidden: it is not registered.
        Conflict: an operator deactivated it or asked it to stop.
    """
    if tenant is None:
        raise Forbidden(f"tenant {tenant_uuid} is not registered")
    if not tenant.is_active:
        raise Conflict(f"tenant {tenant.name} is not active")
    if tenant.stop_requested:
        raise Conflict(f"tenant {tenant.name} has been asked to stop; an operator must resume it")


class Registry:
    """Capabilities and tenants in the database, with a cached :class:`Catalogue`."""

    def __init__(self, db: Database, cache_seconds: float = 2.0):
        self.db = db
        self.cache_seconds = cache_seconds
        self._catalogue: Catalogue | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    # -- the cached view ------------------------------------------------
    def catalogue(self) -> Catalogue:
        now = time.monotonic()
        if self._catalogue is not None and now - self._loaded < self.cache_seconds:
            return self._catalogue
        with self._lock:
            if self._catalogue is not None and time.monotonic() - self._loaded < self.cache_seconds:
                return self._catalogue
            cat = self._load()
            old = self._catalogue
            if old is not None:  # keep compiled validators of unchanged schemas
                for key, view in cat.capabilities.items():
                    prev = old.capabilities.get(key)
                    if prev and prev.input_schema == view.input_schema and prev.output_schema == view.output_schema:
                        view._in, view._out = prev._in, prev._out
                for tenant_uuid in old.verdicts.keys() | old.checks.keys():  # under unchanged terms, verdicts
                    if cat.terms(tenant_uuid) != old.terms(tenant_uuid):      # and compiled checks still hold
                        continue
                    if tenant_uuid in old.checks:
                        cat.checks[tenant_uuid] = old.checks[tenant_uuid]
                    known = old.verdicts.get(tenant_uuid)
                    if known is not None and len(known) < MAX_VERDICTS:
                        cat.verdicts[tenant_uuid] = known
            self._catalogue, self._loaded = cat, time.monotonic()
            return cat

    def invalidate(self) -> None:
        with self._lock:
            self._loaded = 0.0

    def _load(self) -> Catalogue:
        cat = Catalogue()
        with Session(self.db.read) as s:
            for c in s.exec(select(Capability)):
                cat.capabilities[(c.quantity, c.method)] = CapabilityView(
                    c.quantity, c.method, c.input_schema, c.output_schema, c.is_active
                )
            for t in s.exec(select(Tenant)):
                cat.tenants[t.uuid] = t
                if not t.is_active:
                    continue
                granted = t.granted if t.granted is not None else t.limitations
                allowed = _pairs(granted)
                for entry in t.limitations:
                    key = (entry["quantity"], entry["method"])
                    if key not in allowed:  # never stored so; kept out should an old row hold it
                        continue
                    cat.offers.setdefault(key, {}).setdefault(t.uuid, []).extend(
                        alternatives_of(entry.get("limitations", {}))
                    )
                if t.granted is not None:
                    for entry in t.granted:
                        key = (entry["quantity"], entry["method"])
                        cat.envelopes.setdefault(key, {}).setdefault(t.uuid, []).extend(
                            alternatives_of(entry.get("limitations", {}))
                        )
        return cat

    # -- registration ---------------------------------------------------
    def add_capability(self, cap: CapabilityFile, actor: str) -> Capability:
        for name, schema in (
            ("json_schema_specifications", cap.json_schema_specifications),
            ("json_schema_result_output", cap.json_schema_result_output),
        ):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise Invalid(f"{name}{_path(exc.absolute_path)}: not a valid JSON schema: {exc.message}") from None
        with Session(self.db.write) as s:
            row = s.exec(
                select(Capability).where(Capability.quantity == cap.quantity, Capability.method == cap.method)
            ).first()
            created = row is None
            if row is None:
                row = Capability(quantity=cap.quantity, method=cap.method, input_schema={}, output_schema={}, updated=0)
            row.input_schema = cap.json_schema_specifications
            row.output_schema = cap.json_schema_result_output
            row.is_active = cap.is_active
            row.updated = time.time()
            s.add(row)
            record(
                s,
                "capability.registered" if created else "capability.updated",
                f"{cap.quantity}/{cap.method}",
                actor,
            )
            s.commit()
            s.refresh(row)
        self.invalidate()
        return row

    def add_tenant(self, tenant: TenantDefinition, actor: str) -> Tenant:
        """Register a tenant from a FINALES2 tenant file; its quantities and methods must be known.

        An operator's word: the file's limitations become both what the tenant
        offers and the envelope it may later narrow (:meth:`publish_limitations`).
        A new tenant starts active; re-registering one leaves whether it is
        active as an operator last set it.
        """
        cat = self.catalogue() if self._catalogue is None else self._load()
        for i, entry in enumerate(tenant.limitations):
            if (entry.quantity, entry.method) not in cat.capabilities:
                raise Invalid(
                    f"limitations[{i}]: no capability {entry.quantity}/{entry.method} is registered; add it first"
                )
        uuid = tenant.tenant_uuid or str(uuidlib.uuid4())
        with Session(self.db.write) as s:
            row = s.get(Tenant, uuid)
            created = row is None
            if row is None:
                row = Tenant(uuid=uuid, name=tenant.name, created=time.time())
            row.name = tenant.name
            row.contact_person = tenant.contact_person
            row.limitations = [e.model_dump() for e in tenant.limitations]
            row.granted = row.limitations
            s.add(row)
            record(s, "tenant.registered" if created else "tenant.updated", uuid, actor, message=tenant.name)
            s.commit()
            s.refresh(row)
        self.invalidate()
        return row

    def publish_limitations(self, tenant_uuid: str, entries: list[LimitationEntry], actor: str) -> Tenant:
        """A tenant publishes what it can do now: a narrowing of what an operator granted it.

        Its quantities and methods must all be granted ones (a tenant cannot
        offer itself a capability); its ranges may be anything, since a request
        must fit both these limits and the granted ones to reach it. Whether the
        tenant is active stays as an operator set it.

        Raises:
            NotFound: no such tenant.
            Forbidden: an entry names a quantity and method not granted to it.
        """
        with Session(self.db.write) as s:
            row = s.get(Tenant, tenant_uuid)
            if row is None:
                raise NotFound(f"tenant {tenant_uuid} is not registered")
            granted = _pairs(row.granted if row.granted is not None else row.limitations)
            refused = [f"limitations[{i}]: {e.quantity}/{e.method}" for i, e in enumerate(entries)
                       if (e.quantity, e.method) not in granted]
            if refused:
                raise Forbidden(
                    "a tenant may narrow the limits an operator granted it, not offer more: "
                    + "; ".join(refused) + " not granted to this tenant"
                )
            row.limitations = [e.model_dump() for e in entries]
            s.add(row)
            record(s, "tenant.limitations_published", tenant_uuid, actor, message=row.name)
            s.commit()
            s.refresh(row)
        self.invalidate()
        return row

    def _change_tenant(self, tenant_uuid: str, kind: str, actor: str, **changes) -> Tenant:
        """Apply ``changes`` to a tenant's record and log the change as ``kind``."""
        with Session(self.db.write) as s:
            row = s.get(Tenant, tenant_uuid)
            if row is None:
                raise NotFound(f"tenant {tenant_uuid} is not registered")
            for name, value in changes.items():
                setattr(row, name, value)
            s.add(row)
            record(s, kind, tenant_uuid, actor, message=row.name)
            s.commit()
            s.refresh(row)
        self.invalidate()
        return row

    def set_tenant_active(self, tenant_uuid: str, active: bool, actor: str) -> Tenant:
        kind = "tenant.activated" if active else "tenant.deactivated"
        return self._change_tenant(tenant_uuid, kind, actor, is_active=active)

    def set_stop(self, tenant_uuid: str, stop: bool, actor: str) -> Tenant:
        """Emergency-stop a tenant (its runtime brings its instruments to their safe state and fails its work), or reset that."""
        kind = "tenant.stop_requested" if stop else "tenant.resumed"
        return self._change_tenant(tenant_uuid, kind, actor, stop_requested=stop)

    def request_stop(self, tenant_uuid: str, actor: str) -> Tenant:
        return self.set_stop(tenant_uuid, True, actor)

    def clear_stop(self, tenant_uuid: str, actor: str) -> Tenant:
        return self.set_stop(tenant_uuid, False, actor)

    def serving_tenant(self, tenant_uuid: str) -> Tenant:
        """The tenant, if it may take, hold and answer requests now (as the cached catalogue has it).

        Raises:
            Forbidden: it is not registered.
            Conflict: an operator deactivated it or asked it to stop.
        """
        tenant = self.catalogue().tenants.get(tenant_uuid)
        check_serving(tenant_uuid, tenant)
        assert tenant is not None
        return tenant

    # -- checks on requests ---------------------------------------------
    def check_request(self, quantity: str, methods: list[str], parameters: dict) -> None:
        """Schema and limitation checks of a new request.

        Raises:
            Invalid: an unknown quantity or method, parameters breaking the
                input schema (with the field's path), or a request that no
                active tenant offering its methods could serve (naming the
                limits it breaks).
        """
        cat = self.catalogue()
        for m in methods:
            cap = cat.capability(quantity, m)
            message = cap.input_check.error(parameters[m], f"parameters.{m}")
            if message:
                raise Invalid(message)
        for m in methods:
            offerers = cat.offers.get((quantity, m))
            if not offerers:
                return  # nobody offers it yet: the request waits for a tenant
            if any(cat.admits(t, quantity, m, parameters[m]) for t in offerers):
                return
        refusals: list[str] = []  # nobody can serve it: say why, per method, naming the fields
        for m in methods:
            offerers = cat.offers[(quantity, m)]
            found: list[str] | None = None
            for tenant_uuid in offerers:
                errors = cat.limit_violations(tenant_uuid, quantity, m, parameters[m])
                if errors == []:
                    return
                name = cat.tenants[tenant_uuid].name
                tagged = [f"{e} (limits of tenant {name})" for e in errors or []]
                if found is None or len(tagged) < len(found):
                    found = tagged
            refusals.extend(found or [])
        raise Invalid("no active tenant can serve this request: " + "; ".join(refusals))

    def check_result(self, quantity: str, method: str, data: dict) -> None:
        cap = self.catalogue().capabilities.get((quantity, method))
        if cap is None:
            raise Invalid(f"method: unknown method {method!r} for quantity {quantity!r}")
        message = cap.output_check.error(data, "data")
        if message:
            raise Invalid(message)
