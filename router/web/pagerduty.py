"""`POST /v2/enqueue`: PagerDuty Events API v2, answered the way PagerDuty answers.

The routing key is the credential: one of a pipeline's `integration_keys` (secrets), or,
with a valid bearer token, a pipeline id. Any other key is refused with 400 and nothing is
stored, so a typo in a sender's key is loud, not a silently misrouted page.
"""

from __future__ import annotations

__all__ = ["routes"]

import dataclasses
import hmac
import uuid

from aiohttp import web

from router.ingest.common import InvalidAlertError
from router.ingest.pagerduty import parse_event
from router.teammodel import Pipeline, TeamModel
from router.web.auth import CALLER, caller_name
from router.web.body import BadJsonError, decode_json
from router.web.intake import accept
from router.web.keys import CONFIG, LIMITER, METRICS, SETTINGS

routes = web.RouteTableDef()


def _invalid(errors: list[str]) -> web.Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return web.json_response(body, status=400)


@routes.post("/v2/enqueue")
async def enqueue(request: web.Request) -> web.Response:
    """Trigger, acknowledge or resolve by `dedup_key`, as PagerDuty's endpoint does."""
    metrics = request.app[METRICS]
    try:
        event = parse_event(decode_json(await request.read()))
    except BadJsonError as err:
        metrics.alerts_rejected.labels("malformed").inc()
        return _invalid([str(err)])
    except InvalidAlertError as err:
        metrics.alerts_rejected.labels("invalid").inc()
        return _invalid([f"{d['path']}: {d['message']}" for d in err.details])
    pipeline = _pipeline_for(request, request.app[CONFIG].model, event.routing_key)
    if pipeline is None:
        metrics.alerts_rejected.labels("unknown_routing_key").inc()
        return _invalid(["Invalid routing key"])
    wait = request.app[LIMITER].retry_after(f"pagerduty:{pipeline.id}")
    if wait is not None:
        metrics.alerts_rejected.labels("rate_limited").inc()
        throttled = {"status": "throttle event", "message": "Requests are arriving too quickly."}
        return web.json_response(throttled, status=429, headers={"Retry-After": str(wait)})
    request[CALLER] = request.get(CALLER) or f"pagerduty:{pipeline.id}"
    # As PagerDuty does, a trigger without a key gets a new one: a new incident each time.
    dedup_key = event.alert.dedup_key or f"pd:{uuid.uuid4().hex}"
    alert = dataclasses.replace(event.alert, pipeline=pipeline.id, dedup_key=dedup_key)
    await accept(request, [alert])
    body: dict[str, object] = {
        "status": "success",
        "message": "Event processed",
        "dedup_key": dedup_key,
    }
    return web.json_response(body, status=202)


def _pipeline_for(request: web.Request, model: TeamModel, key: str) -> Pipeline | None:
    found = None
    for pipeline in model.pipelines:
        for secret in pipeline.integration_keys:
            if hmac.compare_digest(secret.get_secret_value().encode(), key.encode()):
                found = pipeline
    if found is not None:
        return found
    caller = caller_name(request.app[SETTINGS].inbound_tokens, request.headers.get("Authorization"))
    if caller is None:
        return None
    request[CALLER] = caller
    return model.pipeline(key)
