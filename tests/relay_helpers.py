"""What the relay tests share: devices writing to Redis, the relay as a process or in this one,
the events API it delivers to, and waiting for what arrived."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from apiserver import ApiServer
from rediscluster import require
from redisserver import REDIS_SERVER, RedisServer

import isstreamer
from isstreamer.cli import main
from isstreamer.sinks.base import Bucket

redis = pytest.importorskip("redis")

ACCESS_KEY = "test-access-key"
GROUP = "relays"


@pytest.fixture(name="server")
def server_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone redis-server on a free port, killed after the test."""
    require(REDIS_SERVER is not None, "redis-server is not on PATH (apt-get install redis-server)")
    with RedisServer(tmp_path / "redis") as srv:
        yield srv


def device_events(n: int, start: int = 0) -> list[tuple]:
    """Readings with distinct (key, epoch) pairs and values of every JSON type."""
    values = [21.5, True, "on", 42, False, -3]
    return [
        (f"sensor{i % 5}", values[i % len(values)], 1_700_000_000.0 + i / 1000)
        for i in range(start, start + n)
    ]


def write(url: str, buckets: list[str], per_bucket: int, start: int = 0) -> None:
    """What a fleet of devices writes: per_bucket events to each bucket's stream."""
    if url.startswith("redis+cluster"):
        from isstreamer.sinks.redis_cluster import RedisClusterSink as sink_type
    else:
        from isstreamer.sinks.redis import RedisSink as sink_type
    sink = sink_type(url, timeout=5)
    try:
        for bucket in buckets:
            for offset in range(start, start + per_bucket, 500):
                batch = device_events(min(500, start + per_bucket - offset), offset)
                assert sink.send(Bucket(bucket, bucket.upper()), batch).ok
    finally:
        sink.close()


def pairs(api: ApiServer, bucket: str) -> list[tuple]:
    """(key, epoch) of every event the receiver accepted for bucket."""
    return [(e["key"], e["epoch"]) for e in api.events_for(bucket)]


def expected(per_bucket: int) -> Counter:
    return Counter((k, e) for k, _, e in device_events(per_bucket))


def relay_env(api: ApiServer, spool: Path) -> dict[str, str]:
    return dict(
        os.environ,
        ISSTREAMER_API_BASE=api.url,
        ISSTREAMER_ACCESS_KEY=ACCESS_KEY,
        ISSTREAMER_SPILL_DIR=str(spool),
    )


def relay_args(url: str, *args: str) -> list[str]:
    return ["relay", "--from", url, "--group", GROUP, *args]


def relay_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "isstreamer", *relay_args(url, *args)]


@dataclass
class Done:
    """What a run of the command left: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(env: dict[str, str], *argv: str) -> Done:
    """`isstreamer ARGV` in this process, with ``env`` as its whole environment (fast: no
    interpreter to start). Relays that must be signalled or killed run as processes instead."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Done(code, out.getvalue(), err.getvalue())


def run_relay(api: ApiServer, spool: Path, url: str, *args: str) -> Done:
    """`isstreamer relay --once ...` to the end; its exit status is asserted by the caller."""
    return run_cli(relay_env(api, spool), *relay_args(url, "--once", *args))


def start_relay(api: ApiServer, spool: Path, url: str, *args: str) -> subprocess.Popen:
    """A long-running relay subprocess; stderr goes to a file beside its spool."""
    spool.mkdir(parents=True, exist_ok=True)
    err = open(spool.parent / f"{spool.name}.stderr", "w")  # noqa: SIM115 (closed with the proc)
    proc = subprocess.Popen(
        relay_cmd(url, "--block-ms", "100", *args),
        env=relay_env(api, spool),
        stdout=subprocess.DEVNULL,
        stderr=err,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    err.close()
    return proc


def stderr_of(spool: Path) -> str:
    return (spool.parent / f"{spool.name}.stderr").read_text()


def consumer_names(server: RedisServer) -> set[str]:
    """The consumers of the group on pi0's stream; none before a relay has made the group."""
    try:
        consumers = server.client().xinfo_consumers("isstreamer:pi0", GROUP)
    except redis.exceptions.ResponseError:  # NOGROUP
        return set()
    return {c["name"] for c in consumers}


def pending(client: Any, buckets: list[str]) -> int:
    """Entries read by some relay of the group and not acknowledged yet."""
    total = 0
    for bucket in buckets:
        try:
            total += client.xpending(f"isstreamer:{bucket}", GROUP)["pending"]
        except redis.ResponseError:  # no group yet
            return -1
    return total


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Wait until condition() holds (checked every 50 ms) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def delivered(api: ApiServer, client: Any, buckets: list[str], per_bucket: int) -> Callable:
    """A condition: every bucket's events arrived (duplicates allowed) and nothing is pending."""
    want = set(expected(per_bucket))

    def check() -> bool:
        return all(set(pairs(api, b)) >= want for b in buckets) and pending(client, buckets) == 0

    return check


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


def fast_policy() -> Any:
    """Retries and probes in milliseconds, so a receiver outage takes no test time."""
    return isstreamer.RetryPolicy(
        attempts=2, initial_wait=0.01, max_wait=0.05, jitter=0.0, probe_initial=0.05, probe_max=0.2
    )


def in_process_relay(url: str, api: ApiServer, spool: Path, **options: Any) -> Any:
    """A Relay in this process (its Streamer with fast retries) and its stop Event."""
    from isstreamer.relay import Relay, RelayOptions
    from isstreamer.relay_source import Source, connect

    make_client, prefix, is_cluster = connect(url, block_ms=options.get("block_ms", 100))
    source = Source(
        make_client(),
        prefix=prefix,
        group=GROUP,
        consumer=options.pop("consumer", "r1"),
        cluster=is_cluster,
    )
    streamer = isstreamer.Streamer(
        bucket_key="relay",
        api_base=api.url,
        access_key=ACCESS_KEY,
        spill_dir=str(spool),
        buffer_size=1000,
        retry_policy=fast_policy(),
    )
    options.setdefault("block_ms", 100)
    return Relay(source, streamer, RelayOptions(**options))


@pytest.fixture(name="api")
def api_fixture() -> Iterator[ApiServer]:
    """The local events API server accepting ACCESS_KEY."""
    with ApiServer(access_keys=(ACCESS_KEY,)) as srv:
        yield srv
