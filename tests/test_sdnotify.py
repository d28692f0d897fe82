"""sd_notify: READY=1 reaches the socket systemd names, and nothing happens without one."""

from __future__ import annotations

import socket
from pathlib import Path

from isstreamer.sdnotify import notify


def test_ready_reaches_the_notify_socket(tmp_path: Path) -> None:
    """The state is one datagram on the path $NOTIFY_SOCKET names."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        assert notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(100) == b"READY=1"


def test_abstract_socket_names_work() -> None:
    """An @name is an abstract socket (what systemd passes inside some containers)."""
    name = f"isstreamer-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        assert notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(100) == b"STOPPING=1"


def test_without_systemd_nothing_is_sent(tmp_path: Path) -> None:
    """No variable, a relative name or a socket nobody listens on: False, never an exception."""
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "relative"})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
