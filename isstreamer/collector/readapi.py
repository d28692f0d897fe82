"""The read API's answers beyond the raw events: one bucket, its series, and ``/metrics``."""

from __future__ import annotations

import math
from typing import Any

from ..errors import IsStreamerError
from .query import DEFAULT_POINTS, MAX_POINTS
from .store import Store
from .validate import parse_limit, parse_query_time

SERIES_TYPES = ("number", "state")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class BadQuery(IsStreamerError, ValueError):
    """A query parameter the read API cannot use; its message says which and why."""


class NotFound(IsStreamerError, LookupError):
    """No such bucket or key; the message says which."""


def series(store: Store, bucket_key: str, query: list[tuple[str, str]], now: float) -> Any:
    """The answer of ``/series``: one series for one ``key=``, else ``{"series": [...]}``."""
    params = dict(query)
    keys = [v for k, v in query if k == "key" and v]
    kind = params.get("type") or None
    try:
        points = parse_limit(params.get("points"), DEFAULT_POINTS, MAX_POINTS, "points")
        since = parse_query_time(params.get("since"), "since")
        until = parse_query_time(params.get("until"), "until")
    except ValueError as exc:
        raise BadQuery(str(exc)) from None
    if since is not None and until is not None and since >= until:
        raise BadQuery("since must be before until")
    if kind is not None and kind not in SERIES_TYPES:
        raise BadQuery("type must be number or state")
    found = store.series(bucket_key, keys or None, since, until, points, now)
    if found is None:
        raise NotFound("no such bucket")
    if kind is not None:
        found = [s for s in found if s["type"] == kind]
    if len(keys) != 1:
        return {"series": found}
    if not found:
        raise NotFound("no such key" if kind is None else f"no {kind} series for this key")
    return found[0]  # a key with numbers and states: the numbers, unless type=state


def _label(text: str) -> str:
    # The exposition format's escapes for a label value: backslash, double quote, newline.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"  # cannot be stored, but the format has a spelling for it anyway
    return repr(float(value)) if isinstance(value, float) else str(value)


def metrics(store: Store) -> bytes:
    """The Prometheus text exposition of every key's latest number (booleans as 0 and 1)."""
    latest = store.latest()
    values = [
        "# HELP isstreamer_value The latest value of a key (true/false as 1/0).",
        "# TYPE isstreamer_value gauge",
    ]
    times = [
        "# HELP isstreamer_last_event_timestamp_seconds When the latest value was measured.",
        "# TYPE isstreamer_last_event_timestamp_seconds gauge",
    ]
    for bucket_key, key, value, epoch in latest:
        labels = f'{{bucket="{_label(bucket_key)}",key="{_label(key)}"}}'
        values.append(f"isstreamer_value{labels} {_number(value)}")
        times.append(f"isstreamer_last_event_timestamp_seconds{labels} {_number(epoch)}")
    return ("\n".join(values + times) + "\n").encode("utf-8")
