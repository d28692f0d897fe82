"""Module-level replay(): spill files, spool directories and legacy ISStreamer files."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer

from isstreamer import ConfigError, Streamer
from isstreamer.replay import ReplayResult, replay
from isstreamer.retry import RetryPolicy
from isstreamer.sinks.base import Bucket
from isstreamer.spool import QUARANTINE, Spool, event_count
from isstreamer.spool.legacy import parse_epoch, parse_value, read_missed_events, read_offline_csv

NOW = 1_790_000_000.0
FAST = RetryPolicy(attempts=1)  # a failed send is final at once: no backoff waits in tests


def spill(
    directory: Path, server: ApiServer, bucket: str, n: int, *, start: int = 0, sink: str = ""
) -> Path:
    """One spill file of ``n`` events for ``bucket``, as a Streamer would have written it."""
    events = [(f"k{i}", start + i, NOW + start + i) for i in range(n)]
    return Spool(directory).write(Bucket(bucket, bucket.upper()), events, sink=sink or server.url)


def settings(server: ApiServer, key: str, tmp_path: Path, **extra: Any) -> dict:
    return dict(
        access_key=key,
        api_base=server.url,
        spill_dir=tmp_path / "configured-spool",
        retry_policy=FAST,
        **extra,
    )


def test_spool_directory_goes_to_each_files_bucket(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """Every file's events reach the bucket recorded in it, and the files are deleted."""
    spool = tmp_path / "spool"
    spill(spool, api_server, "b1", 3)
    spill(spool, api_server, "b2", 2, start=10)
    seen: list = []
    result = replay(
        spool, **settings(api_server, access_key, tmp_path), progress=lambda *a: seen.append(a)
    )
    assert result == ReplayResult(sent=5) and result.ok
    assert [e["value"] for e in api_server.events_for("b1")] == [0, 1, 2]
    assert [e["epoch"] for e in api_server.events_for("b2")] == [NOW + 10, NOW + 11]
    assert api_server.buckets == {"b1": "B1", "b2": "B2"}
    assert Spool(spool).files() == []
    assert seen[-1][:2] == (5, 5)


