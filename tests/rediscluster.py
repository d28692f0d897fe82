"""A real 3-node Redis Cluster on 127.0.0.1 for tests: three redis-server processes, no replicas.

Test modules take the fixtures ``cluster`` and ``clean_cluster`` by name (conftest imports them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redisserver import REDIS_SERVER, RedisServer, free_port

REDIS_CLI = shutil.which("redis-cli")
BUS_OFFSET = 10_000  # Redis Cluster's node-to-node bus listens on port + 10000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + BUS_OFFSET < 65_536 and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """Three cluster-enabled redis-servers joined by ``redis-cli --cluster create``.

    Nodes keep an append-only file fsync'd on every write, so a node killed with SIGKILL and
    started again on its port comes back with its data and its slots (nodes.conf).
    """

    def __init__(self, directory: Path, nodes: int = 3) -> None:
        if REDIS_CLI is None:
            raise RuntimeError("redis-cli is not on PATH (Debian: apt-get install redis-tools)")
        self.directory = Path(directory)
        self.nodes = [
            RedisServer(
                self.directory / f"node{i}",
                port=cluster_port(),
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    # A dead node is noticed within a second: "cluster down" tests stay short.
                    "--cluster-node-timeout",
                    "1000",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ],
            )
            for i in range(nodes)
        ]

    @property
    def url(self) -> str:
        """The sink's URL naming every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes) + "/"

    def start(self, timeout: float = 30.0) -> RedisCluster:
        """Start the nodes, assign the 16384 slots across them, wait until the cluster is ok."""
        for node in self.nodes:
            node.start()
        done = subprocess.run(
            [
                str(REDIS_CLI),
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            self.kill()
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        self.wait_ok(timeout)
        return self

    def state(self, node: RedisServer) -> str:
        """CLUSTER INFO's cluster_state as one node sees it ('ok', 'fail', or 'down')."""
        try:
            info = node.client(socket_timeout=2).execute_command("CLUSTER INFO")
        except Exception:
            return "down"
        if isinstance(info, dict):  # redis-py parses CLUSTER INFO into a dict
            return str(info.get("cluster_state", "unknown"))
        for line in str(info).splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running node says cluster_state:ok."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.state(n) == "ok" for n in self.nodes if n.running):
                return
            time.sleep(0.05)
        raise RuntimeError(
            "the cluster did not reach cluster_state:ok: "
            + "; ".join(n.log_tail(5) for n in self.nodes)
        )

    def wait_state(self, node: RedisServer, state: str, timeout: float = 30.0) -> None:
        """Wait until ``node`` reports ``state`` (e.g. 'fail' once another node died)."""
        deadline = time.monotonic() + timeout
        while self.state(node) != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {node.port} never reached cluster_state:{state}")
            time.sleep(0.05)

    def client(self, **kwargs: Any) -> Any:
        """A redis-py RedisCluster client decoding replies to str."""
        import redis.cluster

        kwargs.setdefault("decode_responses", True)
        return redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", n.port) for n in self.nodes],
            **kwargs,
        )

    def node_for(self, key: str) -> RedisServer:
        """The node serving ``key``'s hash slot."""
        client = self.client()
        try:
            node = client.get_node_from_key(key)
            return next(n for n in self.nodes if n.port == node.port)
        finally:
            client.close()

    def flush(self) -> None:
        """Empty every node (FLUSHALL), keeping the slot layout."""
        for node in self.nodes:
            node.client().flushall()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real 3-node Redis Cluster (no replicas), started once per test module that uses it."""
    pytest.importorskip("redis")
    if REDIS_CLI is None or REDIS_SERVER is None:
        require(False, "redis-server and redis-cli are needed (apt-get install redis-server)")
    started = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield started
    finally:
        started.kill()


@pytest.fixture
def clean_cluster(cluster: RedisCluster) -> RedisCluster:
    """The module's cluster with every node up, the cluster ok, and no keys."""
    for node in cluster.nodes:
        node.start()
    cluster.wait_ok()
    cluster.flush()
    return cluster


def require(ok: bool, reason: str) -> None:
    """Skip without the Debian packages on a laptop; fail on CI, where they must be there."""
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: required)")
        pytest.skip(reason)
