"""Event validation (key, value, epoch) and log_object flattening."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import math
import os
import time
from collections import namedtuple
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psutil
import pytest

from isstreamer import events
from isstreamer.events import (
    InvalidEvent,
    InvalidEventType,
    default_prefix,
    flatten,
    make_event,
    normalise_epoch,
    normalise_key,
    normalise_value,
)


class FakeScalar:
    """Quacks like a numpy scalar (np.float32(1.5) and friends) without needing numpy."""

    ndim = 0

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value


class FakeArray(FakeScalar):
    """Quacks like a one-dimensional numpy array: has .item() but is not a scalar."""

    ndim = 1


Point = namedtuple("Point", "x y")


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float


@dataclasses.dataclass
class Station:
    name: str
    reading: Reading


class Sensor:
    """A plain object as ISStreamer users logged them: properties plus attributes."""

    def __init__(self) -> None:
        self.level = 7
        self.name = "probe"
        self._private = "hidden"
        self.callback = lambda: None

    @property
    def temp(self) -> float:
        return 20.5

    @property
    def broken(self) -> float:
        raise RuntimeError("sensor unplugged")

    @property
    def _secret(self) -> str:
        return "hidden"

    def method(self) -> int:
        return 1


def pairs(obj: Any, prefix: Any = None) -> dict:
    return dict(flatten(obj, default_prefix(obj) if prefix is None else prefix))


@pytest.fixture
def local_tz_plus2() -> Iterator[None]:
    """Run with the local time zone at UTC+2, whatever the machine's zone is."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "XYZ-2"  # POSIX form: two hours east of UTC, needs no tz database
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


# ---- keys -------------------------------------------------------------------------------

def test_key_non_str_is_converted() -> None:
    """Any key object becomes its str, as ISStreamer did."""
    assert normalise_key(42) == "42"
    assert normalise_key(1.5) == "1.5"
    assert normalise_key("temp") == "temp"


def test_key_length_limits() -> None:
    """Keys of 1 and 250 characters pass; 0 and 251 are rejected."""
    assert normalise_key("k") == "k"
    assert normalise_key("k" * 250) == "k" * 250
    assert normalise_key("é" * 250) == "é" * 250  # characters, not bytes
    with pytest.raises(InvalidEvent):
        normalise_key("")
    with pytest.raises(InvalidEvent):
        normalise_key("k" * 251)


def test_key_none_is_rejected() -> None:
    """None is not turned into the key "None"."""
    with pytest.raises(InvalidEvent):
        normalise_key(None)


# ---- values -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False, 0, -3, 2**40, 1.5, 0.0, "", "on"])
def test_value_plain_types_kept_with_their_type(value: Any) -> None:
    """bool, int, float and str come back equal and of exactly the same type."""
    out = normalise_value(value)
    assert out == value and type(out) is type(value)


def test_value_subclasses_become_plain_types() -> None:
    """An IntEnum or a str subclass is stored as the plain int or str."""

    class Level(enum.IntEnum):
        HIGH = 3

    class Name(str):
        pass

    assert type(normalise_value(Level.HIGH)) is int and normalise_value(Level.HIGH) == 3
    assert type(normalise_value(Name("x"))) is str


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_value_non_finite_rejected(value: float) -> None:
    """NaN and infinities are not JSON, so they are rejected."""
    with pytest.raises(InvalidEvent):
        normalise_value(value)


def test_value_string_length_limit() -> None:
    """A string of 2000 characters passes, 2001 is rejected."""
    assert normalise_value("x" * 2000) == "x" * 2000
    with pytest.raises(InvalidEvent):
        normalise_value("x" * 2001)


def test_value_decimal_becomes_float() -> None:
    """Decimal values are sent as floats; a Decimal NaN is rejected like a float NaN."""
    out = normalise_value(Decimal("1.25"))
    assert out == 1.25 and type(out) is float
    with pytest.raises(InvalidEvent):
        normalise_value(Decimal("NaN"))


def test_value_numpy_style_scalar_is_unwrapped() -> None:
    """An object with .item() and ndim 0 is stored as the Python value .item() returns."""
    assert normalise_value(FakeScalar(1.5)) == 1.5 and type(normalise_value(FakeScalar(1.5))) is float
    assert normalise_value(FakeScalar(True)) is True
    assert normalise_value(FakeScalar(7)) == 7 and type(normalise_value(FakeScalar(7))) is int
    with pytest.raises(InvalidEvent):
        normalise_value(FakeScalar(math.nan))


def test_value_numpy_style_array_rejected() -> None:
    """An array-like with ndim 1 is not a scalar value."""
    with pytest.raises(InvalidEventType):
        normalise_value(FakeArray([1, 2]))


