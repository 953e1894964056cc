"""A webhook receiver for the delivery benchmark: answers 200 at once and remembers, per request,
when it arrived and which alerts it carried.

    python bench/webhook_sink.py --port 9099 --out results.json

Every `POST` is answered `200` with an empty body (HTTP/1.1, keep-alive). The request is only
stored (arrival time and raw body); bodies are decoded when the sink stops, so the per-request
cost while the benchmark runs is a few microseconds and the sink is not what limits a sender.

The arrival time is `time.monotonic()` when the last byte of the request arrived. On Linux
that is `CLOCK_MONOTONIC`, one clock for every process of the machine, so it can be compared
with the load generator's send times (`bench/delivery_loadgen.py` uses the same clock).

Alert identifiers, by path:

- `/router` — the router's generic webhook: one page, `body["incident"]["dedup_key"]`
  (`bench-<n>`, so the identifier is `n`);
- `/am` — Alertmanager's webhook: every alert of `body["alerts"]`, its `labels["id"]` (`n`).

Control channel:

- `GET /_stats` → `{"requests": N, "last_arrival": T, "now": T}`: how many requests so far and
  when the last one came (monotonic seconds; null before the first), to see deliveries stop;
- `SIGTERM`/`SIGINT` → decode everything, write `--out` (JSON) and exit:
  `{"requests", "alerts", "unparsed", "duplicates", "paths", "first": [[n, t], ...],
  "copies": [[n, k], ...]}` where `first` is each identifier's first arrival and `copies`
  lists the identifiers that arrived more than once and how many times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024
ROUTER_PREFIX = "bench-"


@dataclass
class Recorder:
    """Everything received so far: (arrival, path, body) per request."""

    requests: list[tuple[float, str, bytes]] = field(default_factory=list)
    bad: int = 0
    last_arrival: float | None = None

    def add(self, arrival: float, path: str, body: bytes) -> None:
        """One webhook request."""
        self.requests.append((arrival, path, body))
        self.last_arrival = arrival

    def stats(self) -> bytes:
        """The `/_stats` answer body."""
        document = {
            "requests": len(self.requests),
            "bad": self.bad,
            "last_arrival": self.last_arrival,
            "now": time.monotonic(),
        }
        return json.dumps(document).encode()


def identifiers(path: str, body: bytes) -> list[int]:
    """The alert identifiers one request carried (see the module docstring); ValueError,
    KeyError or TypeError when the body is not what the path promises."""
    document: Any = json.loads(body)
    if path.startswith("/router"):
        key: str = document["incident"]["dedup_key"]
        return [int(key.removeprefix(ROUTER_PREFIX))]
    if path.startswith("/am"):
        return [int(alert["labels"]["id"]) for alert in document["alerts"]]
    raise ValueError(f"unknown path {path!r}")


def summarise(recorder: Recorder) -> dict[str, object]:
    """Decode every stored request: first arrival per identifier, copies, counts."""
    first: dict[int, float] = {}
    seen: Counter[int] = Counter()
    paths: Counter[str] = Counter()
    unparsed = 0
    for arrival, path, body in recorder.requests:
        paths[path] += 1
        try:
            found = identifiers(path, body)
        except (ValueError, KeyError, TypeError):
            unparsed += 1
            continue
        for n in found:
            seen[n] += 1
            if n not in first or arrival < first[n]:
                first[n] = arrival
    copies = [[n, k] for n, k in seen.items() if k > 1]
    return {
        "requests": len(recorder.requests),
        "alerts": sum(seen.values()),
        "unparsed": unparsed + recorder.bad,
        "duplicates": sum(k - 1 for _, k in copies),
        "paths": dict(paths),
        "first": [[n, t] for n, t in first.items()],
        "copies": copies,
    }


class SinkProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1 for a webhook sender: `Content-Length` bodies, keep-alive."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's signature
        """The sender hung up: nothing more to answer."""
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Buffer, then handle every complete request in the buffer."""
        self.buffer += data
        now = time.monotonic()
        while self.transport is not None and self._one_request(now):
            pass

    def _one_request(self, now: float) -> bool:
        """Handle the request at the head of the buffer if it is complete; whether one was."""
        assert self.transport is not None
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._refuse()
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, _version = head[0].split(" ", 2)
        except ValueError:
            self._refuse()
            return False
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._refuse()  # no sender of this benchmark uses it; counted as unparsed
            return False
        length = int(headers.get("content-length", "0") or 0)
        total = end + 4 + length
        if len(self.buffer) < total:
            return False
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        close = headers.get("connection", "").lower() == "close"
        if method == "GET" and target.startswith("/_stats"):
            payload = self.recorder.stats()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
        else:
            self.recorder.add(now, target, body)
            self.transport.write(OK_CLOSE if close else OK)
        if close:
            self.transport.close()
            self.transport = None
        return True

    def _refuse(self) -> None:
        assert self.transport is not None
        self.recorder.bad += 1
        self.transport.write(BAD)
        self.transport.close()
        self.transport = None
        self.buffer.clear()


async def serve(host: str, port: int) -> Recorder:
    """Receive until SIGTERM/SIGINT; what was received."""
    recorder = Recorder()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(lambda: SinkProtocol(recorder), host, port, backlog=1024)
    async with server:
        await stop.wait()
    return recorder


def main() -> None:
    """Serve; on exit write the summary to `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="where to write the summary")
    args = parser.parse_args()
    recorder = asyncio.run(serve(args.host, args.port))
    summary = summarise(recorder)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
