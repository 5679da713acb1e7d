"""Demo data: accounts to log in with, so a fresh server can be tried at once."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from .auth import add_user
from .db.tables import User
from .lab import Lab

log = logging.getLogger(__name__)

DEMO_USERS = (("operator", "operator", "operator"), ("requester", "requester", "requester"))


def seed_demo(lab: Lab) -> list[str]:
    """Create the demo accounts that do not exist yet; returns their names."""
    made = []
    with Session(lab.db.read) as s:
        existing = set(s.exec(select(User.username)))
    for name, password, role in DEMO_USERS:
        if name not in existing:
            add_user(lab.db, name, password, role, None, lab.settings.password_rounds)
            made.append(name)
    return made
