"""`/ack/{token}`: the one-click acknowledge link in every page.

GET only shows a confirmation page with a button; POST acknowledges. Mail scanners and
chat unfurlers that prefetch links therefore acknowledge nothing. A tampered or expired
link gets a clear page, never a 500.
"""

from __future__ import annotations

__all__ = ["routes"]

from html import escape

import structlog
from aiohttp import web

from router.acklinks import AckClaim, AckLinkError
from router.web.keys import ACK_SIGNER, CLOCK, OUTBOX, STORE

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<meta name='robots' content='noindex'><title>{escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=html, status=status, content_type="text/html")


def _claim(request: web.Request) -> AckClaim | web.Response:
    try:
        return request.app[ACK_SIGNER].verify(request.match_info["token"], request.app[CLOCK]())
    except AckLinkError as err:
        return _page("Link not valid", f"<p>{escape(str(err))}</p>", status=410)


@routes.get("/ack/{token}")
async def confirm(request: web.Request) -> web.Response:
    """Show the incident and a button; acknowledges nothing."""
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    incident = await request.app[STORE].incident(claim.incident_id)
    if incident is None:
        return _page("No such incident", "<p>This incident does not exist.</p>", status=404)
    if incident.status != "open":
        return _page(f"Incident {incident.id} is {incident.status}", "<p>Nothing to do.</p>")
    body = (
        f"<p><b>{escape(incident.pipeline or 'unknown pipeline')}</b>: "
        f"{escape(incident.summary)}</p>"
        f"<form method='post'><button type='submit' style='font-size:1.2em'>"
        f"Acknowledge as {escape(claim.who)}</button></form>"
    )
    return _page(f"Acknowledge incident {incident.id}?", body)


@routes.post("/ack/{token}")
async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge the incident as the person the link was made for."""
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    store, now = request.app[STORE], request.app[CLOCK]()
    incident = await store.set_status(claim.incident_id, "acknowledged", claim.who, now)
    if incident is None:
        return _page("No such incident", "<p>This incident does not exist.</p>", status=404)
    request.app[OUTBOX].wake()
    log.info("incident.acknowledged", incident=incident.id, by=claim.who, via="ack_link")
    who = escape(incident.acknowledged_by or claim.who)
    return _page(f"Incident {incident.id} is {incident.status}", f"<p>Acknowledged by {who}.</p>")
