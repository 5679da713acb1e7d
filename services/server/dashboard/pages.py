"""The dashboard's pages, and the fragments of them that the page's script fetches again on each change.

A page is the layout around fragments; each fragment has its own URL under
``/dashboard/fragments/`` and is rendered by the same template the page
includes, so a refreshed fragment is exactly what a reload would show.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..auth import Principal
from ..errors import Invalid, NotFound
from . import campaign_view, views
from .actions import Controls
from .render import fragment, lab_status, page
from .session import FragmentUser, PageUser

router = APIRouter()


def _summary(request: Request, user: Principal) -> dict:
    lab = request.app.state.lab
    tenants = views.tenants(lab, user)
    return {"counts": views.status_counts(lab, user),
            "online": sum(1 for t in tenants if t.is_active and t.connection == "online"),
            "tenant_total": len(tenants), "stopped": sum(1 for t in tenants if t.stop_requested)}


def _filter(request: Request) -> tuple[views.QueueFilter, str | None]:
    try:
        return views.QueueFilter.from_query(request.query_params), None
    except Invalid as exc:
        return views.QueueFilter(), exc.message


def _campaign(request: Request, user: Principal, name: str) -> campaign_view.CampaignDetail:
    lab = request.app.state.lab
    return campaign_view.detail(lab, user, lab.campaigns.get(user, name))


# -- pages ---------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
def overview(request: Request, user: PageUser) -> HTMLResponse:
    lab = request.app.state.lab
    return page(request, "overview.html", user, "overview", title="Overview", can=Controls(user),
                tenants=views.tenants(lab, user), campaigns=campaign_view.summaries(lab, user),
                items=views.activity(lab, user), **_summary(request, user))


@router.get("/tenants", response_class=HTMLResponse)
def tenants_page(request: Request, user: PageUser) -> HTMLResponse:
    lab = request.app.state.lab
    return page(request, "tenants.html", user, "tenants", title="Tenants", can=Controls(user), compact=False,
                tenants=views.tenants(lab, user), offline_seconds=lab.settings.tenant_offline_seconds,
                dead_letters=views.dead_letters(lab, user))


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, user: PageUser) -> HTMLResponse:
    filt, problem = _filter(request)
    # an unknown status in a hand-written URL: say so, and show everything
    return page(request, "queue.html", user, "queue", status_code=422 if problem else 200, title="Queue",
                can=Controls(user), filt=filt, problem=problem, queue=views.queue(request.app.state.lab, user, filt))


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: PageUser) -> HTMLResponse:
    return page(request, "campaigns.html", user, "campaigns", title="Campaigns", can=Controls(user), compact=False,
                campaigns=campaign_view.summaries(request.app.state.lab, user))


@router.get("/campaigns/{name}", response_class=HTMLResponse)
def campaign_page(request: Request, user: PageUser, name: str) -> HTMLResponse:
    try:
        d = _campaign(request, user, name)
    except NotFound as exc:
        return page(request, "missing.html", user, "campaigns", status_code=404, title="Not found",
                    message=exc.message)
    return page(request, "campaign.html", user, "campaigns", title=f"Campaign {name}", can=Controls(user), d=d)


# -- fragments ------------------------------------------------------------------------
@router.get("/fragments/summary", response_class=HTMLResponse)
def summary_fragment(request: Request, user: FragmentUser) -> HTMLResponse:
    return fragment("_summary.html", user, **_summary(request, user))


@router.get("/fragments/tenants", response_class=HTMLResponse)
def tenants_fragment(request: Request, user: FragmentUser, compact: bool = False) -> HTMLResponse:
    lab = request.app.state.lab
    return fragment("_tenants.html", user, tenants=views.tenants(lab, user), compact=compact, can=Controls(user),
                    dead_letters=[] if compact else views.dead_letters(lab, user))


@router.get("/fragments/lab", response_class=HTMLResponse)
def lab_fragment(request: Request, user: FragmentUser) -> HTMLResponse:
    """The paused lab's banner (an operator's pause control while it runs)."""
    return fragment("_lab.html", user, lab=lab_status(request))


@router.get("/fragments/queue", response_class=HTMLResponse)
def queue_fragment(request: Request, user: FragmentUser) -> HTMLResponse:
    filt = views.QueueFilter.from_query(request.query_params)
    return fragment("_queue.html", user, filt=filt, queue=views.queue(request.app.state.lab, user, filt),
                    can=Controls(user))


@router.get("/fragments/campaigns", response_class=HTMLResponse)
def campaigns_fragment(request: Request, user: FragmentUser, compact: bool = False) -> HTMLResponse:
    return fragment("_campaigns.html", user, campaigns=campaign_view.summaries(request.app.state.lab, user),
                    compact=compact, can=Controls(user))


@router.get("/fragments/campaigns/{name}", response_class=HTMLResponse)
def campaign_fragment(request: Request, user: FragmentUser, name: str) -> HTMLResponse:
    return fragment("_campaign.html", user, d=_campaign(request, user, name), can=Controls(user))


@router.get("/fragments/activity", response_class=HTMLResponse)
def activity_fragment(request: Request, user: FragmentUser) -> HTMLResponse:
    return fragment("_activity.html", user, items=views.activity(request.app.state.lab, user))
