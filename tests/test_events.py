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
    EPOCH_MAX_S,
    INT_MAX,
    INT_MIN,
    InvalidEvent,
    InvalidEventType,
    Refused,
    clean_text,
    default_prefix,
    flatten,
    key_label,
    make_event,
    normalise_epoch,
    normalise_key,
    normalise_value,
)
from isstreamer.objects import MAX_DEPTH


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
    out = normalise_value(FakeScalar(1.5))
    assert out == 1.5 and type(out) is float
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


@pytest.mark.parametrize("epoch", [None, [1]])
def test_epoch_other_types_rejected(epoch: Any) -> None:
    """None and lists are not epochs."""
    with pytest.raises(InvalidEventType):
        normalise_epoch(epoch)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1700000000", 1_700_000_000.0),
        (" 1600000000.5 ", 1_600_000_000.5),
        ("2020-09-13T12:26:40Z", 1_600_000_000.0),
        ("2020-09-13T12:26:40.250", 1_600_000_000.25),  # no zone: UTC, as text.parse_time has it
        ("2020-09-13T14:26:40+02:00", 1_600_000_000.0),
    ],
)
def test_epoch_text_is_read_by_the_one_time_parser(text: str, seconds: float) -> None:
    """Epoch seconds and ISO 8601 given as text become epoch seconds (ISStreamer sent them)."""
    assert normalise_epoch(text) == seconds


@pytest.mark.parametrize("text", ["yesterday", "", "1e400", "-5"])
def test_epoch_text_that_is_no_time_is_a_clear_error(text: str) -> None:
    """Text that is neither seconds nor ISO 8601 (or before 1970) is refused, saying why."""
    with pytest.raises(InvalidEvent, match="epoch"):
        normalise_epoch(text)


def test_explicit_epochs_are_marked_fixed_and_default_ones_are_not() -> None:
    """make_event marks a given epoch FixedEpoch; the time of the call stays a plain float."""
    assert type(make_event("k", 1, "1600000000")[2]) is events.FixedEpoch
    assert type(make_event("k", 1)[2]) is float
    assert type(make_event("k", 1, events.DefaultEpoch(1.6e9))[2]) is float


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
        "pi_cpu_load": 0.5,
        "pi_cpu_temp_max": 80,
    }


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
        "s_name": "roof",
        "s_reading_sensor": "t1",
        "s_reading_value": 1.0,
    }


def test_flatten_plain_object_properties_and_public_attributes() -> None:
    """A plain object logs properties and public data attributes; private ones, callables and
    failing properties are skipped."""
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
    """None and other leaf values are passed on, so log() counts them invalid instead of
    losing them silently."""
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


def test_flatten_reference_cycle_is_one_refused_value() -> None:
    """The back-reference of a cycle is yielded once as a Refused value, for log() to count."""
    data: dict = {"a": 1}
    data["me"] = data
    out = list(flatten(data, "d"))
    assert out[0] == ("d_a", 1)
    assert [k for k, v in out[1:]] == ["d_me"] and isinstance(out[1][1], Refused)
    with pytest.raises(InvalidEvent, match="cycle"):
        make_event(*out[1])


def test_flatten_plain_object_does_not_walk_into_handles() -> None:
    """An attribute holding a non-container object (here a Logger) does not explode into its
    internals."""

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


# ---- odd input: values the receiver could not take --------------------------------------


class BadStr:
    """A key object whose str() raises, as a half-initialised object's can."""

    def __str__(self) -> str:
        raise RuntimeError("not ready")


def test_key_whose_str_raises_is_invalid_not_a_crash() -> None:
    """A key whose str() raises gives InvalidEvent naming its type, not the RuntimeError."""
    with pytest.raises(InvalidEvent, match="BadStr"):
        normalise_key(BadStr())


def test_key_huge_int_is_invalid_without_calling_str() -> None:
    """log(10**5000, 1): str() of that int raises ValueError in Python 3.11; the key is invalid."""
    with pytest.raises(InvalidEvent, match="bits"):
        normalise_key(10**5000)
    assert normalise_key(10**249) == "1" + "0" * 249


