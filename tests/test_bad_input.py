"""Odd input end to end: random keys, values and epochs through validation, the Streamer and
the real collector. No exception in non-strict mode, every valid event delivered, every
invalid one counted; strict mode raises InvalidEvent for the same inputs."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from isstreamer import InvalidEvent, Streamer
from isstreamer.collector import Collector
from isstreamer.events import (
    EPOCH_MAX_S,
    EPOCH_MIN_S,
    INT_MAX,
    INT_MIN,
    MAX_KEY_CHARS,
    MAX_STRING_CHARS,
    FixedEpoch,
    make_event,
)
from isstreamer.sinks.lean import encode_events

KEY = "bad-input-test-key"
UTC = dt.timezone.utc


def assert_receivable(event: tuple[Any, Any, Any]) -> None:
    """What make_event returns is something every receiver can store."""
    key, value, epoch = event
    assert type(key) is str and 0 < len(key) <= MAX_KEY_CHARS
    key.encode("utf-8")  # raises for a lone surrogate
    assert type(value) in (bool, int, float, str)
    if type(value) is int:
        assert INT_MIN <= value <= INT_MAX
    elif type(value) is float:
        assert math.isfinite(value)
    elif type(value) is str:
        assert len(value) <= MAX_STRING_CHARS
        value.encode("utf-8")
    # A given epoch is a FixedEpoch (a float that a clock step never moves).
    assert type(epoch) in (float, FixedEpoch) and EPOCH_MIN_S <= epoch < EPOCH_MAX_S
    body = encode_events([event])  # the HTTP sink's encoder, as strict as json.dumps
    assert json.loads(body)[0]["key"] == key


def check(key: Any, value: Any, epoch: Any) -> bool:
    """True when valid (and then receivable); False when InvalidEvent; anything else fails."""
    try:
        event = make_event(key, value, epoch)
    except InvalidEvent:
        return False
    assert_receivable(event)
    return True


# ---- hypothesis: make_event over everything odd ------------------------------------------

texts = st.text(alphabet=st.characters(), max_size=300) | st.sampled_from(
    ["caf\udcff", "\ud800", "t\ud83d\ude00", "", "k" * 251, "é" * 2001]
)
ints = st.integers() | st.sampled_from([INT_MAX, INT_MAX + 1, INT_MIN - 1, 10**400, 10**5000])
numbers = ints | st.floats() | st.decimals() | st.fractions()
odd_objects = st.sampled_from(
    [
        None,
        [1],
        {"a": 1},
        b"raw",
        object(),
        np.float32("nan"),
        np.int64(5),
        np.uint64(2**64 - 1),
        np.datetime64("NaT"),
    ]
)
keys = texts | ints | st.floats() | odd_objects
values = texts | numbers | st.booleans() | odd_objects
datetimes = st.datetimes(timezones=st.none() | st.just(UTC))
epochs = (
    st.none()
    | numbers
    | datetimes
    | st.dates()
    | st.sampled_from(
        [
            np.datetime64("2026-01-01T00:00:00", "ns"),
            np.datetime64("NaT", "s"),
            np.datetime64("20000-01-01", "D"),
            np.timedelta64(1, "s"),
            "2026-01-01",
            True,
        ]
    )
)


# Derandomized and without an example database: the same cases on every run. 300 of them
# reach every strategy branch; ISSTREAMER_HYPOTHESIS_EXAMPLES asks for more (a long hunt).
@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("ISSTREAMER_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,
    database=None,
)
@given(keys, values, epochs)
def test_make_event_returns_receivable_events_or_raises_invalid_event(
    key: Any, value: Any, epoch: Any
) -> None:
    """For any key, value and epoch, make_event gives a storable event or InvalidEvent."""
    check(key, value, epoch)


# ---- a seeded mix through a Streamer into the real collector ---------------------------------


def odd_key(rng: random.Random) -> Any:
    choice = rng.randrange(10)
    if choice < 4:
        return f"sensor{rng.randrange(20)}"
    return [
        lambda: "caf\udcff" + str(rng.randrange(3)),
        lambda: "ünï" + chr(rng.randrange(0x100, 0x2000)),
        lambda: "k" * rng.choice([250, 251, 5000]),
        lambda: "",
        lambda: rng.randrange(-(10**6), 10**6),
        lambda: rng.choice([None, 1.5, 10**300, ("t", 1)]),
    ][choice - 4]()


def odd_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            lambda: rng.uniform(-1e6, 1e6),
            lambda: rng.randrange(-(10**6), 10**6),
            lambda: rng.choice([True, False]),
            lambda: rng.choice(["on", "off", "caf\udcff", "x\ud800y", "é" * 2000, "é" * 2001]),
            lambda: rng.choice([INT_MAX, INT_MAX + 1, INT_MIN - 1, 2**70, 10**400, -(10**5000)]),
            lambda: rng.choice([math.nan, math.inf, -math.inf, 1e308, 5e-324]),
            lambda: rng.choice([Decimal("1.25"), Decimal("sNaN"), Decimal("1e400")]),
            lambda: rng.choice(
                [
                    np.float32(1.5),
                    np.int64(-7),
                    np.uint64(2**64 - 1),
                    np.bool_(True),
                    np.float64("nan"),
                    np.complex64(1j),
                    np.datetime64("2026-01-01"),
                ]
            ),
            lambda: rng.choice([None, [1, 2], {"a": 1}, b"raw", object()]),
        ]
    )()


def odd_epoch(rng: random.Random) -> Any:
    now = 1767225600.0  # 2026-01-01
    return rng.choice(
        [
            lambda: now + rng.uniform(-1e5, 1e5),
            lambda: int(now) + rng.randrange(1000),
            lambda: rng.choice(
                [
                    -1,
                    -0.5,
                    0,
                    EPOCH_MAX_S - 1,
                    EPOCH_MAX_S,
                    1e300,
                    math.nan,
                    10**400,
                    Decimal("sNaN"),
                ]
            ),
            lambda: dt.datetime(2026, 1, 1, rng.randrange(24), tzinfo=UTC),
            lambda: rng.choice([dt.datetime(1, 1, 1), dt.date(2026, 5, 5), dt.timedelta(1)]),
            lambda: np.datetime64("2026-01-01T12:00:00").astype(
                "datetime64[{}]".format(
                    rng.choice(["ns", "us", "ms", "s", "m", "h", "D", "M", "Y"])
                )
            ),
            lambda: rng.choice(
                [
                    np.datetime64("NaT", "ns"),
                    np.datetime64("NaT"),
                    np.datetime64("20000-01-01", "s"),
                    np.timedelta64(5, "s"),
                ]
            ),
            lambda: rng.choice(["2026-01-01", True, [now]]),
        ]
    )()


def seeded_mix(seed: int, count: int) -> Iterator[tuple[Any, Any, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield odd_key(rng), odd_value(rng), odd_epoch(rng)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """The project's collector on a free port, as the receiver that must store everything."""
    with Collector(tmp_path / "c.db", port=0, access_keys=[KEY]) as running:
        yield running


