"""The ceiling: a bare aiohttp server with one trivial alert handler.

It does what any aiohttp service must do for an alert (read the body, decode the JSON, answer
202 with a small JSON body) and nothing else: no auth, no validation, no storage, no logging.
The router's figures are read against this server's, measured in the same run.

    python bench/ceiling_server.py --port 8090
"""

from __future__ import annotations

import argparse
import json

from aiohttp import web

ACCEPTED = b'{"status":"accepted"}'


async def alert(request: web.Request) -> web.Response:
    """Read and decode the body, answer 202."""
    document = json.loads(await request.read())
    if not isinstance(document, dict):
        return web.Response(status=400, body=b'{"error":"not an object"}')
    return web.Response(status=202, body=ACCEPTED, content_type="application/json")


async def healthz(_request: web.Request) -> web.Response:
    """Readiness probe for the benchmark driver."""
    return web.Response(text="ok")


def create_app() -> web.Application:
    """The application: `POST /api/v1/alerts` and `GET /healthz`."""
    app = web.Application()
    app.router.add_post("/api/v1/alerts", alert)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    """Serve until SIGTERM/SIGINT, without an access log."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
