"""A v3io web-API emulator on 127.0.0.1: the streaming calls, failing on command.

Speaks CreateStream, DescribeStream, PutRecords (a shard per record by ShardId, else by the
CRC32 of the partition key, else round robin; sequence numbers per shard from 1), SeekShard
and GetRecords, as the official ``v3io`` SDK sends them (checked in tests/test_v3io_sink.py).
Every call is ``<method> /<container>/<stream path>/[<shard>/]`` with ``X-v3io-function`` and
the key in ``X-v3io-session-key``.

Misbehaviour is queued per web-API function (``fail(503, path=PUT_RECORDS)``, ``hang``,
``reset``, ``delay``, inherited from ApiServer); ``record_error_rate`` makes that share of
records fail inside a 200 answer (``FailedRecordCount``), drawn from a seeded generator.

Run standalone (``python tests/v3ioserver.py``) it prints its URL and serves until stdin
closes: the benchmark runs it in its own process.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from apiserver import ApiServer, Request, _Handler, _HTTPServer

PUT_RECORDS = "PutRecords"
MAX_RECORDS = 1000
SEEK_TYPES = ("EARLIEST", "LATEST", "SEQUENCE", "TIME")


@dataclass
class Stream:
    """One stream: its settings and, per shard, the stored records in order."""

    shard_count: int
    retention_hours: int
    shards: list[list[dict]] = field(default_factory=list)
    next_shard: int = 0  # round robin for records with neither ShardId nor PartitionKey


class _V3ioHTTPServer(_HTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of a client opening 8 connections at
    # once (the SDK's batch mode); each dropped one costs a 1 s retransmission.
    request_queue_size = 128

    def __init__(self, api: V3ioServer, address: tuple[str, int]) -> None:
        self.api = api  # type: ignore[assignment]
        ThreadingHTTPServer.__init__(self, address, _V3ioHandler)


class _V3ioHandler(_Handler):
    server: _V3ioHTTPServer

    def _handle(self) -> None:
        api: V3ioServer = self.server.api  # type: ignore[assignment]
        received = time.monotonic()
        path = unquote(urlsplit(self.path).path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        function = headers.get("x-v3io-function", "")
        behaviour, release = api._next_behaviour(function)
        raw = self._read_body()
        req = Request(
            self.command,
            path,
            {},
            headers,
            raw or b"",
            None,
            0,
            received,
            api._conns.get(self.connection, 0),
        )
        if behaviour is not None and behaviour.kind != "delay":
            return self._misbehave(req, behaviour, release)
        if behaviour is not None:
            release.wait(behaviour.seconds)
        if api.latency_s:  # a distant platform: every answer takes this long at least
            release.wait(api.latency_s)
        if raw is None:
            return self._error(req, 413, "RequestEntityTooLarge", f"body over {api.max_body} bytes")
        if api.access_keys is not None and headers.get("x-v3io-session-key") not in api.access_keys:
            return self._error(req, 401, "Unauthorized", "invalid or missing session key")
        try:
            req.json = json.loads(raw) if raw else {}
        except ValueError as exc:
            return self._error(req, 400, "InvalidArgumentException", f"invalid JSON: {exc}")
        handler = getattr(self, f"_fn_{function}", None)
        if handler is None:
            return self._error(req, 400, "InvalidArgumentException", f"no function {function!r}")
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2:
            return self._error(req, 400, "InvalidArgumentException", "no container and path")
        handler(req, api, parts[0], "/".join(parts[1:]))

    def _error(self, req: Request, status: int, code: str, message: str) -> None:
        self._answer(req, status, {"ErrorCode": code, "ErrorMessage": message})

    def _stream(self, req: Request, api: V3ioServer, container: str, path: str) -> Stream | None:
        with api._cond:
            stream = api.streams.get((container, path))
        if stream is None:
            self._error(req, 404, "ResourceNotFoundException", f"no stream {container}/{path}")
        return stream

    def _fn_CreateStream(self, req: Request, api: V3ioServer, container: str, path: str) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        shards, hours = body.get("ShardCount"), body.get("RetentionPeriodHours", 24)
        if not isinstance(shards, int) or shards < 1 or not isinstance(hours, int):
            return self._error(req, 400, "InvalidArgumentException", "ShardCount must be >= 1")
        with api._cond:
            if (container, path) in api.streams:
                exists = True
            else:
                exists = False
                api.streams[(container, path)] = Stream(shards, hours, [[] for _ in range(shards)])
        if exists:
            return self._error(req, 409, "ResourceInUseException", f"{container}/{path} exists")
        self._answer(req, 200)

    def _fn_DescribeStream(self, req: Request, api: V3ioServer, container: str, path: str) -> None:
        stream = self._stream(req, api, container, path)
        if stream is not None:
            self._answer(
                req,
                200,
                {"ShardCount": stream.shard_count, "RetentionPeriodHours": stream.retention_hours},
            )

    def _fn_PutRecords(self, req: Request, api: V3ioServer, container: str, path: str) -> None:
        stream = self._stream(req, api, container, path)
        if stream is None:
            return
        records = req.json.get("Records") if isinstance(req.json, dict) else None
        if not isinstance(records, list) or not records or len(records) > api.max_records:
            return self._error(
                req,
                400,
                "InvalidArgumentException",
                f"Records must hold 1 to {api.max_records} records",
            )
        if not all(isinstance(r, dict) and isinstance(r.get("Data"), str) for r in records):
            return self._error(req, 400, "InvalidArgumentException", "every record needs Data")
        now = time.time()
        sec, nsec = int(now), int((now % 1) * 1e9)
        results, failed = [], 0
        with api._cond:
            for record in records:
                shard = self._shard_of(record, stream)
                if shard is None or api._rng.random() < api.record_error_rate:
                    failed += 1
                    results.append(
                        {
                            "ErrorCode": -1 if shard is None else -2,
                            "ErrorMessage": "invalid ShardId" if shard is None else "shard busy",
                        }
                    )
                    continue
                stored = stream.shards[shard]
                seq = len(stored) + 1
                stored.append(
                    {
                        "SequenceNumber": seq,
                        "Data": record["Data"],
                        "PartitionKey": record.get("PartitionKey"),
                        "ClientInfo": record.get("ClientInfo"),
                        "ArrivalTimeSec": sec,
                        "ArrivalTimeNSec": nsec,
                    }
                    if api.retain
                    else None
                )
                results.append({"SequenceNumber": seq, "ShardId": shard})
        self._answer(req, 200, {"FailedRecordCount": failed, "Records": results})

    @staticmethod
    def _shard_of(record: dict, stream: Stream) -> int | None:
        shard = record.get("ShardId")
        if shard is not None:
            ok = isinstance(shard, int) and 0 <= shard < stream.shard_count
            return shard if ok else None
        key = record.get("PartitionKey")
        if key is not None:
            return zlib.crc32(str(key).encode()) % stream.shard_count
        stream.next_shard = (stream.next_shard + 1) % stream.shard_count
        return stream.next_shard

    def _shard(
        self, req: Request, api: V3ioServer, container: str, path: str
    ) -> tuple[list[dict], int] | None:
        """The records of the shard named by the path's last part, and the shard id."""
        stream_path, _, shard_text = path.rpartition("/")
        stream = self._stream(req, api, container, stream_path)
        if stream is None:
            return None
        if not shard_text.isdigit() or int(shard_text) >= stream.shard_count:
            self._error(req, 404, "ResourceNotFoundException", f"no shard {shard_text!r}")
            return None
        return stream.shards[int(shard_text)], int(shard_text)

    def _fn_SeekShard(self, req: Request, api: V3ioServer, container: str, path: str) -> None:
        found = self._shard(req, api, container, path)
        body = req.json if isinstance(req.json, dict) else {}
        if found is None:
            return
        records, shard = found
        kind = body.get("Type")
        with api._cond:
            if kind == "EARLIEST":
                position = 0
            elif kind == "LATEST":
                position = len(records)
            elif kind == "SEQUENCE":
                seq = body.get("StartingSequenceNumber")
                if not isinstance(seq, int) or not 1 <= seq <= len(records):
                    return self._error(req, 400, "InvalidArgumentException", "no such sequence")
                position = seq - 1
            elif kind == "TIME":
                since = body.get("TimestampSec", 0) + body.get("TimestampNSec", 0) / 1e9
                position = next(
                    (
                        i
                        for i, r in enumerate(records)
                        if r["ArrivalTimeSec"] + r["ArrivalTimeNSec"] / 1e9 >= since
                    ),
                    len(records),
                )
            else:
                return self._error(
                    req,
                    400,
                    "InvalidArgumentException",
                    f"Type must be one of {', '.join(SEEK_TYPES)}",
                )
        self._answer(req, 200, {"Location": _location(shard, position)})

    def _fn_GetRecords(self, req: Request, api: V3ioServer, container: str, path: str) -> None:
        found = self._shard(req, api, container, path)
        if found is None:
            return
        records, shard = found
        body = req.json if isinstance(req.json, dict) else {}
        try:
            position = int(base64.b64decode(str(body.get("Location"))).decode().split(":")[1])
        except (ValueError, IndexError):
            return self._error(req, 400, "InvalidArgumentException", "bad Location")
        limit = body.get("Limit") or 1000
        with api._cond:
            chunk = [
                {k: v for k, v in r.items() if v is not None}
                for r in records[position : position + limit]
            ]
            end = position + len(chunk)
            behind = len(records) - end
        self._answer(
            req,
            200,
            {
                "NextLocation": _location(shard, end),
                "MSecBehindLatest": 0,
                "RecordsBehindLatest": behind,
                "Records": chunk,
            },
        )


