"""A minimal, fast events-API receiver that runs in its own process.

It answers 204 to ``POST /api/buckets`` and ``POST /api/events`` over HTTP/1.1 keep-alive and
counts the events it received, so a benchmark can time "first log() to last event arrived".
It is a raw asyncio protocol rather than http.server: the receiver must never be what limits
the rate being measured, and parsing with the standard library's handler costs several times
more CPU per request than the clients under test spend.

Events are counted as occurrences of ``"epoch"`` in the body: exact for the bodies the
benchmarks send (numeric values, both clients write an ``epoch`` field), and a C-speed scan
instead of a JSON parse of every batch.

Control endpoints, on the same port:
  GET /bench/stats              {"events", "requests", "first", "last"} (time.monotonic())
  GET /bench/wait?events=N&timeout=S   the same, once events >= N (or at the timeout)
Arrival times use time.monotonic(), which on Linux is CLOCK_MONOTONIC, shared by every
process on the machine, so clients can compare them with their own clock.

    python -m bench.receiver [--port P]     prints "PORT <n>" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: bench-receiver\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_MAX_HEADER = 64 * 1024


class Counter:
    """What arrived so far, and the waiters for a count."""

    def __init__(self) -> None:
        self.events = 0
        self.requests = 0
        self.first: float | None = None
        self.last: float | None = None
        self.waiters: list[tuple[int, asyncio.Future]] = []

    def add(self, events: int) -> None:
        now = time.monotonic()
        self.requests += 1
        if events:
            self.events += events
            if self.first is None:
                self.first = now
            self.last = now
            if self.waiters:
                self._release()

    def _release(self) -> None:
        keep = []
        for target, fut in self.waiters:
            if self.events >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self.waiters = keep

    def snapshot(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "requests": self.requests,
            "first": self.first,
            "last": self.last,
        }


class _Protocol(asyncio.Protocol):
    """One connection: parse requests one after another from the byte stream."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEADER and self.transport is not None:
                    self.transport.close()
                return
            head = bytes(self.buf[:end])
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buf) < total:
                return  # the body is still arriving
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            self._handle(head, body)

    def _handle(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        line = head.split(b"\r\n", 1)[0].split(b" ")
        method, target = line[0], line[1].decode("latin-1") if len(line) > 1 else "/"
        if method == b"POST" and target.startswith("/api/"):
            self.counter.add(body.count(b'"epoch"') if target.startswith("/api/events") else 0)
            self.transport.write(_NO_CONTENT)
        elif target.startswith("/bench/"):
            asyncio.ensure_future(self._control(target))
        else:
            self.transport.write(_NOT_FOUND)

    async def _control(self, target: str) -> None:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        if parts.path == "/bench/wait":
            want = int(query.get("events", "0"))
            if self.counter.events < want:
                fut = asyncio.get_running_loop().create_future()
                self.counter.waiters.append((want, fut))
                try:
                    await asyncio.wait_for(fut, float(query.get("timeout", "600")))
                except asyncio.TimeoutError:
                    pass
        payload = json.dumps(self.counter.snapshot()).encode()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
            )


async def _serve(port: int) -> None:
    counter = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Protocol(counter), "127.0.0.1", port, reuse_address=True, backlog=1024
    )
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: None if stop.done() else stop.set_result(None))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await stop
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fast local events-API receiver for benchmarks")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port))
    return 0


class Receiver:
    """Handle on a receiver subprocess: start, query, stop."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            env=env,
            cwd=root,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("receiver did not start")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _get(self, path: str, timeout: float) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stats(self) -> dict[str, Any]:
        return self._get("/bench/stats", 30)

    def wait(self, events: int, timeout: float) -> dict[str, Any]:
        """Block (without using CPU) until ``events`` arrived in all; returns the stats."""
        return self._get(f"/bench/wait?events={events}&timeout={timeout}", timeout + 30)

    def __enter__(self) -> Receiver:  # noqa: PYI034 - Python 3.9 has no typing.Self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