def test_key_label_never_raises() -> None:
    """The warning path's name for a key is short and printable, whatever the key is."""
    assert key_label(BadStr()) == "<BadStr key whose str() fails>"
    assert key_label(10**5000).startswith("<int of ")
    assert key_label("k" * 5000) == "k" * events.LABEL_CHARS
    assert key_label("caf\udcff") == "caf\ufffd"
    assert key_label(None) == "None"


def test_key_lone_surrogate_replaced_and_pairs_joined() -> None:
    """Keys are valid Unicode: a lone surrogate becomes U+FFFD, a surrogate pair its character."""
    assert normalise_key("caf\udcff") == "caf\ufffd"
    assert normalise_key("t\ud83d\ude00") == "t\U0001f600"
    normalise_key("caf\udcff").encode("utf-8")  # would raise if a surrogate were left


def test_clean_text_keeps_valid_text_as_it_is() -> None:
    """ASCII and valid non-ASCII text come back as the same object."""
    for text in ("plain", "café", "\U0001f600", ""):
        assert clean_text(text) is text


@pytest.mark.parametrize(
    "value, expected",
    [
        ("caf\udcff", "caf\ufffd"),
        ("\udcff", "\ufffd"),
        ("a\ud83d\ude00b", "a\U0001f600b"),
        ("\ud800\ud800", "\ufffd\ufffd"),
    ],
)
def test_value_surrogates_replaced(value: str, expected: str) -> None:
    """String values with lone surrogates are stored with U+FFFD in their place."""
    assert normalise_value(value) == expected


def test_value_string_limit_counts_characters_after_cleaning() -> None:
    """2000 characters of non-ASCII text pass; 2001 do not; huge strings fail fast."""
    assert normalise_value("é" * 2000) == "é" * 2000
    with pytest.raises(InvalidEvent):
        normalise_value("é" * 2001)
    with pytest.raises(InvalidEvent):
        normalise_value("\udcff" * 10**6)


def test_value_int64_range_kept_as_int() -> None:
    """The int64 bounds themselves are sent as ints."""
    for number in (INT_MIN, INT_MAX, 0):
        out = normalise_value(number)
        assert out == number and type(out) is int


def test_value_int_beyond_int64_becomes_float() -> None:
    """An int just outside int64 is sent as the nearest float64 (low digits lost)."""
    out = normalise_value(INT_MAX + 2)
    assert type(out) is float and out == 2.0**63
    assert normalise_value(INT_MIN - 2) == -(2.0**63)
    assert normalise_value(10**300) == 1e300


@pytest.mark.parametrize("number", [10**400, -(10**400), 10**5000], ids=["e400", "-e400", "e5000"])
def test_value_int_beyond_float64_is_invalid(number: int) -> None:
    """An int too large even for a float64 is invalid (no OverflowError, no ValueError from str)."""
    with pytest.raises(InvalidEvent, match="bits"):
        normalise_value(number)


@pytest.mark.parametrize("value", [Decimal("sNaN"), Decimal("1e400"), Decimal("-Infinity")])
def test_value_decimal_out_of_float_range_is_invalid(value: Decimal) -> None:
    """A Decimal that is no finite float64 is invalid (sNaN would raise ValueError in float())."""
    with pytest.raises(InvalidEvent):
        normalise_value(value)


def test_value_refused_part_of_a_structure_is_invalid() -> None:
    """A Refused stand-in (from log_object) is invalid with its reason."""
    with pytest.raises(InvalidEvent, match="too deep here"):
        normalise_value(Refused("too deep here"))


def test_value_with_raising_conversion_is_invalid() -> None:
    """A float subclass whose __float__ raises gives InvalidEvent, not its own error."""

    class Weird(float):
        def __float__(self) -> float:
            raise ArithmeticError("no")

    with pytest.raises(InvalidEvent):
        normalise_value(Weird(1.0))


# ---- odd epochs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "epoch",
    [
        10**400,
        -(10**400),
        1e300,
        EPOCH_MAX_S,
        -0.5,
        Decimal("sNaN"),
        Decimal("NaN"),
        Decimal("1e400"),
    ],
    ids=repr,
)
def test_epoch_out_of_range_is_invalid(epoch: Any) -> None:
    """Epochs before 1970, from the year 10000 on, huge ints and NaN are InvalidEvent, never
    OverflowError or a bare ValueError."""
    with pytest.raises(InvalidEvent):
        normalise_epoch(epoch)