def _location(shard: int, position: int) -> str:
    return base64.b64encode(f"{shard}:{position}".encode()).decode()


class V3ioServer(ApiServer):
    """The v3io streaming web API on 127.0.0.1, recording requests, failing on command."""

    def __init__(
        self,
        access_keys: Iterable[str] | None = ("test-access-key",),
        max_body: int = 10_000_000,
        max_records: int = MAX_RECORDS,
        record_error_rate: float = 0.0,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        retain: bool = True,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(access_keys, max_body, host, port)
        self.retain = retain  # False (benchmarks): count records, keep neither data nor requests
        self.latency_s = latency_s
        self.tls = tls  # a server-side context: HTTPS on the same port
        self.max_records = max_records
        self.record_error_rate = record_error_rate  # share of records refused inside a 200
        self._rng = random.Random(seed)
        self.streams: dict[tuple[str, str], Stream] = {}

    @property
    def url(self) -> str:
        """The web-API endpoint, as the SDK takes it."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def api_base(self, container: str = "users", stream: str = "telemetry", query: str = "") -> str:
        """The api_base of isstreamer's v3io sink for a stream of this server."""
        return f"v3io+{self.url}/{container}/{stream}" + (f"?{query}" if query else "")

    def start(self) -> V3ioServer:
        if not self._running:
            httpd = _V3ioHTTPServer(self, (self.host, self.port))
            self.port = httpd.server_address[1]
            if self.tls is not None:  # the handshake runs in accept(); a refused one is skipped
                httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
            self._start_serving(httpd)
        return self

    def _start_serving(self, httpd: _HTTPServer) -> None:
        wake_r, wake_w = socket.socketpair()
        thread = threading.Thread(
            target=self._serve, args=(httpd, wake_r), daemon=True, name=f"V3ioServer:{self.port}"
        )
        self._running = (httpd, thread, wake_w)
        thread.start()

    def create(
        self,
        container: str = "users",
        stream: str = "telemetry",
        shards: int = 1,
        retention_hours: int = 24,
    ) -> Stream:
        """Create a stream directly (as if CreateStream had been called)."""
        with self._cond:
            return self.streams.setdefault(
                (container, stream), Stream(shards, retention_hours, [[] for _ in range(shards)])
            )

    def records(self, container: str = "users", stream: str = "telemetry") -> list[dict]:
        """Every stored record's decoded Data, with ``_shard``, ``_seq`` and ``_partition``."""
        with self._cond:
            found = self.streams.get((container, stream))
            shards = [list(s) for s in found.shards] if found else []
        return [
            dict(
                json.loads(base64.b64decode(r["Data"])),
                _shard=i,
                _seq=r["SequenceNumber"],
                _partition=r["PartitionKey"],
            )
            for i, shard in enumerate(shards)
            for r in shard
        ]

    def count(self, container: str = "users", stream: str = "telemetry") -> int:
        with self._cond:
            found = self.streams.get((container, stream))
            return sum(len(s) for s in found.shards) if found else 0

    def wait_for_records(
        self, n: int, timeout: float = 10.0, container: str = "users", stream: str = "telemetry"
    ) -> bool:
        """Wait until the stream holds at least ``n`` records."""

        def enough() -> bool:
            found = self.streams.get((container, stream))
            return found is not None and sum(len(s) for s in found.shards) >= n

        with self._cond:
            return self._cond.wait_for(enough, timeout)

    def _record(self, request: Request, events: list[dict]) -> None:
        if self.retain:
            super()._record(request, events)
        else:
            with self._cond:  # no list of requests growing through a benchmark
                self._cond.notify_all()

    def calls(self, function: str = PUT_RECORDS) -> list[Request]:
        """The requests to one web-API function, in arrival order."""
        with self._cond:
            return [r for r in self.requests if r.headers.get("x-v3io-function") == function]


def _main(argv: list[str]) -> int:
    """``v3ioserver.py [access key [latency ms]]``."""
    access_keys = argv[1:2] or ["test-access-key"]
    latency_s = float(argv[2]) / 1000 if len(argv) > 2 else 0.0
    with V3ioServer(access_keys=access_keys, retain=False, latency_s=latency_s) as server:
        server.create("bench", "stream", shards=8)
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
