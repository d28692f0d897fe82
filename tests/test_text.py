"""isstreamer.text: the one rule for typed values and times given as text."""

from __future__ import annotations

from typing import Any

import pytest

from isstreamer.collector.validate import url_events
from isstreamer.text import parse_time, parse_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("True", "True"),
        ("21.5", 21.5),
        ("-3", -3),
        ("+5", 5),
        (" 7", 7),
        ("7\n", 7),
        ("007", 7),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1e999", "1e999"),
        ("on", "on"),
        (" word ", " word "),
        ("", ""),
    ],
)
def test_parse_value(text: str, value: Any) -> None:
    """Numbers and true/false are typed (surrounding blanks ignored); other text stays as given."""
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("1600000000.5", 1600000000.5),
        (" 1600000000 ", 1600000000.0),
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T00:00:00", 1767225600.0),
        ("2026-01-01 01:00:00+01:00", 1767225600.0),
        ("2026-01-01", 1767225600.0),
        ("2026-01-01T00:00:00.5Z", 1767225600.5),
        ("2026-01-01T00:00:00.123456789Z", 1767225600.123456),
    ],
)
def test_parse_time(text: str, epoch: float) -> None:
    """Epoch seconds or ISO 8601 with any fraction digits; a time without a zone is UTC."""
    assert parse_time(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "nan", "x" * 100])
def test_parse_time_refuses_what_is_not_a_time(text: str) -> None:
    """Anything else is a ValueError that quotes (a cut of) the text."""
    with pytest.raises(ValueError, match="neither seconds since 1970 nor an ISO 8601 time"):
        parse_time(text)


def test_collector_url_variant_types_values_by_the_same_rule() -> None:
    """The collector's URL variant types ``+5`` and `` 7`` exactly as the command line does."""
    rows = url_events([("a", "+5"), ("b", " 7"), ("c", "true"), ("d", "open")], now=1.0)
    assert [value for _, value, _ in rows] == [parse_value(t) for t in ("+5", " 7", "true", "open")]
    assert [value for _, value, _ in rows] == [5, 7, True, "open"]