@pytest.mark.parametrize("value", [None, [1, 2], {"a": 1}, b"bytes", object()])
def test_value_other_types_raise_invalid_event_type(value: Any) -> None:
    """None, lists and other objects raise InvalidEventType, which is a TypeError."""
    with pytest.raises(InvalidEventType) as info:
        normalise_value(value)
    assert isinstance(info.value, TypeError)


def test_invalid_event_type_is_also_invalid_event() -> None:
    """One `except ValueError` in the streamer catches both kinds of invalid event."""
    assert issubclass(InvalidEventType, TypeError)
    assert issubclass(InvalidEventType, InvalidEvent)
    assert issubclass(InvalidEvent, ValueError)


# ---- epochs -----------------------------------------------------------------------------

def test_epoch_numbers_kept_with_fractions() -> None:
    """int and float epochs are seconds since 1970, fractions kept."""
    assert normalise_epoch(1700000000) == 1700000000.0
    assert normalise_epoch(1700000000.125) == 1700000000.125
    assert normalise_epoch(Decimal("1700000000.5")) == 1700000000.5


def test_epoch_aware_datetime() -> None:
    """An aware datetime gives its exact Unix time."""
    when = dt.datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=dt.timezone.utc)
    assert normalise_epoch(when) == 1704110400.5
    east = dt.datetime(2024, 1, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert normalise_epoch(east) == 1704110400.0


def test_epoch_naive_datetime_is_local_time(local_tz_plus2: None) -> None:
    """A naive datetime is read in the local time zone."""
    assert normalise_epoch(dt.datetime(2024, 1, 1, 14, 0)) == 1704110400.0


def test_epoch_date_is_local_midnight(local_tz_plus2: None) -> None:
    """A date means midnight of that day, local time."""
    assert normalise_epoch(dt.date(2024, 1, 2)) == 1704146400.0  # 2024-01-01T22:00Z


def test_epoch_bool_rejected() -> None:
    """True is not the epoch 1."""
    with pytest.raises(InvalidEventType):
        normalise_epoch(True)


@pytest.mark.parametrize("epoch", ["1700000000", None, [1]])
def test_epoch_other_types_rejected(epoch: Any) -> None:
    """Strings, None and lists are not epochs."""
    with pytest.raises(InvalidEventType):
        normalise_epoch(epoch)


@pytest.mark.parametrize("epoch", [math.nan, math.inf, -1])
def test_epoch_non_finite_or_negative_rejected(epoch: float) -> None:
    """NaN, infinity and times before 1970 are rejected."""
    with pytest.raises(InvalidEvent):
        normalise_epoch(epoch)


def test_epoch_numpy_style_scalar() -> None:
    """A numpy-style scalar epoch is unwrapped with .item()."""
    assert normalise_epoch(FakeScalar(1700000000.25)) == 1700000000.25


def test_make_event_defaults_epoch_to_now() -> None:
    """Without an epoch the event gets time.time() at the call."""
    before = time.time()
    key, value, epoch = make_event(5, FakeScalar(2.5))
    assert (key, value) == ("5", 2.5)
    assert before <= epoch <= time.time()


def test_make_event_with_epoch() -> None:
    """An explicit epoch is normalised to float seconds."""
    when = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert make_event("k", True, when) == ("k", True, 1704067200.0)


# ---- log_object flattening --------------------------------------------------------------

def test_flatten_dict() -> None:
    """A dict logs one key per item, prefixed with "dict" by default."""
    assert pairs({"a": 1, "b": "x"}) == {"dict_a": 1, "dict_b": "x"}


def test_flatten_nested_dict_joins_with_underscore() -> None:
    """Nested dicts flatten with `_` between the names."""
    assert pairs({"cpu": {"load": 0.5, "temp": {"max": 80}}}, "pi") == {
        "pi_cpu_load": 0.5, "pi_cpu_temp_max": 80}


def test_flatten_list_and_tuple_use_indexes() -> None:
    """Lists log list_0, list_1 ...; tuples tuple_0 ... as in ISStreamer."""
    assert pairs([10, 20]) == {"list_0": 10, "list_1": 20}
    assert pairs((1.5, "x")) == {"tuple_0": 1.5, "tuple_1": "x"}


def test_flatten_namedtuple_uses_field_names() -> None:
    """A namedtuple logs its field names, not indexes."""
    assert pairs(Point(1, 2)) == {"Point_x": 1, "Point_y": 2}


def test_flatten_psutil_virtual_memory() -> None:
    """psutil.virtual_memory() logs svmem_total, svmem_available ... with int/float values."""
    vm = psutil.virtual_memory()
    out = pairs(vm)
    assert set(out) == {f"svmem_{f}" for f in vm._fields}
    assert "svmem_total" in out and isinstance(out["svmem_total"], int)
    assert all(type(v) in (int, float) for v in out.values())


def test_flatten_psutil_cpu_times() -> None:
    """psutil.cpu_times() logs scputimes_user, scputimes_system ..."""
    ct = psutil.cpu_times()
    out = pairs(ct)
    assert set(out) == {f"scputimes_{f}" for f in ct._fields}
    assert {"scputimes_user", "scputimes_system", "scputimes_idle"} <= set(out)


def test_flatten_list_of_psutil_namedtuples() -> None:
    """A list of namedtuples flattens index then field name."""
    out = pairs([Point(1, 2), Point(3, 4)], "pts")
    assert out == {"pts_0_x": 1, "pts_0_y": 2, "pts_1_x": 3, "pts_1_y": 4}


def test_flatten_dataclass_and_nested_dataclass() -> None:
    """Dataclasses log their fields; a nested dataclass flattens with `_`."""
    assert pairs(Reading("t1", 20.5)) == {"Reading_sensor": "t1", "Reading_value": 20.5}
    assert pairs(Station("roof", Reading("t1", 1.0)), "s") == {
        "s_name": "roof", "s_reading_sensor": "t1", "s_reading_value": 1.0}


def test_flatten_plain_object_properties_and_public_attributes() -> None:
    """A plain object logs properties and public data attributes; private, callables and failing properties are skipped."""
    assert pairs(Sensor()) == {"Sensor_temp": 20.5, "Sensor_level": 7, "Sensor_name": "probe"}


def test_flatten_empty_prefix_means_no_prefix() -> None:
    """A prefix of "" logs the bare names."""
    assert pairs({"a": 1, "b": {"c": 2}}, "") == {"a": 1, "b_c": 2}
    assert pairs(Point(1, 2), "") == {"x": 1, "y": 2}


def test_flatten_non_str_dict_keys() -> None:
    """Dict keys that are not strings are turned into their str."""
    assert pairs({1: "a", 2.5: "b"}, "d") == {"d_1": "a", "d_2.5": "b"}


def test_flatten_set_is_ordered() -> None:
    """A set flattens in a stable order, so keys do not shuffle between calls."""
    assert pairs({3, 1, 2}, "s") == {"s_0": 1, "s_1": 2, "s_2": 3}


def test_flatten_yields_invalid_leaves_for_the_caller_to_count() -> None:
    """None and other leaf values are passed on, so log() counts them invalid instead of losing them silently."""
    assert pairs({"a": None, "b": b"raw"}, "d") == {"d_a": None, "d_b": b"raw"}


def test_flatten_numpy_style_scalar_is_a_leaf() -> None:
    """A numpy-style scalar inside a dict is one value, not an object to walk into."""
    scalar = FakeScalar(2.5)
    assert pairs({"t": scalar}, "d") == {"d_t": scalar}


def test_flatten_reference_cycle_terminates() -> None:
    """A dict that contains itself does not recurse forever."""
    data: dict = {"a": 1}
    data["me"] = data
    out = list(flatten(data, "d"))
    assert 0 < len(out) < 100
    assert out[0] == ("d_a", 1)


def test_flatten_list_cycle_terminates() -> None:
    """A list that contains itself does not recurse forever."""
    data: list = [1]
    data.append(data)
    assert 0 < len(list(flatten(data, "l"))) < 100


def test_flatten_reference_cycle_logs_each_value_once() -> None:
    """The back-reference of a cycle is skipped, so each value is logged once."""
    data: dict = {"a": 1}
    data["me"] = data
    assert list(flatten(data, "d")) == [("d_a", 1)]


def test_flatten_plain_object_does_not_walk_into_handles() -> None:
    """An attribute holding a non-container object (here a Logger) does not explode into its internals."""

    class Device:
        def __init__(self) -> None:
            self.temp = 21.5
            self.log = logging.getLogger("isstreamer.test.device")

    out = pairs(Device(), "dev")
    assert out == {"dev_temp": 21.5}


def test_default_prefix_is_type_name() -> None:
    """The default prefix is the type name, as in ISStreamer."""
    assert default_prefix([]) == "list"
    assert default_prefix({}) == "dict"
    assert default_prefix(psutil.virtual_memory()) == "svmem"
    assert default_prefix(Reading("a", 1.0)) == "Reading"


def test_module_limits() -> None:
    """The documented Initial State limits are the module's constants."""
    assert events.MAX_KEY_CHARS == 250
    assert events.MAX_STRING_CHARS == 2000
