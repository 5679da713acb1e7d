"""``/api/v1/lab``: an operator pauses and resumes the whole lab (see :mod:`..lab_pause`)."""

from __future__ import annotations

from fastapi import APIRouter

from labweave.schemas.api import LabPause, LabResume, LabStatus

from .. import convert
from ..deps import CurrentOperator, CurrentUser, LabDep

router = APIRouter(prefix="/api/v1", tags=["lab"])


@router.get("/lab")
def lab_status(lab: LabDep, p: CurrentUser) -> LabStatus:
    """Whether the lab is paused (every signed-in user may ask: a tenant runtime does, to wait)."""
    return convert.lab_status(lab.pause.state(), lab.pause.running())


@router.post("/lab/pause")
def pause_lab(lab: LabDep, p: CurrentOperator, body: LabPause | None = None) -> LabStatus:
    """Pause the lab: claims and reservations are refused (409 naming the pause) until it is resumed;
    running work finishes, or with ``release_running`` goes back to pending at once."""
    body = body or LabPause()
    state, released = lab.pause.pause(p, body.release_running, body.reason)
    return convert.lab_status(state, lab.pause.running(), released)


@router.post("/lab/resume")
def resume_lab(lab: LabDep, p: CurrentOperator, body: LabResume | None = None) -> LabStatus:
    return convert.lab_status(lab.pause.resume(p, body.reason if body else ""), lab.pause.running())