def test_epoch_range_bounds() -> None:
    """1970-01-01T00:00Z and the last second of 9999 are valid epochs."""
    assert normalise_epoch(0) == 0.0
    assert normalise_epoch(EPOCH_MAX_S - 1) == EPOCH_MAX_S - 1
    last = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    assert normalise_epoch(last) == EPOCH_MAX_S - 1


WEST = dt.timezone(dt.timedelta(hours=-1))


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1, 1, 1),
        dt.date(1, 1, 1),
        dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(9999, 12, 31, 23, 30, tzinfo=WEST),
    ],
    ids=str,
)
def test_epoch_datetimes_out_of_range_are_invalid(when: Any) -> None:
    """Datetimes before 1970 or from 10000-01-01T00:00Z on are InvalidEvent."""
    with pytest.raises(InvalidEvent):
        normalise_epoch(when)


def test_epoch_timedelta_is_a_type_error() -> None:
    """A duration is not a time."""
    with pytest.raises(InvalidEventType):
        normalise_epoch(dt.timedelta(seconds=5))


# ---- numpy, the real thing -------------------------------------------------------------

np = pytest.importorskip("numpy")
NOON = 1767268800  # 2026-01-01T12:00:00Z


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s", "m", "h", "10s"])
def test_epoch_numpy_datetime64_any_unit(unit: str) -> None:
    """A datetime64 of any unit gives seconds since 1970 (a datetime64[ns] is not 1.77e18)."""
    when = np.datetime64("2026-01-01T12:00:00").astype(f"datetime64[{unit}]")
    assert normalise_epoch(when) == NOON


@pytest.mark.parametrize(
    "day, unit",
    [("2026-01-01", "D"), ("2026-01-03", "W"), ("2026-01-20", "M"), ("2026-05-05", "Y")],
)
def test_epoch_numpy_datetime64_calendar_units(day: str, unit: str) -> None:
    """Days, weeks, months and years mean their first instant (numpy's weeks start on
    Thursdays, as 1970-01-01 was one; 2026-01-01 is one too)."""
    when = np.datetime64(day).astype(f"datetime64[{unit}]")
    assert normalise_epoch(when) == 1767225600  # 2026-01-01T00:00:00Z


def test_epoch_numpy_datetime64_keeps_fractions() -> None:
    """Sub-second units keep what a float64 holds of the fraction."""
    when = np.datetime64("2026-01-01T12:00:00.123456789", "ns")
    assert normalise_epoch(when) == pytest.approx(NOON + 0.123456789, abs=1e-6)
    assert normalise_epoch(np.datetime64(1500, "ms")) == 1.5


@pytest.mark.parametrize("epoch", ["NaT-ns", "NaT", "far", "before"])
def test_epoch_numpy_nat_and_out_of_range_invalid(epoch: str) -> None:
    """NaT of any unit, the year 20000 and 1969 are invalid epochs."""
    value = {
        "NaT-ns": np.datetime64("NaT", "ns"),
        "NaT": np.datetime64("NaT"),
        "far": np.datetime64("20000-01-01", "s"),
        "before": np.datetime64("1969-12-31T23:59:59", "s"),
    }[epoch]
    with pytest.raises(InvalidEvent):
        normalise_epoch(value)


def test_epoch_numpy_numbers_and_timedelta() -> None:
    """numpy numbers are epochs; a timedelta64 is a type error."""
    assert normalise_epoch(np.int64(NOON)) == NOON
    assert normalise_epoch(np.float32(1.5)) == 1.5
    assert normalise_epoch(np.float64(NOON + 0.25)) == NOON + 0.25
    with pytest.raises(InvalidEventType):
        normalise_epoch(np.timedelta64(5, "s"))
    with pytest.raises(InvalidEvent):
        normalise_epoch(np.float64("nan"))


