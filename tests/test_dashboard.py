"""The collector's dashboard in a real browser: headless Chromium from Debian's `chromium` package.

Run as a script to regenerate the README screenshot from realistic metrics-like data:
    python tests/test_dashboard.py docs/dashboard.png
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from isstreamer.collector import Collector

CHROMIUM = "/usr/bin/chromium"
KEY = "dashboard-test-key"
# Without the networking flags Chromium keeps dialling Google's hosts, which this network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of Debian's Chromium; skipped when missing, except under CI=true where it must exist."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI installs it with: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    return CHROMIUM


def browse(chromium: str, url: str, profile: Path, *args: str, size: str = "1280,800") -> str:
    """Load ``url`` headless with a fresh profile; returns stdout (the DOM with --dump-dom)."""
    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}", *args, url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def send(url: str, bucket: str, name: str, events: list[dict[str, Any]]) -> None:
    """Create ``bucket`` and post ``events`` to it through the ingest API."""
    headers = {"X-IS-AccessKey": KEY, "X-IS-BucketKey": bucket}
    created = requests.post(
        url + "/api/buckets",
        json={"bucketKey": bucket, "bucketName": name},
        headers=headers,
        timeout=10,
    )
    assert created.status_code in (201, 204)
    for start in range(0, len(events), 1000):
        posted = requests.post(
            url + "/api/events", json=events[start : start + 1000], headers=headers, timeout=10
        )
        assert posted.status_code == 204, posted.text


def metrics_events(minutes: int = 60, step: int = 10) -> list[dict[str, Any]]:
    """An hour of plausible Raspberry Pi metrics, plus a string, a bool and an int key."""
    rng = random.Random(7)
    now = time.time()
    cpu = 20.0
    events: list[dict[str, Any]] = []
    samples = minutes * 60 // step
    for i in range(samples):
        t = now - (samples - i) * step
        burst = 5.0 if samples * 0.42 < i < samples * 0.49 else 0.0  # a nightly job
        cpu = max(2.0, min(98.0, cpu + rng.gauss(0, 4) + burst - (cpu - 22) * 0.08))
        events += [
            {"key": "cpu_percent", "value": round(cpu, 1), "epoch": t},
            {
                "key": "cpu_temp_c",
                "value": round(48 + cpu * 0.18 + rng.gauss(0, 0.4), 1),
                "epoch": t,
            },
            {
                "key": "memory_percent",
                "value": round(41 + 6 * math.sin(i / 60) + rng.random(), 1),
                "epoch": t,
            },
            {
                "key": "load_1m",
                "value": round(max(0.0, 0.4 + cpu / 40 + rng.gauss(0, 0.08)), 2),
                "epoch": t,
            },
            {
                "key": "net_recv_kbps",
                "value": round(max(0.0, 120 + 80 * math.sin(i / 17) + rng.gauss(0, 25)), 1),
                "epoch": t,
            },
            {"key": "disk_used_percent", "value": round(63.2 + i * 0.002, 2), "epoch": t},
        ]
    events += [
        {"key": "hostname", "value": "raspberrypi", "epoch": now - 2},
        {"key": "throttled", "value": False, "epoch": now - 2},
        {"key": "processes", "value": 187, "epoch": now - 2},
    ]
    return events


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Collector]:
    """A collector holding an hour of metrics in bucket "pi" and a second, small bucket."""
    with Collector(tmp_path / "dash.db", port=0, access_keys=[KEY]) as collector:
        send(collector.url, "pi", "Kitchen Pi", metrics_events())
        send(collector.url, "greenhouse", "Greenhouse", [{"key": "humidity", "value": 61.5}])
        yield collector


def test_bucket_page_renders_keys_table_and_charts(
    chromium: str, filled: Collector, tmp_path: Path
) -> None:
    """The bucket page lists every key with its latest value and draws a canvas per numeric key."""
    dom = browse(chromium, filled.url + "/buckets/pi", tmp_path / "profile", "--dump-dom")
    for key in (
        "cpu_percent",
        "cpu_temp_c",
        "memory_percent",
        "load_1m",
        "hostname",
        "throttled",
        "processes",
    ):
        assert key in dom
    assert "raspberrypi" in dom and "false" in dom and "Kitchen Pi" in dom
    assert (
        dom.count('class="card chart"') == 7
    )  # six metrics and the int key; not the str/bool ones
    assert dom.count("<canvas") >= 7
    assert 'data-state="live"' in dom


def test_bucket_list_page(chromium: str, filled: Collector, tmp_path: Path) -> None:
    """The start page lists both buckets with links to their pages."""
    dom = browse(chromium, filled.url + "/", tmp_path / "profile", "--dump-dom")
    assert "Kitchen Pi" in dom and "Greenhouse" in dom
    assert 'href="/buckets/pi"' in dom and 'href="/buckets/greenhouse"' in dom


def test_exposed_dashboard_asks_for_the_key(chromium: str, tmp_path: Path) -> None:
    """Bound beyond loopback, the page shows a key form; a #key= link opens the data."""
    with Collector(tmp_path / "exposed.db", host="0.0.0.0", port=0, access_keys=[KEY]) as exposed:
        local = f"http://127.0.0.1:{exposed.port}"
        send(local, "secret", "Secret bucket", [{"key": "x", "value": 1}])
        locked = browse(chromium, local + "/", tmp_path / "p1", "--dump-dom")
        opened = browse(chromium, local + f"/#key={KEY}", tmp_path / "p2", "--dump-dom")
    assert "Secret bucket" not in locked and 'id="keyform" class="card keyform">' in locked
    assert "Secret bucket" in opened and 'id="keyform" class="card keyform" hidden' in opened


@pytest.mark.parametrize("size", ["1280,800", "390,844"])
def test_screenshot_laptop_and_phone(
    chromium: str, filled: Collector, tmp_path: Path, size: str
) -> None:
    """Screenshots at laptop and phone size come out as real PNGs of a rendered page."""
    shot = tmp_path / "dashboard.png"
    browse(
        chromium,
        filled.url + "/buckets/pi",
        tmp_path / "profile",
        f"--screenshot={shot}",
        size=size,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert f"{width},{height}" == size
    assert len(data) > 20_000  # a blank page compresses to a few kB


def make_docs_screenshot(out: Path) -> None:
    """Render the bucket page with an hour of metrics into ``out`` (1280x800)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        Collector(Path(tmp) / "docs.db", port=0, access_keys=[KEY]) as c,
    ):
        send(c.url, "pi", "Kitchen Pi", metrics_events())
        browse(
            CHROMIUM, c.url + "/buckets/pi", Path(tmp) / "profile", f"--screenshot={out.resolve()}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    make_docs_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png"))
