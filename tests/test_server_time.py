"""Server-requested waits: Retry-After and X-RateLimit-*, measured on the server's clock."""

from __future__ import annotations

import email.utils

import pytest

from isstreamer.sinks.server_time import (
    CLOCK_FLOOR_S,
    MAX_WAIT_S,
    http_date,
    parse_retry_after,
    rate_limit_wait,
    requested_wait,
    server_now,
)

SERVER_NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC, the server's clock in these tests
DATE = email.utils.formatdate(SERVER_NOW, usegmt=True)


def date(offset_s: float) -> str:
    """An HTTP-date offset_s seconds after the server's now."""
    return email.utils.formatdate(SERVER_NOW + offset_s, usegmt=True)


def in_1970() -> float:
    """A device clock before NTP sync: a few minutes after boot, in 1970."""
    return 300.0


def test_max_wait_is_the_retry_policy_cap() -> None:
    """The sink's cap is the one RetryPolicy applies (600 s), written once."""
    from isstreamer.retry import RetryPolicy

    assert MAX_WAIT_S == RetryPolicy().max_retry_after == 600.0


@pytest.mark.parametrize(
    "text",
    [
        "Thu, 01 Jan 2026 00:00:00 GMT",
        "Thursday, 01-Jan-26 00:00:00 GMT",
        "Thu Jan  1 00:00:00 2026",
    ],
)
def test_http_date_formats(text: str) -> None:
    """All three HTTP-date forms of RFC 9110 parse to the same unix time."""
    assert http_date(text) == SERVER_NOW


@pytest.mark.parametrize("text", [None, "", "soon", "Thu, 99 Jan 2026 00:00:00 GMT", "1234"])
def test_http_date_garbage_is_none(text: str | None) -> None:
    """Anything that is not a date gives None, never an exception."""
    assert http_date(text) is None


def test_server_now_prefers_the_date_header() -> None:
    """The server's Date wins over our clock, whatever our clock says."""
    assert server_now({"Date": DATE}, clock=in_1970) == SERVER_NOW


def test_server_now_falls_back_to_a_believable_clock() -> None:
    """Without a Date, our wall clock is used, unless it is before 2020 (not synced yet)."""
    assert server_now({}, clock=lambda: SERVER_NOW + 5) == SERVER_NOW + 5
    assert server_now({"Date": "garbage"}, clock=lambda: SERVER_NOW) == SERVER_NOW
    assert server_now({}, clock=in_1970) is None
    assert server_now({}, clock=lambda: CLOCK_FLOOR_S - 1) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", MAX_WAIT_S),
        ("86400", MAX_WAIT_S),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    """Delta-seconds need no clock; negative is 0, NaN and garbage are None, long is capped."""
    assert parse_retry_after(value, None) == expected


def test_parse_retry_after_date_is_measured_from_server_now() -> None:
    """An HTTP-date is the seconds from the server's now; past dates are 0; no now, no wait."""
    assert parse_retry_after(date(90), SERVER_NOW) == 90.0
    assert parse_retry_after(date(-90), SERVER_NOW) == 0.0
    assert parse_retry_after(date(90), None) is None
    assert parse_retry_after(date(90), SERVER_NOW, cap_s=30) == 30.0


def test_rate_limit_wait_parsing() -> None:
    """Only Remaining 0 with a Reset asks for a wait; bad numbers are ignored."""

    def wait(remaining: str | None, reset: str | None, now: float | None = 1000.0) -> float | None:
        headers = {
            k: v
            for k, v in (("X-RateLimit-Remaining", remaining), ("X-RateLimit-Reset", reset))
            if v is not None
        }
        return rate_limit_wait(headers, now)

    assert wait("0", "1030") == 30.0
    assert wait("0", "900") == 0.0
    assert wait("1", "1030") is None
    assert wait("0", None) is None
    assert wait("x", "1") is None
    assert wait("inf", "1") is None
    assert wait("0", "nan") is None
    assert wait("0", "1030", now=None) is None
    assert wait("0", "1e12") == MAX_WAIT_S


def test_device_clock_in_1970_does_not_become_a_hold_off() -> None:
    """Before NTP (clock at 1970), a reset 20 s away on the server's clock is 20 s, not 600."""
    headers = {
        "Date": DATE,
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(SERVER_NOW) + 20),
    }
    assert requested_wait(headers, clock=in_1970) == 20.0
    assert requested_wait({"Date": DATE, "Retry-After": date(45)}, clock=in_1970) == 45.0


def test_device_clock_far_ahead_does_not_skip_the_wait() -> None:
    """A device clock years ahead (a wrong RTC) still gets the server's wait, not 0."""

    def in_2040() -> float:
        return 2_208_988_800.0

    assert requested_wait({"Date": DATE, "Retry-After": date(45)}, clock=in_2040) == 45.0


def test_no_clock_to_believe() -> None:
    """No Date and a clock in 1970: absolute times give no wait; delta-seconds still do."""
    assert requested_wait({"Retry-After": date(45)}, clock=in_1970) is None
    assert (
        requested_wait(
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1767225700"}, clock=in_1970
        )
        is None
    )
    assert requested_wait({"Retry-After": "12"}, clock=in_1970) == 12.0


def test_retry_after_wins_over_the_rate_limit() -> None:
    """When both are present, Retry-After is what the server asked for."""
    headers = {
        "Date": DATE,
        "Retry-After": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(SERVER_NOW) + 50),
    }
    assert requested_wait(headers) == 3.0
