"""The relay's Redis side (relay_source.py): consumer groups, claims, trimming, status, Cluster."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer
from redisserver import RedisServer
from relay_helpers import (  # noqa: F401 (the server and api fixtures)
    GROUP,
    api_fixture,
    consumer_names,
    delivered,
    device_events,
    expected,
    pairs,
    pending,
    relay_args,
    relay_env,
    run_cli,
    run_relay,
    server_fixture,
    start_relay,
    stderr_of,
    stop,
    wait_for,
    write,
)


@pytest.mark.slow
def test_two_relays_share_a_group_and_deliver_each_entry_once(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """Two relays of one group split the work while devices write: no loss, no duplicate."""
    buckets = [f"pi{i}" for i in range(4)]
    write(server.url, buckets, 500)
    relays = [
        start_relay(
            api, tmp_path / f"spool{i}", server.url, "--consumer", f"r{i}", "--batch", "200"
        )
        for i in range(2)
    ]
    try:
        # Both have read the group before the devices go on (a relay slow to start would
        # otherwise find nothing left, which proves nothing about sharing).
        assert wait_for(lambda: consumer_names(server) == {"r0", "r1"}, 30)
        write(server.url, buckets, 2500, 500)
        assert wait_for(delivered(api, server.client(), buckets, 3000), 60)
    finally:
        codes = [stop(p) for p in relays]
    assert codes == [0, 0]
    for bucket in buckets:
        assert Counter(pairs(api, bucket)) == expected(3000), bucket


@pytest.mark.slow
def test_sigkill_of_one_relay_the_other_reclaims_its_entries(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """A relay killed with SIGKILL mid-stream loses nothing: the other claims its pending entries;
    duplicates stay within the killed relay's unacknowledged window (2 reads of --batch)."""
    buckets = ["pi0", "pi1"]
    batch = 200
    api.delay(0.05, times=None)  # a slow receiver: the victim always has reads in flight
    victim = start_relay(
        api, tmp_path / "spool0", server.url, "--consumer", "victim", "--batch", str(batch)
    )
    client = server.client()
    write(server.url, buckets, 3000)
    assert wait_for(lambda: 0 < len(api.events) and pending(client, buckets) > 0, 30)
    victim.kill()
    victim.wait(10)
    left = pending(client, buckets)
    assert left > 0
    api.clear()
    survivor = start_relay(
        api,
        tmp_path / "spool1",
        server.url,
        "--consumer",
        "survivor",
        "--claim-idle",
        "0.5",
        "--batch",
        str(batch),
    )
    try:
        assert wait_for(delivered(api, client, buckets, 3000), 60), stderr_of(tmp_path / "spool1")
    finally:
        assert stop(survivor) == 0
    claimed = int(stderr_of(tmp_path / "spool1").split("claimed ")[1].split(",")[0])
    assert claimed == left  # exactly the victim's pending entries were taken over
    total = sum(len(api.events_for(b)) for b in buckets)
    duplicates = total - 2 * 3000
    assert 0 <= duplicates <= 2 * batch, duplicates
    for bucket in buckets:
        assert set(Counter(pairs(api, bucket))) == set(expected(3000))
    victim_entries = [
        c for c in client.xinfo_consumers("isstreamer:pi0", GROUP) if c["name"] == "victim"
    ]
    assert victim_entries and victim_entries[0]["pending"] == 0