def test_no_path_replays_the_configured_spool(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """With no path, the spill_dir from the arguments (or environment, or ini) is replayed."""
    configured = tmp_path / "configured-spool"
    spill(configured, api_server, "b1", 4)
    assert replay(**settings(api_server, access_key, tmp_path)).sent == 4
    assert len(api_server.events) == 4


def test_a_single_file_replays_only_that_file(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """Naming one spill file leaves its neighbours in the spool."""
    spool = tmp_path / "spool"
    chosen = spill(spool, api_server, "b1", 2)
    other = spill(spool, api_server, "b1", 3, start=5)
    result = replay([str(chosen)], **settings(api_server, access_key, tmp_path))
    assert result.sent == 2 and result.remaining == 0
    assert Spool(spool).files() == [other]


def test_receiver_down_keeps_the_files(access_key: str, tmp_path: Path) -> None:
    """When the receiver cannot be reached, nothing is lost and the counts say so."""
    server = ApiServer().start()
    spool = tmp_path / "spool"
    spill(spool, server, "b1", 2)
    spill(spool, server, "b1", 3)
    server.stop()  # connections are refused from now on
    result = replay(spool, **settings(server, access_key, tmp_path))
    assert (result.sent, result.failed, result.remaining) == (0, 2, 5) and not result.ok
    assert "cannot reach" in result.last_error
    assert sorted(event_count(p) for p in Spool(spool).files()) == [2, 3]


def test_bad_batch_is_quarantined_and_the_rest_replayed(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A 400 moves that file's events to the quarantine; the next file is still sent."""
    spool = tmp_path / "spool"
    spill(spool, api_server, "b1", 2)
    spill(spool, api_server, "b1", 3, start=10)
    api_server.fail(400, body={"message": "bad event"})
    result = replay(spool, **settings(api_server, access_key, tmp_path))
    assert (result.sent, result.quarantined, result.remaining) == (3, 2, 0)
    assert len(list((spool / QUARANTINE).glob("*.json"))) == 1


def test_corrupt_file_is_quarantined(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """An unreadable spill file goes to the quarantine and does not stop the others."""
    spool = tmp_path / "spool"
    bad = spill(spool, api_server, "b1", 4)
    bad.write_text('{"format": 1, "events": [[')
    spill(spool, api_server, "b1", 2, start=10)
    result = replay(spool, **settings(api_server, access_key, tmp_path))
    assert (result.sent, result.quarantined) == (2, 4)
    assert (spool / QUARANTINE / bad.name).exists()


def test_files_for_another_receiver_are_left_alone(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A file spilled for another receiver stays unless any_receiver sends it here."""
    spool = tmp_path / "spool"
    foreign = spill(spool, api_server, "b1", 3, sink="https://groker.init.st")
    spill(spool, api_server, "b1", 1, start=9)
    result = replay(spool, **settings(api_server, access_key, tmp_path))
    assert (result.sent, result.remaining) == (1, 3)
    assert foreign.exists()
    again = replay(spool, **settings(api_server, access_key, tmp_path), any_receiver=True)
    assert again == ReplayResult(sent=3)
    assert [e["value"] for e in api_server.events] == [9, 0, 1, 2]


def test_a_file_claimed_by_a_live_sender_is_not_sent(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A file another sender holds is skipped, so no event is sent twice."""
    spool = tmp_path / "spool"
    held = Spool(spool).claim(spill(spool, api_server, "b1", 3))
    spill(spool, api_server, "b1", 1, start=9)
    assert replay(spool, **settings(api_server, access_key, tmp_path)).sent == 1
    assert held is not None and held.exists()
    assert [e["value"] for e in api_server.events] == [9]


def test_stop_event_leaves_everything_on_disk(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A replay told to stop before it starts sends nothing and keeps every file."""
    spool = tmp_path / "spool"
    spill(spool, api_server, "b1", 3)
    stop = threading.Event()
    stop.set()
    result = replay(spool, **settings(api_server, access_key, tmp_path), stop_event=stop)
    assert (result.sent, result.remaining) == (0, 3)
    assert api_server.requests == []


def test_missed_events_file_goes_to_the_given_bucket(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """err_missed_events.txt lines reach bucket_key with their own epochs; the file is untouched."""
    missed = tmp_path / "err_missed_events.txt"
    lines = [
        json.dumps(
            [
                {"key": "t", "value": 21.5, "epoch": NOW},
                {"key": "on", "value": True, "epoch": NOW + 1},
            ]
        ),
        json.dumps({"bucketKey": "old", "bucketName": "Old"}),
        json.dumps([{"key": "s", "value": "hi", "epoch": NOW + 2}]),
    ]
    missed.write_text("\n".join(lines) + "\n")
    before = missed.read_bytes()
    result = replay(missed, **settings(api_server, access_key, tmp_path, bucket_key="legacy"))
    assert result == ReplayResult(sent=3)
    assert [(e["key"], e["value"], e["epoch"]) for e in api_server.events_for("legacy")] == [
        ("t", 21.5, NOW),
        ("on", True, NOW + 1),
        ("s", "hi", NOW + 2),
    ]
    assert missed.read_bytes() == before


def test_offline_csv_from_offline_mode_round_trips(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A CSV written by offline mode replays with its types: int, float, bool and string."""
    ini = tmp_path / "offline.ini"
    ini.write_text(
        f"[isstreamer.client_config]\noffline_mode = true\noffline_file = {tmp_path / 'out'}\n"
    )
    with Streamer(bucket_key="x", ini_file_location=str(ini)) as streamer:
        for key, value in (
            ("count", 3),
            ("temp", 21.5),
            ("on", True),
            ("word", "True"),
            ("n", "007x"),
        ):
            streamer.log(key, value, epoch=NOW)
    result = replay(
        tmp_path / "out.csv", **settings(api_server, access_key, tmp_path, bucket_key="csv")
    )
    assert result == ReplayResult(sent=5)
    assert [e["value"] for e in api_server.events_for("csv")] == [3, 21.5, True, "True", "007x"]


def test_legacy_failure_goes_to_the_spool_for_later(access_key: str, tmp_path: Path) -> None:
    """Legacy events that cannot be sent are kept in the spool; the next replay delivers them."""
    server = ApiServer()
    server.start()
    url = server.url
    server.stop()
    csv_file = tmp_path / "readings.csv"
    csv_file.write_text("".join(f"{NOW + i},k,{i}\n" for i in range(1200)))  # three chunks of 500
    options = settings(server, access_key, tmp_path, bucket_key="csv")
    down = replay(csv_file, **options)
    assert (down.sent, down.failed, down.remaining) == (0, 500, 1200)
    server.start()  # same port
    try:
        up = replay(**options)  # the configured spool now holds them
        assert up == ReplayResult(sent=1200)
        assert [e["value"] for e in server.events_for("csv")] == list(range(1200))
        assert server.url == url
    finally:
        server.stop()


def test_legacy_file_needs_a_bucket_key(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """Without a bucket key, a legacy file is refused before anything is sent."""
    csv_file = tmp_path / "readings.csv"
    csv_file.write_text(f"{NOW},k,1\n")
    with pytest.raises(ConfigError, match="bucket key"):
        replay(csv_file, **settings(api_server, access_key, tmp_path))
    assert api_server.requests == []


def test_no_access_key_and_missing_path_are_refused(api_server: ApiServer, tmp_path: Path) -> None:
    """No key is a ConfigError, a path that does not exist a FileNotFoundError; nothing is sent."""
    with pytest.raises(ConfigError, match="access key"):
        replay(api_base=api_server.url, spill_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        replay(tmp_path / "nope.txt", access_key="k", api_base=api_server.url)
    assert api_server.requests == []


def test_legacy_readers_skip_and_count_bad_lines(tmp_path: Path) -> None:
    """Unreadable lines are skipped with a count; headers and bucket lines are not events."""
    missed = tmp_path / "err_missed_events.txt"
    missed.write_text(
        '[{"key": "a", "value": 1, "epoch": 5}]\nnot json\n[{"key": "b"}]\n'
        '[{"key": "c", "value": null, "epoch": 5}]\n[{"key": "d", "value": 2, '
        '"iso8601": "2026-01-01T00:00:00Z"}]\n'
    )
    events, skipped = read_missed_events(missed)
    assert [(k, v) for k, v, _ in events] == [("a", 1), ("d", 2)] and skipped == 3
    assert events[1][2] == parse_epoch("2026-01-01T00:00:00+00:00")
    data = tmp_path / "data.csv"
    data.write_text('epoch,key,value\n1,a,1.5\n2,b\n3,c,"x, y"\nsoon,d,1\n4,e,false\n')
    events, skipped = read_offline_csv(data)
    assert events == [("a", 1.5, 1.0), ("c", "x, y", 3.0), ("e", False, 4.0)] and skipped == 2


@pytest.mark.parametrize(
    "text, value",
    [
        ("21.5", 21.5),
        ("-3", -3),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("true", True),
        ("false", False),
        ("True", "True"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("0x10", "0x10"),
        ("1_000", "1_000"),
        ("", ""),
        ("hello world", "hello world"),
    ],
)
def test_parse_value(text: str, value: Any) -> None:
    """Numbers and lower-case true/false are typed; everything else stays the string it was."""
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_spill_files_keep_their_mode(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A partly failed replay rewrites what is left with mode 0600, never wider."""
    spool = tmp_path / "spool"
    spill(spool, api_server, "b1", 2)
    api_server.fail(503)
    replay(spool, **settings(api_server, access_key, tmp_path))
    assert [oct(os.stat(p).st_mode & 0o777) for p in Spool(spool).files()] == ["0o600"]


def test_a_poison_event_is_counted_from_the_delivery_reports(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A file with one event the receiver cannot store: the others sent, that one quarantined."""
    spool = tmp_path / "spool"
    spill(spool, api_server, "b1", 6)
    api_server.poison(3)  # a batch holding the value 3 is answered 500
    result = replay(spool, **settings(api_server, access_key, tmp_path))
    assert (result.sent, result.quarantined, result.failed, result.remaining) == (5, 1, 0, 0)
    assert sorted(e["value"] for e in api_server.events_for("b1")) == [0, 1, 2, 4, 5]
    [held] = (spool / QUARANTINE).glob("*.json")
    assert event_count(held) == 1


def test_a_partly_delivered_selected_file_is_followed(
    api_server: ApiServer, access_key: str, tmp_path: Path
) -> None:
    """A named file the receiver fails on is kept (rewritten) and counted once as failed."""
    spool = tmp_path / "spool"
    chosen = spill(spool, api_server, "b1", 3)
    spill(spool, api_server, "b1", 2, start=10)
    api_server.fail(503, times=None)
    result = replay([str(chosen)], **settings(api_server, access_key, tmp_path))
    assert (result.sent, result.failed, result.remaining) == (0, 3, 3) and not result.ok
    assert sorted(event_count(p) for p in Spool(spool).files()) == [2, 3]
