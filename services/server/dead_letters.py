"""Dead letters: the results tenants keep because the server refused them, as each tenant reports them.

A tenant's outbox keeps a result the server refused for good (a 4xx that is
not transient) instead of dropping it. The tenant reports the whole list it
keeps; the report replaces the previous one, so what an operator lists here
is what is on the tenant's disk as of its last report. Retrying or discarding
a dead letter happens where it is kept (``labweave tenant outbox`` on the
tenant's machine), and the tenant's next report shows it.
"""

from __future__ import annotations

import time

from sqlmodel import Session, col, delete, select

from labweave.schemas.tenant import DeadLetter as DeadLetterBody
from labweave.schemas.tenant import TenantDeadLetter

from .convert import stamp
from .db.engine import Database
from .db.tables import DeadLetter, Tenant
from .errors import NotFound
from .events import record


class DeadLetters:
    def __init__(self, db: Database):
        self.db = db

    def report(self, tenant_uuid: str, letters: list[DeadLetterBody], actor: str) -> list[TenantDeadLetter]:
        """Replace the dead letters of a tenant by the ones it reports; an event when the list changed.

        Raises:
            NotFound: no such tenant.
        """
        now = time.time()
        with Session(self.db.write) as s:
            tenant = s.get(Tenant, tenant_uuid)
            if tenant is None:
                raise NotFound(f"tenant {tenant_uuid} is not registered")
            before = set(s.exec(select(DeadLetter.key).where(DeadLetter.tenant_uuid == tenant_uuid)))
            s.exec(delete(DeadLetter).where(col(DeadLetter.tenant_uuid) == tenant_uuid))
            unique = {letter.key: letter for letter in letters}  # a key reported twice is one letter
            for letter in unique.values():
                s.add(DeadLetter(tenant_uuid=tenant_uuid, key=letter.key, request_uuid=letter.request_uuid,
                                 quantity=letter.quantity, method=letter.method, refusal=letter.refusal,
                                 status_code=letter.status_code, kept_at=letter.kept_at.timestamp(),
                                 reported_at=now))
            if set(unique) != before:
                # counts only: tenant events are public, the requests named in the letters are not
                record(s, "tenant.dead_letters", tenant_uuid, actor, now=now,
                       message=f"{tenant.name} keeps {len(unique)} dead letter(s) (was {len(before)})",
                       data={"count": len(unique), "was": len(before)})
            s.commit()
        return self.listing(tenant_uuid)

    def listing(self, tenant_uuid: str | None = None) -> list[TenantDeadLetter]:
        """Every dead letter reported (of one tenant, if given), oldest first."""
        with Session(self.db.read) as s:
            stmt = select(DeadLetter, Tenant.name).join(Tenant, col(Tenant.uuid) == col(DeadLetter.tenant_uuid))
            if tenant_uuid is not None:
                stmt = stmt.where(DeadLetter.tenant_uuid == tenant_uuid)
            rows = list(s.exec(stmt.order_by(col(DeadLetter.kept_at), col(DeadLetter.id))))
        return [TenantDeadLetter(key=row.key, request_uuid=row.request_uuid, quantity=row.quantity, method=row.method,
                                 refusal=row.refusal, status_code=row.status_code, kept_at=stamp(row.kept_at),
                                 tenant_uuid=row.tenant_uuid, tenant_name=name, reported_at=stamp(row.reported_at))
                for row, name in rows]
