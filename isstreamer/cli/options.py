"""Option value types: argparse calls them, so a bad value exits 2 with a one-line usage error.

Each says what it wants in the message argparse prints (``argument --interval: must be more
than 0 seconds (got '0')``); none lets NaN or infinity through.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _checked(parse: Callable[[str], Any], ok: Callable[[Any], bool], wants: str, name: str) -> Any:
    """A type function: ``parse`` the text, then refuse values ``ok`` rejects."""

    def convert(text: str) -> Any:
        value = parse(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {wants} (got {text!r})")
        return value

    convert.__name__ = name
    return convert


positive_seconds = _checked(_number, lambda v: v > 0, "more than 0 seconds", "positive_seconds")
seconds = _checked(_number, lambda v: v >= 0, "0 seconds or more", "seconds")  # 0: do not wait
positive_days = _checked(_number, lambda v: v > 0, "a positive number of days", "positive_days")
at_least_one = _checked(_whole, lambda v: v >= 1, "at least 1", "at_least_one")
count = _checked(_whole, lambda v: v >= 0, "0 or more", "count")
port = _checked(_whole, lambda v: 0 <= v <= 65535, "a port from 0 to 65535", "port")