def stored(url: str, bucket: str) -> list[tuple[str, Any]]:
    response = requests.get(
        f"{url}/api/buckets/{bucket}/events", params={"limit": 100_000}, timeout=30
    )
    assert response.status_code == 200, response.text
    return [(e["key"], e["value"]) for e in response.json()]


def test_seeded_odd_events_through_a_streamer_all_delivered_or_counted(
    collector: Collector, tmp_path: Path
) -> None:
    """3,000 random events (explicit epochs: the validating path) never raise from log();
    every valid one is stored by the collector, every invalid one counted in stats()."""
    events = list(seeded_mix(seed=12, count=3000))
    expected: list[tuple[str, Any]] = []
    invalid = 0
    for key, value, epoch in events:
        try:
            k, v, _ = make_event(key, value, epoch)
            expected.append((k, v))
        except InvalidEvent:
            invalid += 1
    assert 500 < invalid < 2800  # the mix has plenty of both
    streamer = Streamer(
        bucket_key="odd",
        access_key=KEY,
        api_base=collector.url,
        spill_dir=str(tmp_path / "spool"),
        buffer_size=100,
    )
    for key, value, epoch in events:
        streamer.log(key, value, epoch)
    assert streamer.close(timeout=60)
    stats = streamer.stats()
    assert stats["invalid"] == invalid and stats["sent"] == len(expected)
    assert stats["quarantined"] == 0 and stats["dropped"] == 0
    assert Counter(stored(collector.url, "odd")) == Counter(expected)


def odd_structures() -> list[tuple[Any, int]]:
    """(object, how many of its parts are invalid) for log_object."""
    cyclic: dict = {"a": 1}
    cyclic["me"] = cyclic
    deep: list = [1]
    for _ in range(5000):
        deep = [deep]

    class BadStr:
        def __str__(self) -> str:
            raise RuntimeError("no name")

    return [
        (cyclic, 1),
        (deep, 1),
        ({BadStr(): 1, 10**5000: 2, "ok": 3}, 2),
        ({"v": 10**5000, "s": "caf\udcff", "t": np.datetime64("NaT")}, 2),
    ]


def test_log_object_of_odd_structures_counts_what_it_cannot_log(
    collector: Collector, tmp_path: Path
) -> None:
    """Cycles, 5,000-deep lists and names whose str() fails are counted invalid, not raised;
    the loggable rest is delivered."""
    streamer = Streamer(
        bucket_key="objects",
        access_key=KEY,
        api_base=collector.url,
        spill_dir=str(tmp_path / "spool"),
    )
    total_invalid = 0
    for obj, invalid in odd_structures():
        streamer.log_object(obj, key_prefix="o", epoch=1767225600)
        total_invalid += invalid
    streamer.log("k", 1, epoch=10**400)  # OverflowError before
    assert streamer.close(timeout=30)
    assert streamer.stats()["invalid"] == total_invalid + 1
    assert sorted(stored(collector.url, "objects")) == [
        ("o_a", 1),
        ("o_ok", 3),
        ("o_s", "caf\ufffd"),
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.log("k", 1, epoch=10**400),
        lambda s: s.log("k", 1, epoch=np.datetime64("NaT")),
        lambda s: s.log("k", [1], epoch=1767225600),
        lambda s: s.log_object(odd_structures()[1][0], key_prefix="d"),
        lambda s: s.log_object(odd_structures()[0][0], key_prefix="c"),
    ],
    ids=["huge-epoch", "nat", "list-value", "deep", "cycle"],
)
def test_strict_mode_raises_invalid_event(call: Callable[[Streamer], None], tmp_path: Path) -> None:
    """strict=True raises InvalidEvent (a ValueError) for the inputs counted otherwise."""
    streamer = Streamer(
        bucket_key="strict",
        sink=lambda events: None,
        spill_dir=str(tmp_path / "spool"),
        strict=True,
    )
    try:
        with pytest.raises(InvalidEvent):
            call(streamer)
    finally:
        streamer.close(timeout=1)
