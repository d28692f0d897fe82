"""The collector's read side over real HTTP: downsampled series, state intervals, one bucket's
info, /metrics, 404s, and the rollups that make them cheap (checked against the raw events)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from isstreamer.collector import Collector
from isstreamer.collector.query import nice_step
from isstreamer.collector.schema import SCHEMA_VERSION
from isstreamer.collector.store import Store

KEY = "series-test-key"
T0 = 1_699_999_200.0  # a multiple of 1800 s, so the time buckets line up with it
WEEK_S = 7 * 86400


def week_rows() -> list[tuple[str, Any, float]]:
    """A week of 60-second data for two number keys, a door, a flag, and a key that turns
    from numbers to text."""
    rows: list[tuple[str, Any, float]] = []
    for i in range(WEEK_S // 60):
        t = T0 + i * 60
        rows.append(("temp_c", 20 + i % 10, t))
        rows.append(("load", float(i % 7), t))
        if i % 120 == 0:
            rows.append(("door", "open" if (i // 120) % 2 else "closed", t))
    rows += [("flag", True, T0 + 10), ("flag", False, T0 + 20), ("flag", True, T0 + 30)]
    rows += [("mixed", 1, T0), ("mixed", 2, T0 + 60), ("mixed", "broken", T0 + 120)]
    rows += [("fast", i % 5, T0 + i) for i in range(600)]  # ten minutes at 1 Hz
    return rows


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A collector whose bucket "w" holds week_rows(), seeded through the store in batches."""
    db = tmp_path_factory.mktemp("series") / "series.db"
    store = Store(db)
    rows = week_rows()
    for start in range(0, len(rows), 1000):
        store.ingest("w", rows[start : start + 1000], T0 + WEEK_S)
    store.close()
    with Collector(db, port=0, access_keys=[KEY]) as collector:
        yield collector.url


def get(url: str, path: str, **params: Any) -> requests.Response:
    return requests.get(url + path, params=params, timeout=10)


def test_one_key_over_a_week_is_downsampled_and_covers_the_range(url: str) -> None:
    """600 points over a week: 30-minute buckets from the first to the last event, whose
    min, max, mean, last and count agree with the raw data."""
    week = {"since": T0, "until": T0 + WEEK_S - 1}
    answer = get(url, "/api/buckets/w/series", key="temp_c", points=600, **week).json()
    assert answer["columns"] == ["epoch", "min", "max", "mean", "last", "count"]
    assert answer["step"] == 1800 and answer["type"] == "number"
    rows = answer["rows"]
    assert len(rows) == WEEK_S // 1800
    assert rows[0][0] == T0 and rows[-1][0] == T0 + WEEK_S - 1800
    assert sum(r[5] for r in rows) == WEEK_S // 60  # every event counted once
    first = rows[0]  # minutes 0..29 of temp_c = 20 + i % 10
    assert first[1:] == [20, 29, pytest.approx(24.5), 29, 30]


def test_short_range_gives_raw_points(url: str) -> None:
    """Fewer events than points: the raw points themselves, step null."""
    since, until = T0 + 3600, T0 + 3600 + 600
    answer = get(url, "/api/buckets/w/series", key="load", since=since, until=until).json()
    assert answer["step"] is None
    assert [r[0] for r in answer["rows"]] == [since + 60 * i for i in range(11)]
    assert all(r[1] == r[2] == r[3] == r[4] and r[5] == 1 for r in answer["rows"])


def test_steps_below_the_rollups_aggregate_the_events(url: str) -> None:
    """A 6-hour range at 100 points: 300-second buckets from the 60-second rollups; ten
    minutes of 1 Hz data at 20 points: 30-second buckets, grouped from the events."""
    six = get(
        url, "/api/buckets/w/series", key="load", since=T0, until=T0 + 6 * 3600 - 1, points=100
    )
    assert six.json()["step"] == 300 and len(six.json()["rows"]) == 72
    assert all(r[5] == 5 for r in six.json()["rows"][:-1])
    fast = get(url, "/api/buckets/w/series", key="fast", since=T0, until=T0 + 599, points=20)
    rows = fast.json()["rows"]
    assert fast.json()["step"] == 30 and len(rows) == 20
    assert rows[0] == [T0, 0, 4, 2.0, 4, 30]  # 30 of i % 5: mean 2, the last one 29 % 5
    assert nice_step(7200, 50) == 300 and nice_step(WEEK_S * 52, 600) == 86400


def test_state_keys_give_intervals_and_merge_past_points(url: str) -> None:
    """A string key's changes are intervals; with more changes than points they merge, and
    the state in force before the range starts opens it."""
    door = get(url, "/api/buckets/w/series", key="door", since=T0 + 7200 + 30, until=T0 + 6 * 3600)
    body = door.json()
    assert body["type"] == "state" and body["columns"] == ["epoch", "end", "value", "changes"]
    assert body["rows"][0][:3] == [T0 + 7200 + 30, T0 + 14400, "open"]  # in force at since
    assert body["rows"][1][:3] == [T0 + 14400, T0 + 21600, "closed"]
    assert body["rows"][2][:3] == [T0 + 21600, T0 + 21600, "open"]  # until: the range's end
    whole = {"since": T0, "until": T0 + WEEK_S}
    week = get(url, "/api/buckets/w/series", key="door", points=10, **whole).json()
    assert week["step"] is not None and len(week["rows"]) <= 10
    assert sum(r[3] for r in week["rows"]) == WEEK_S // 7200  # every change accounted for
    flag = get(url, "/api/buckets/w/series", key="flag", since=T0, until=T0 + 40).json()
    assert [r[2] for r in flag["rows"]] == [True, False, True]


