"""`router send-test-alert PIPELINE`: one generic alert to a running router, end to end."""

from __future__ import annotations

__all__ = ["send_test_alert"]

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp

from router.settings import Settings


def _body(pipeline: str, now: datetime) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "summary": f"Test alert for {pipeline} (router send-test-alert)",
        "severity": "info",
        "status": "firing",
        "dedup_key": f"test-alert:{pipeline}:{now.strftime('%Y%m%dT%H%M%S')}",
        "labels": {"alertname": "RouterTestAlert"},
        "source": "router send-test-alert",
    }


async def _post(url: str, token: str, body: dict[str, Any]) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=10, connect=3)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.text()


def send_test_alert(settings: Settings, pipeline: str) -> tuple[int, str]:
    """POST a test alert to the router at ROUTER_HOST:ROUTER_PORT with the first token.

    Returns (HTTP status, response text); raises OSError/aiohttp errors when unreachable.
    """
    token = next(iter(settings.inbound_tokens.values()), None)
    if token is None:
        raise ValueError("no token to send with: set ROUTER_INBOUND_TOKENS")
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host  # noqa: S104 - a comparison, not a bind
    url = f"http://{host}:{settings.port}/api/v1/alerts"
    body = _body(pipeline, datetime.now(UTC))
    status, text = asyncio.run(_post(url, token.get_secret_value(), body))
    return status, json.dumps(json.loads(text), indent=2) if text.startswith("{") else text
