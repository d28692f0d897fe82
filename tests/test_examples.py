"""Every example_app/ script runs against the local events server and its data arrives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from apiserver import ApiServer

EXAMPLES = Path(__file__).resolve().parent.parent / "example_app"


@pytest.fixture
def env(api_server: ApiServer, access_key: str, tmp_path: Path) -> dict[str, str]:
    """The configuration every example reads: the test server, its key, a private spool."""
    return dict(
        os.environ,
        ISSTREAMER_API_BASE=api_server.url,
        ISSTREAMER_ACCESS_KEY=access_key,
        ISSTREAMER_SPILL_DIR=str(tmp_path / "spool"),
    )


def run_example(env: dict[str, str], script: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(  # noqa: PLW1510 (the exit status is asserted)
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def keys(server: ApiServer, bucket: str) -> list[str]:
    return [e["key"] for e in server.events_for(bucket)]


def test_compute_metrics(env: dict[str, str], api_server: ApiServer) -> None:
    """compute_metrics.py logs psutil's namedtuples, so memory, swap, disk and network arrive."""
    run_example(env, "compute_metrics.py", "--iterations", "2", "--interval", "0")
    got = set(keys(api_server, "compute-metrics-example"))
    assert {
        "cpu_total",
        "cpu_0",
        "mem_percent",
        "mem_available",
        "swap_total",
        "disk_root_percent",
        "net_bytes_recv",
        "process_count",
    } <= got
    assert keys(api_server, "compute-metrics-example").count("mem_percent") == 2


def test_sensor_loop(env: dict[str, str], api_server: ApiServer) -> None:
    """sensor_loop.py sends each iteration's readings, plus one back-dated reading first."""
    run_example(env, "sensor_loop.py", "--iterations", "3", "--interval", "0")
    events = api_server.events_for("sensor-loop-example")
    assert [e["key"] for e in events].count("temperature_c") == 4
    assert events[0]["epoch"] < events[1]["epoch"] - 50  # the time override
    assert {type(e["value"]) for e in events if e["key"] == "heater_on"} == {bool}


def test_object_logging(env: dict[str, str], api_server: ApiServer) -> None:
    """object_logging.py flattens dicts, lists, namedtuples, dataclasses and objects."""
    done = run_example(env, "object_logging.py")
    got = set(keys(api_server, "object-logging-example"))
    assert {
        "shop_visitors",
        "channel_2",
        "Reading_temperature",
        "battery_cells_1",
        "beaufort",
        "garden_outside_temp",
    } <= got
    assert "skipped_sensor" not in got and "1 invalid skipped" in done.stdout


def test_offline_then_replay(env: dict[str, str], api_server: ApiServer) -> None:
    """offline_then_replay.py records a CSV offline, then replays it with its own timestamps."""
    run_example(env, "offline_then_replay.py", "--count", "4")
    events = api_server.events_for("offline-replay-example")
    assert len(events) == 12
    assert [e["value"] for e in events if e["key"] == "pump_running"] == [True, False, False, True]
    assert sorted(e["epoch"] for e in events) == [e["epoch"] for e in events]


@pytest.mark.slow
def test_read_csv(env: dict[str, str], api_server: ApiServer, tmp_path: Path) -> None:
    """read_csv.py backfills the built-in sample and a given file with each row's own time."""
    run_example(env, "read_csv.py")
    assert keys(api_server, "read-csv-example").count("temperature_c") == 12
    data = tmp_path / "logger.csv"
    data.write_text("timestamp,level_cm,pump\n1790000000,12.5,on\n1790000060,12,off\n")
    run_example(env, "read_csv.py", str(data), "--time-column", "timestamp", "--bucket-key", "tank")
    assert [(e["key"], e["value"], e["epoch"]) for e in api_server.events_for("tank")] == [
        ("level_cm", 12.5, 1790000000.0),
        ("pump", "on", 1790000000.0),
        ("level_cm", 12, 1790000060.0),
        ("pump", "off", 1790000060.0),
    ]


@pytest.mark.slow
def test_redis_consumer_survives_an_idle_read_with_its_default_block(tmp_path: Path) -> None:
    """redis_consumer.py with its defaults (BLOCK 5000) waits out an idle read, then exits 0."""
    pytest.importorskip("redis")
    from redisserver import REDIS_SERVER, RedisServer

    if REDIS_SERVER is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not on PATH (CI=true: required)")
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    from isstreamer.sinks.base import Bucket
    from isstreamer.sinks.redis import RedisSink

    with RedisServer(tmp_path / "redis") as server:
        sink = RedisSink(server.url)
        assert sink.send(
            Bucket("pi1"), [("temp", 20.0 + i, 1_700_000_000.0 + i) for i in range(10)]
        ).ok
        sink.close()
        env = dict(os.environ, REDIS_URL=server.url)
        done = run_example(env, "redis_consumer.py", "--bucket", "pi1", "--from-start", "--once")
        assert len(done.stdout.splitlines()) == 10 and "temp=29.0 (float)" in done.stdout
        assert server.client().xpending("isstreamer:pi1", "isstreamer-consumers")["pending"] == 0
