"""The core types and limits, written once in isstreamer.model and used by every part."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from isstreamer import model
from isstreamer.collector.validate import EventError, check_events
from isstreamer.events import InvalidEvent, normalise_key, normalise_value
from isstreamer.model import (
    MAX_BUCKET_KEY_CHARS,
    MAX_KEY_CHARS,
    MAX_STRING_CHARS,
    Bucket,
    Outcome,
    SendResult,
    bucket_key_problem,
)

ROOT = Path(__file__).resolve().parents[1]
# A limit written as a number in a comparison or a slice, or the int64 bound.
_LIMIT_LITERAL = re.compile(r"(<=?|>=?|\[:)\s*(250|2000)\b|\b(250|2000)\s*(<=?|>=?)|2\s*\*\*\s*63")
# Numbers that look like a limit and are not one.
_NOT_LIMITS = {"isstreamer/sinks/v3io.py": "response.text[:2000]"}  # a reply cut for a log line


def test_limits_are_the_services() -> None:
    """The documented Initial State limits: keys 250, strings 2000, bucket keys 250."""
    assert (MAX_KEY_CHARS, MAX_STRING_CHARS, MAX_BUCKET_KEY_CHARS) == (250, 2000, 250)
    assert model.INT_MAX == 2**63 - 1 and model.INT_MIN == -(2**63)


def test_no_module_writes_a_limit_again() -> None:
    """No module of the package but model.py spells a limit as a number."""
    offenders = []
    for path in sorted((ROOT / "isstreamer").rglob("*.py")):
        if path.name == "model.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if (
                _LIMIT_LITERAL.search(code)
                and _NOT_LIMITS.get(str(path.relative_to(ROOT)), "\0") not in code
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("bucket_key", ["b", "pi_kitchen", "k" * MAX_BUCKET_KEY_CHARS, "é ü"])
def test_good_bucket_keys_pass(bucket_key: str) -> None:
    """Bucket keys up to the limit, without : " or ', have no problem."""
    assert bucket_key_problem(bucket_key) is None


@pytest.mark.parametrize(
    ("bucket_key", "words"),
    [
        ("", "missing"),
        (None, "missing"),
        ("k" * (MAX_BUCKET_KEY_CHARS + 1), "longer than 250"),
        ("a:b", "must not contain"),
        ('a"b', "must not contain"),
        ("a'b", "must not contain"),
    ],
)
def test_bad_bucket_keys_are_named(bucket_key: str | None, words: str) -> None:
    """A missing, too long or badly spelled bucket key gets a message saying which."""
    problem = bucket_key_problem(bucket_key)
    assert problem is not None and words in problem


def test_client_and_collector_share_the_key_limit() -> None:
    """A key one character over the limit is refused by log()'s validation and the collector."""
    normalise_key("k" * MAX_KEY_CHARS)
    with pytest.raises(InvalidEvent):
        normalise_key("k" * (MAX_KEY_CHARS + 1))
    assert check_events({"key": "k" * MAX_KEY_CHARS, "value": 1}, now=1e9)
    with pytest.raises(EventError, match=str(MAX_KEY_CHARS)):
        check_events({"key": "k" * (MAX_KEY_CHARS + 1), "value": 1}, now=1e9)


def test_client_and_collector_share_the_string_limit() -> None:
    """A string one character over the limit is refused by both sides."""
    assert normalise_value("x" * MAX_STRING_CHARS) == "x" * MAX_STRING_CHARS
    with pytest.raises(InvalidEvent):
        normalise_value("x" * (MAX_STRING_CHARS + 1))
    with pytest.raises(EventError, match=str(MAX_STRING_CHARS)):
        check_events({"key": "k", "value": "x" * (MAX_STRING_CHARS + 1)}, now=1e9)


def test_sinks_base_still_exports_the_types() -> None:
    """Older imports from isstreamer.sinks.base get the very same classes."""
    from isstreamer.sinks import base

    assert base.Bucket is Bucket and base.Outcome is Outcome and base.SendResult is SendResult


def test_partial_result() -> None:
    """A result naming failed events is partial; an OK one never is."""
    assert SendResult(Outcome.RETRY, failed=(1,)).partial
    assert not SendResult(Outcome.OK, failed=()).partial
    assert SendResult(Outcome.OK).ok


@pytest.mark.parametrize("key", ["ist_k3y\n", "a\tb", "a\x7fb", "\x00"])
def test_access_key_with_control_characters_has_a_problem(key: str) -> None:
    """A key an HTTP header cannot carry is named as such, without echoing it."""
    problem = model.access_key_problem(key)
    assert problem is not None and "control characters" in problem and key not in problem


def test_plain_access_key_has_no_problem() -> None:
    """Printable keys, spaces and non-ASCII letters included, pass."""
    assert model.access_key_problem("ist_0123 é") is None