@pytest.mark.slow
def test_trim_removes_what_every_group_has_processed(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """--trim drops relayed entries, but never ones another group has not processed yet."""
    write(server.url, ["pi0"], 1000)
    client = server.client()
    client.xgroup_create("isstreamer:pi0", "dashboards", id="0")
    client.xreadgroup("dashboards", "d1", {"isstreamer:pi0": ">"}, count=400)
    oldest_needed = client.xpending("isstreamer:pi0", "dashboards")["min"]
    done = run_relay(api, tmp_path / "spool", server.url, "--trim")
    assert done.returncode == 0, done.stderr
    assert len(api.events_for("pi0")) == 1000
    assert client.xlen("isstreamer:pi0") == 1000  # the dashboards group still needs them all
    client.xgroup_destroy("isstreamer:pi0", "dashboards")
    write(server.url, ["pi0"], 10, 1000)
    done = run_relay(api, tmp_path / "spool", server.url, "--trim")
    assert done.returncode == 0, done.stderr
    assert client.xlen("isstreamer:pi0") <= 1  # at most the last delivered entry is kept
    assert oldest_needed


def test_status_prints_pending_and_lag_per_stream(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """--status shows length, pending, lag and consumers of the group for every bucket stream."""
    write(server.url, ["pi0", "pi1"], 100)
    client = server.client()
    client.xgroup_create("isstreamer:pi0", GROUP, id="0")
    client.xreadgroup(GROUP, "r9", {"isstreamer:pi0": ">"}, count=30)
    done = run_cli(relay_env(api, tmp_path / "s"), *relay_args(server.url, "--status"))
    assert done.returncode == 0, done.stderr
    rows = {r["stream"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert rows["isstreamer:pi0"]["pending"] == 30 and rows["isstreamer:pi0"]["lag"] == 70
    assert rows["isstreamer:pi1"] == {"stream": "isstreamer:pi1", "length": 100}
    assert api.events == []


def test_cluster_devices_across_slots_relayed_by_two_relays(
    clean_cluster: Any,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """Buckets on all three nodes, two relays reading the cluster: each event arrives once."""
    buckets = [f"pi{i}" for i in range(9)]
    write(clean_cluster.url, buckets, 600)
    assert len({clean_cluster.node_for(f"isstreamer:{b}").port for b in buckets}) == 3
    relays = [
        start_relay(
            api, tmp_path / f"spool{i}", clean_cluster.url, "--consumer", f"r{i}", "--batch", "300"
        )
        for i in range(2)
    ]
    try:
        assert wait_for(delivered(api, clean_cluster.client(), buckets, 600), 60)
    finally:
        codes = [stop(p) for p in relays]
    assert codes == [0, 0]
    for bucket in buckets:
        assert Counter(pairs(api, bucket)) == expected(600), bucket


def test_cluster_node_killed_while_relaying_then_back(
    clean_cluster: Any,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """A node dies mid-relay: the other nodes' buckets keep flowing; back, its bucket completes."""
    buckets = [f"pi{i}" for i in range(6)]
    write(clean_cluster.url, buckets, 300)
    victim = clean_cluster.node_for("isstreamer:pi0")
    others = [b for b in buckets if clean_cluster.node_for(f"isstreamer:{b}") is not victim]
    on_victim = [b for b in buckets if b not in others]
    spool = tmp_path / "spool"
    proc = start_relay(api, spool, clean_cluster.url)
    try:
        assert wait_for(delivered(api, clean_cluster.client(), buckets, 300), 60)
        victim.kill()
        write(clean_cluster.url, others, 300, 300)  # devices on the live nodes go on
        assert wait_for(lambda: all(len(api.events_for(b)) == 600 for b in others), 60), stderr_of(
            spool
        )
        victim.start()
        clean_cluster.wait_ok()
        write(clean_cluster.url, buckets, 300, 600)
        assert wait_for(
            lambda: (
                all(len(api.events_for(b)) == 900 for b in others)
                and all(len(api.events_for(b)) == 600 for b in on_victim)
            ),
            60,
        ), stderr_of(spool)
    finally:
        assert stop(proc) == 0
    assert "streams unreadable" in stderr_of(spool)
    client = clean_cluster.client()
    assert pending(client, buckets) == 0
    for bucket in others:
        assert Counter(pairs(api, bucket)) == expected(900)
    for bucket in on_victim:
        assert Counter(pairs(api, bucket)) == Counter(
            (k, e) for k, _, e in device_events(300) + device_events(300, 600)
        )
