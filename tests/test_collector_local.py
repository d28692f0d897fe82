"""The embedded default (isstreamer.collector.local and the CLI around it): its port from
--collector-port or ISSTREAMER_COLLECTOR_PORT, a free port when another program has the
default one, and "open <url>" only while something keeps listening there."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from isstreamer.collector import default_db_path, local_collector
from isstreamer.collector.routes import SERVICE

# Whatever local_collector starts in this process is stopped after each test (conftest).
pytestmark = pytest.mark.usefixtures("stop_embedded_collectors")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def foreign_port() -> Iterator[int]:
    """A port where something that is not a collector answers every connection with "hi"."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    listener.close()


def test_a_foreign_program_on_the_default_port_gives_way_to_a_free_one(foreign_port: int) -> None:
    """With fallback, the collector starts on a free port, says so in its URL, and is reused."""
    found = local_collector(port=foreign_port, fallback=True)
    assert found.in_process and not found.url.endswith(f":{foreign_port}")
    health = requests.get(found.url + "/api/health", timeout=10).json()
    assert health["service"] == SERVICE
    assert local_collector(port=foreign_port, fallback=True) == found


def test_a_chosen_port_taken_by_a_foreign_program_is_an_error(foreign_port: int) -> None:
    """Without fallback (a port the user chose), the foreign program is reported."""
    with pytest.raises(RuntimeError, match="not as an isstreamer collector"):
        local_collector(port=foreign_port)


def run_cli(*args: str, port: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ISSTREAMER_COLLECTOR_PORT=str(port))
    cmd = [sys.executable, "-m", "isstreamer", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def test_log_says_where_the_data_went_and_how_to_see_it() -> None:
    """`isstreamer log` ends its collector, so it names the database and `isstreamer serve`,
    never "open http://..."."""
    port = free_port()
    done = run_cli("log", "door", "open", port=port)
    assert done.returncode == 0, done.stderr
    assert "open http" not in done.stderr
    assert str(default_db_path()) in done.stderr
    assert f"isstreamer serve --port {port}" in done.stderr


def test_a_running_collector_is_reused_and_named() -> None:
    """With a collector serving the port, log streams to it and says "open <its url>"."""
    port = free_port()
    found = local_collector(port=port)  # serving in this process, as `isstreamer serve` would
    done = run_cli("log", "t", "1", port=port)
    assert done.returncode == 0, done.stderr
    assert f"open {found.url}" in done.stderr
    keys = requests.get(found.url + "/api/buckets", timeout=10).json()
    assert keys and keys[0]["events"] == 1


@pytest.mark.slow
def test_bad_collector_port_is_a_configuration_error() -> None:
    """A port that is not a number from 1 to 65535 stops the command with exit status 2."""
    done = run_cli("log", "t", "1", port=0)  # 0 through the environment: not a port to use
    assert "port" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "isstreamer", "log", "t", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, ISSTREAMER_COLLECTOR_PORT="http"),
    )
    assert done.returncode == 2 and "ISSTREAMER_COLLECTOR_PORT" in done.stderr


@pytest.mark.slow
def test_metrics_serves_while_it_runs_and_says_open() -> None:
    """`isstreamer metrics` keeps its collector up, so "open <url>" is true while it runs."""
    port = free_port()
    env = dict(os.environ, ISSTREAMER_COLLECTOR_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "isstreamer", "metrics", "--interval", "60"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"open (http://\S+)", line)
        assert match, line
        assert match.group(1) == f"http://127.0.0.1:{port}"
        assert requests.get(match.group(1) + "/api/health", timeout=10).status_code == 200
        # The first sample arrives once metrics is in its loop, with its signal handlers set.
        deadline = time.monotonic() + 30
        while not requests.get(match.group(1) + "/api/buckets", timeout=10).json():
            assert time.monotonic() < deadline, "no sample arrived"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