def test_whole_bucket_in_one_request_and_mixed_keys(url: str) -> None:
    """Without key=, every key's series at once; a key that went from numbers to text has a
    number series and a state series."""
    answer = get(url, "/api/buckets/w/series", points=200).json()
    kinds = {(s["key"], s["type"]) for s in answer["series"]}
    assert kinds == {
        ("temp_c", "number"),
        ("load", "number"),
        ("door", "state"),
        ("flag", "state"),
        ("mixed", "number"),
        ("mixed", "state"),
        ("fast", "number"),
    }
    assert {s["since"] for s in answer["series"]} == {T0}  # one range for all
    mixed = get(url, "/api/buckets/w/series", key="mixed", type="state").json()
    assert mixed["rows"][0][2] == "broken"


def test_bucket_info_metrics_and_404s(url: str) -> None:
    """/api/buckets/{k} tells the span; /metrics lists the latest numbers; unknown buckets,
    keys and bucket pages are 404; bad parameters 400."""
    info = get(url, "/api/buckets/w").json()
    assert info["keys"] == 6 and info["firstEpoch"] == T0 and info["bucketName"] == "w"
    metrics = get(url, "/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'isstreamer_value{bucket="w",key="temp_c"} 29' in metrics.text
    assert 'isstreamer_value{bucket="w",key="flag"} 1' in metrics.text
    assert 'key="door"' not in metrics.text.split("isstreamer_last_event")[0]  # text: no gauge
    for path in ("/api/buckets/nope", "/api/buckets/nope/series", "/buckets/nope"):
        assert get(url, path).status_code == 404, path
    assert "All buckets" in get(url, "/buckets/nope").text
    assert get(url, "/api/buckets/w/series", key="absent").status_code == 404
    assert get(url, "/api/buckets/w/series", points="0").status_code == 400
    assert get(url, "/api/buckets/w/series", since=T0 + 5, until=T0).status_code == 400


def test_metrics_escapes_labels_and_needs_the_key_when_exposed(tmp_path: Path) -> None:
    """Quotes, backslashes and newlines in names are escaped; an exposed collector's /metrics
    needs the access key, as the rest of the read API does."""
    with Collector(tmp_path / "m.db", host="0.0.0.0", port=0, access_keys=[KEY]) as exposed:
        local = f"http://127.0.0.1:{exposed.port}"
        headers = {"X-IS-AccessKey": KEY, "X-IS-BucketKey": "a\\b"}
        events = [{"key": 'x\\y\n"z"', "value": 2.5}]
        assert requests.post(local + "/api/events", json=events, headers=headers).status_code == 204
        assert requests.get(local + "/metrics", timeout=10).status_code == 401
        text = requests.get(local + "/metrics", headers={"X-IS-AccessKey": KEY}, timeout=10).text
    assert 'isstreamer_value{bucket="a\\\\b",key="x\\\\y\\n\\"z\\""} 2.5' in text


def test_old_database_is_migrated_with_rollups(tmp_path: Path) -> None:
    """A database from before the rollups opens, gets its rollups built once, and answers."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:
        old.executescript(
            "CREATE TABLE buckets (id INTEGER PRIMARY KEY, bucket_key TEXT NOT NULL UNIQUE,"
            " name TEXT NOT NULL, created REAL NOT NULL);"
            "CREATE TABLE series (id INTEGER PRIMARY KEY, bucket_id INTEGER NOT NULL, key TEXT"
            " NOT NULL, count INTEGER NOT NULL DEFAULT 0, last_epoch REAL, last_kind INTEGER,"
            " last_value, UNIQUE (bucket_id, key));"
            "CREATE TABLE events (id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,"
            " epoch REAL NOT NULL, kind INTEGER NOT NULL, value);"
            "INSERT INTO buckets VALUES (1, 'b', 'b', 0);"
            "INSERT INTO series VALUES (1, 1, 'x', 3, 1700000120, 0, 3);"
            "INSERT INTO events (series_id, epoch, kind, value) VALUES"
            " (1, 1700000000, 0, 1), (1, 1700000060, 0, 2), (1, 1700000120, 0, 3);"
        )
    store = Store(db)
    try:
        answer = store.series("b", ["x"], 1_700_000_000, 1_700_086_400, 2, 1_700_086_400)
        assert answer is not None and answer[0]["step"] == 43200  # from the built rollups
        assert [row[1:] for row in answer[0]["rows"]] == [[1, 3, 2.0, 3, 3]]
        assert store.keys("b") == [
            {
                "key": "x",
                "count": 3,
                "lastValue": 3,
                "firstEpoch": 1_700_000_000,
                "lastEpoch": 1_700_000_120,
                "types": ["number"],
            }
        ]
    finally:
        store.close()
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
