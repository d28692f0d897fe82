"""The collector's framing rules as plain functions: Content-Length, gzip members, the 503."""

from __future__ import annotations

import email.message
import gzip
import socket
import time

import pytest

from isstreamer.collector.http import overload_response
from isstreamer.collector.wire import (
    DeadlineReader,
    FramingError,
    Limits,
    TooLarge,
    content_length,
    gunzip,
)


def headers(*pairs: tuple[str, str]) -> email.message.Message:
    message = email.message.Message()
    for name, value in pairs:
        message[name] = value
    return message


@pytest.mark.parametrize("value, length", [("0", 0), ("17", 17), (" 42 ", 42)])
def test_content_length_takes_one_plain_number(value: str, length: int) -> None:
    """A plain decimal Content-Length is the body length; none at all is 0."""
    assert content_length(headers(("Content-Length", value))) == length
    assert content_length(headers()) == 0


@pytest.mark.parametrize("value", ["-1", "+5", "1_000", "0x10", "1e3", "", "9" * 16])
def test_content_length_refuses_anything_else(value: str) -> None:
    """Signs, underscores, hex, exponents, nothing, or more than 15 digits: FramingError."""
    with pytest.raises(FramingError):
        content_length(headers(("Content-Length", value)))


def test_content_length_refuses_two_lengths_or_one_beside_chunked() -> None:
    """Two Content-Length headers, or one with Transfer-Encoding, are two guesses: refused."""
    with pytest.raises(FramingError, match="more than one"):
        content_length(headers(("Content-Length", "5"), ("Content-Length", "5")))
    with pytest.raises(FramingError, match="Transfer-Encoding"):
        content_length(headers(("Content-Length", "5"), ("Transfer-Encoding", "chunked")))


def test_gunzip_reads_every_member() -> None:
    """Concatenated gzip members decompress as one body."""
    assert gunzip(gzip.compress(b"[1,") + gzip.compress(b"2]"), 1000) == b"[1,2]"


def test_gunzip_stops_at_the_limit() -> None:
    """A body that inflates past the limit is TooLarge, found without inflating all of it."""
    bomb = gzip.compress(b"0" * 10_000_000)
    with pytest.raises(TooLarge):
        gunzip(bomb, 1024 * 1024)
    assert gunzip(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000  # exactly the limit is fine


@pytest.mark.parametrize(
    "tail", [b"junk", gzip.compress(b"more", mtime=0)[:-4]], ids=["junk", "truncated"]
)
def test_gunzip_refuses_junk_and_truncated_members(tail: bytes) -> None:
    """Bytes after a member that are no complete gzip member make the whole body invalid."""
    with pytest.raises(ValueError):
        gunzip(gzip.compress(b"[]") + tail, 1000)


def test_overload_answer_is_a_whole_503_with_retry_after() -> None:
    """The answer past max_connections is one complete HTTP response that closes."""
    answer = overload_response(Limits(max_connections=3, retry_after_s=2))
    head, _, body = answer.partition(b"\r\n\r\n")
    lines: list[bytes] = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"Retry-After: 2" in lines and b"Connection: close" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    assert b"too many connections (3)" in body


def test_deadline_reader_ends_the_phase_however_slow_the_bytes() -> None:
    """Reads wait only for what is left of the phase: past it, socket.timeout at once."""
    left, right = socket.socketpair()
    with left, right:
        reader = DeadlineReader(left)
        reader.start(5.0)
        right.sendall(b"ab")
        buffer = bytearray(10)
        assert reader.readinto(buffer) == 2 and bytes(buffer[:2]) == b"ab"
        reader.deadline = time.monotonic() - 1  # the phase is over
        with pytest.raises(socket.timeout):
            reader.readinto(buffer)
