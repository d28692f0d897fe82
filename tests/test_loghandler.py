"""StreamerHandler: Python logging records as events, against the local events server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from isstreamer import StreamerHandler


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A fresh application logger that does not propagate to the test's root handlers."""
    logger = logging.getLogger("app.sensor")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_record_becomes_message_and_level_events(make_streamer, api_server, app_logger):
    """A warning arrives as <logger> = message and <logger>_level = WARNING, at its time."""
    streamer = make_streamer()
    app_logger.addHandler(StreamerHandler(streamer))
    app_logger.warning("pump %s stalled", 3)
    assert streamer.flush(10)
    got = {e["key"]: e for e in api_server.events}
    assert got["app.sensor"]["value"] == "pump 3 stalled"
    assert got["app.sensor_level"]["value"] == "WARNING"
    assert got["app.sensor"]["epoch"] == got["app.sensor_level"]["epoch"]


def test_level_and_fixed_key(make_streamer, api_server, app_logger):
    """Records below the handler's level are not sent; a given key replaces the logger name."""
    streamer = make_streamer()
    app_logger.addHandler(StreamerHandler(streamer, level=logging.WARNING, key="events"))
    app_logger.info("not sent")
    app_logger.error("sent")
    assert streamer.flush(10)
    assert [(e["key"], e["value"]) for e in api_server.events] == [
        ("events", "sent"),
        ("events_level", "ERROR"),
    ]


def test_rate_limit_per_key_reports_what_was_suppressed(make_streamer, api_server, app_logger):
    """Past its burst a key is held back; the next record passing says how many were not sent."""
    clock = FakeClock()
    streamer = make_streamer()
    handler = StreamerHandler(streamer, rate_per_s=1.0, burst=2, clock=clock)
    app_logger.addHandler(handler)
    for i in range(5):
        app_logger.warning("m%d", i)
    assert handler.suppressed == 3
    clock.now += 1.0
    app_logger.warning("later")
    assert streamer.flush(10)
    values = [e["value"] for e in api_server.events if e["key"] == "app.sensor"]
    assert values == ["m0", "m1", "(3 earlier messages suppressed) later"]


def test_own_records_never_sent(make_streamer, api_server):
    """The agent's own log records are never turned into events, even with the handler on root."""
    streamer = make_streamer()
    handler = StreamerHandler(streamer)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("isstreamer").warning("agent talking")
        logging.getLogger("isstreamer.sub").warning("agent talking too")
        logging.getLogger("app").warning("app talking")
        assert streamer.flush(10)
    finally:
        root.removeHandler(handler)
    assert {e["value"] for e in api_server.events} == {"app talking", "WARNING"}


def test_safe_from_many_threads(make_streamer, api_server, app_logger):
    """Records from eight threads at once all arrive, none twice."""
    streamer = make_streamer(buffer_size=50)
    app_logger.addHandler(StreamerHandler(streamer, rate_per_s=1e6, burst=10_000))

    def work(n: int) -> None:
        for i in range(100):
            app_logger.info("t%d-%d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert streamer.flush(10)
    values = [e["value"] for e in api_server.events if e["key"] == "app.sensor"]
    assert len(values) == 800 and len(set(values)) == 800


def test_long_message_and_logger_name_are_cut_to_the_limits(make_streamer, api_server):
    """A 5,000-character message and a 300-character logger name still make valid events."""
    streamer = make_streamer()
    logger = logging.getLogger("x" * 300)
    logger.propagate = False
    handler = StreamerHandler(streamer)
    logger.addHandler(handler)
    try:
        logger.warning("y" * 5000)
        assert streamer.flush(10)
    finally:
        logger.removeHandler(handler)
    message = next(e for e in api_server.events if not e["key"].endswith("_level"))
    assert len(message["value"]) == 2000 and len(message["key"]) <= 250
    assert streamer.stats()["invalid"] == 0


def test_records_carry_default_epochs_that_a_clock_step_may_move(app_logger):
    """A record's time is the call's: queued as a plain (default) epoch, not a given one."""
    from isstreamer import Streamer

    streamer = Streamer(bucket_key="b", offline=True)
    app_logger.addHandler(StreamerHandler(streamer))
    app_logger.warning("x")
    epochs = [item[2] for item in streamer._buffer.items]
    assert len(epochs) == 2 and all(type(epoch) is float for epoch in epochs)
    streamer.close(1)