def test_value_numpy_scalars() -> None:
    """numpy scalars become plain Python values; uint64 beyond int64 becomes a float."""
    cases = [
        (np.int64(-5), -5, int),
        (np.int8(7), 7, int),
        (np.float32(1.5), 1.5, float),
        (np.float64(2.25), 2.25, float),
        (np.bool_(True), True, bool),
        (np.str_("on"), "on", str),
        (np.uint64(2**64 - 1), 2.0**64, float),
        (np.longdouble(0.5), 0.5, float),
    ]
    for value, expected, kind in cases:
        out = normalise_value(value)
        assert out == expected and type(out) is kind, value


def test_value_numpy_invalid_kinds() -> None:
    """numpy NaN, complex numbers, times and arrays are not values."""
    with pytest.raises(InvalidEvent):
        normalise_value(np.float32("nan"))
    with pytest.raises(InvalidEventType):
        normalise_value(np.complex128(1 + 2j))
    with pytest.raises(InvalidEventType, match="epoch"):
        normalise_value(np.datetime64("2026-01-01T00:00:00", "ns"))
    with pytest.raises(InvalidEventType):
        normalise_value(np.array([1.0, 2.0]))


# ---- log_object structures that cannot be logged --------------------------------------------


def nested_list(depth: int) -> list:
    data: list = [1]
    for _ in range(depth - 1):
        data = [data]
    return data


def test_flatten_5000_deep_list_is_one_refused_value() -> None:
    """A 5,000-deep list gives one Refused value at MAX_DEPTH, no RecursionError."""
    out = list(flatten(nested_list(5000), "deep"))
    assert len(out) == 1
    key, value = out[0]
    assert isinstance(value, Refused) and "deep" in value.reason
    assert key == "deep" + "_0" * MAX_DEPTH
    with pytest.raises(InvalidEvent, match="levels deep"):
        make_event(key, value)


def test_flatten_depth_limit_is_exact() -> None:
    """MAX_DEPTH nested containers still log their leaf; one more is refused."""
    assert list(flatten(nested_list(MAX_DEPTH), "")) == [("_".join(["0"] * MAX_DEPTH), 1)]
    assert isinstance(list(flatten(nested_list(MAX_DEPTH + 1), ""))[0][1], Refused)


def test_flatten_names_whose_str_fails_are_refused() -> None:
    """Dict keys whose str() raises become Refused values; a 5,000-digit int name (str() raises
    from Python 3.11 on, before it gives a key too long) is invalid either way."""
    out = list(flatten({BadStr(): 1, 10**5000: 2, "ok": 3}, "d"))
    assert out[2] == ("d_ok", 3)
    assert out[0][0] == "d_<BadStr>" and isinstance(out[0][1], Refused)
    for key, value in out[:2]:
        with pytest.raises(InvalidEvent):
            make_event(key, value)


def test_flatten_prefix_whose_str_fails_is_refused() -> None:
    """A key_prefix that cannot be turned into text refuses the object, without raising."""
    out = list(flatten({"a": 1}, BadStr()))  # type: ignore[arg-type]
    assert len(out) == 1 and isinstance(out[0][1], Refused)


def test_flatten_members_that_cannot_be_read_are_refused() -> None:
    """A dict whose items() raises and a set whose members' repr() raises are refused, not fatal."""

    class Broken(dict):
        def items(self) -> Any:
            raise RuntimeError("dictionary changed size during iteration")

    class NoRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    out = list(flatten({"b": Broken(a=1), "s": {NoRepr(), NoRepr()}, "ok": 1}, "x"))
    assert out[-1] == ("x_ok", 1)
    assert [k for k, v in out if isinstance(v, Refused)] == ["x_b", "x_s"]


def test_make_event_raises_only_invalid_event_for_odd_input() -> None:
    """Every odd key, value or epoch raises InvalidEvent (ValueError/TypeError), nothing else."""
    odd = [
        (BadStr(), 1, None),
        (10**5000, 1, None),
        ("k", 10**5000, None),
        ("k", 1, 10**400),
        ("k", 1, math.nan),
        ("k", 1, np.datetime64("NaT")),
        ("", 1, None),
        ("k", Refused("x"), None),
        ("k", object(), None),
        ("k", 1, "yesterday"),
    ]
    for key, value, epoch in odd:
        with pytest.raises(InvalidEvent):
            make_event(key, value, epoch)
