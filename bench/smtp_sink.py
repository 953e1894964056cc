"""A minimal SMTP server that accepts every message and throws it away, counting them.

The router pages every new incident by email; during the ingest benchmark this stands in for
a working mail relay, so delivery succeeds (as in production) instead of retrying against a
closed port. On SIGTERM/SIGINT it prints `{"messages": N, "connections": M}` and exits.

    python bench/smtp_sink.py --port 2525
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from dataclasses import dataclass

EHLO_REPLY = b"250-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"


@dataclass
class Counts:
    """What the sink has accepted so far."""

    messages: int = 0
    connections: int = 0


async def session(
    counts: Counts, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One client connection: just enough SMTP (RFC 5321) for plain, unauthenticated mail,
    any number of transactions until QUIT or EOF."""
    counts.connections += 1
    writer.write(b"220 bench-sink ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            if verb == b"EHLO":
                writer.write(EHLO_REPLY)
            elif verb == b"DATA":
                writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                counts.messages += 1
                writer.write(b"250 queued\r\n")
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> Counts:
    """Accept mail until SIGTERM/SIGINT; the counts."""
    counts = Counts()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(
        lambda reader, writer: session(counts, reader, writer), host, port, limit=1 << 20
    )
    async with server:
        await stop.wait()
    return counts


def main() -> None:
    """Serve; print the counts as JSON on exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    counts = asyncio.run(serve(args.host, args.port))
    print(json.dumps({"messages": counts.messages, "connections": counts.connections}))


if __name__ == "__main__":
    main()
