"""The request watchdog: it cuts the connection of a request still running at its deadline."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from isstreamer.sinks.deadline import Watchdog, watched


@dataclass
class Conn:
    """What the watchdog needs of a urllib3 connection: its socket."""

    sock: socket.socket | None


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected socket pair: (the request's end, the server's end)."""
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    """A watchdog on the real monotonic clock, closed after the test."""
    w = Watchdog()
    yield w
    w.close()


def test_blocked_read_is_woken_at_the_deadline(watchdog: Watchdog, pair: tuple) -> None:
    """A receive that would block forever returns (end of stream) once the deadline passes."""
    mine, _server = pair
    mine.settimeout(30)
    watchdog.arm(0.05)
    watchdog.attach(Conn(mine))
    assert mine.recv(10) == b""  # shut down, not timed out: the 30 s socket timeout never ran
    assert watchdog.disarm() is True


def test_request_done_in_time_is_left_alone(watchdog: Watchdog, pair: tuple) -> None:
    """A request disarmed before its deadline reports False and keeps its connection usable."""
    mine, server = pair
    watchdog.arm(30)
    watchdog.attach(Conn(mine))
    assert watchdog.disarm() is False
    server.sendall(b"x")
    mine.sendall(b"y")
    assert (mine.recv(1), server.recv(1)) == (b"x", b"y")


def test_deadline_passed_while_connecting_cuts_on_attach(pair: tuple) -> None:
    """A deadline that passed before the socket existed cuts it as soon as it is attached."""
    readings = [0.0]  # arm() reads 0; every later reading is 100 s on: the deadline is past

    def clock() -> float:
        return readings.pop() if readings else 100.0

    watchdog = Watchdog(clock=clock)
    try:
        watchdog.arm(1.0)
        watchdog.attach(Conn(None))  # still connecting: no socket to cut yet
        request = watchdog._armed[threading.get_ident()]
        with watchdog._cond:  # the watchdog thread sees the deadline passed
            assert watchdog._cond.wait_for(lambda: request.fired, timeout=10)
        mine, _server = pair
        mine.settimeout(30)
        watchdog.attach(Conn(mine))  # connected at last
        assert mine.recv(1) == b""
        assert watchdog.disarm() is True
    finally:
        watchdog.close()


def test_attach_without_arm_does_nothing(watchdog: Watchdog, pair: tuple) -> None:
    """A connection used with no deadline armed is never cut."""
    mine, server = pair
    watchdog.attach(Conn(mine))
    assert watchdog.disarm() is False
    server.sendall(b"x")
    assert mine.recv(1) == b"x"


def test_works_in_a_forked_child(watchdog: Watchdog) -> None:
    """After fork the child starts its own watchdog thread and still cuts at the deadline."""
    watchdog.arm(30)
    assert watchdog.disarm() is False  # the parent's thread is running
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if the deadline still works here
        code = 1
        try:
            a, _b = socket.socketpair()
            a.settimeout(10)
            watchdog.arm(0.05)
            watchdog.attach(Conn(a))
            code = 0 if a.recv(1) == b"" and watchdog.disarm() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_watched_connection_class_reports_itself(watchdog: Watchdog) -> None:
    """watched() subclasses a connection class so that connect() and request() attach it."""
    seen: list[str] = []

    class Base:
        sock = None

        def connect(self) -> None:
            seen.append("connect")

        def request(self, *args: object, **kwargs: object) -> str:
            seen.append("request")
            return "sent"

    conn = watched(Base, watchdog)()
    watchdog.arm(30)
    request = watchdog._armed[threading.get_ident()]
    assert conn.request("POST", "/") == "sent"
    assert request.conn is conn
    conn.connect()
    assert seen == ["request", "connect"] and request.conn is conn
    assert watchdog.disarm() is False


def test_threads_have_their_own_deadlines(watchdog: Watchdog) -> None:
    """Two threads sharing a watchdog: only the one past its deadline is cut."""
    slow, slow_server = socket.socketpair()
    fast, fast_server = socket.socketpair()
    results: dict[str, object] = {}
    fast_armed = threading.Event()
    slow_done = threading.Event()

    def fast_request() -> None:
        watchdog.arm(30)
        watchdog.attach(Conn(fast))
        fast_armed.set()
        slow_done.wait(10)  # still in flight while the slow one is cut
        fast_server.sendall(b"x")
        results["fast"] = (fast.recv(1), watchdog.disarm())

    thread = threading.Thread(target=fast_request)
    thread.start()
    try:
        assert fast_armed.wait(10)
        slow.settimeout(30)
        watchdog.arm(0.05)
        watchdog.attach(Conn(slow))
        results["slow"] = (slow.recv(1), watchdog.disarm())
    finally:
        slow_done.set()
        thread.join(10)
        for s in (slow, slow_server, fast, fast_server):
            s.close()
    assert results == {"slow": (b"", True), "fast": (b"x", False)}
