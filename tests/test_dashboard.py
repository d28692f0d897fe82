"""The collector's dashboard in a real browser: headless Chromium from Debian's `chromium` package,
driven over the DevTools pipe (tests/chromium.py). Every check reads the page's own state.

Screenshots of each run are kept for a person to look at, in pytest's base temporary
directory (``.../pytest-of-<user>/pytest-current/screenshots0/``).

Run as a script to regenerate the README screenshot from real `isstreamer metrics` data:
    python tests/test_dashboard.py docs/dashboard.png [DATABASE]
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from chromium import CHROMIUM, Browser, Page

from isstreamer.collector import Collector
from isstreamer.collector.store import Store

KEY = "dashboard-test-key"
NOW = time.time()


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
    """An hour of plausible Raspberry Pi metrics, a door that opens and closes, a string, a
    bool and an int key."""
    rng = random.Random(7)
    cpu = 20.0
    events: list[dict[str, Any]] = []
    samples = minutes * 60 // step
    for i in range(samples):
        t = NOW - (samples - i) * step
        burst = 5.0 if samples * 0.42 < i < samples * 0.49 else 0.0  # a nightly job
        cpu = max(2.0, min(98.0, cpu + rng.gauss(0, 4) + burst - (cpu - 22) * 0.08))
        events += [
            {"key": "cpu_percent", "value": round(cpu, 1), "epoch": t},
            {
                "key": "cpu_temp_c",
                "value": round(48 + cpu * 0.18 + rng.gauss(0, 0.4), 1),
                "epoch": t,
            },
            {"key": "mem_used_mib", "value": round(1800 + 90 * math.sin(i / 60)), "epoch": t},
            {"key": "load_1m", "value": round(max(0.0, 0.4 + cpu / 40), 2), "epoch": t},
            {
                "key": "net_recv_kib_per_s",
                "value": round(120 + 80 * math.sin(i / 17), 1),
                "epoch": t,
            },
        ]
        if i % 30 == 0:
            events.append({"key": "door", "value": "open" if i % 60 else "closed", "epoch": t})
    events += [
        {"key": "hostname", "value": "raspberrypi", "epoch": NOW - 2},
        {"key": "throttled", "value": False, "epoch": NOW - 2},
        {"key": "processes", "value": 187, "epoch": NOW - 2},
    ]
    return events


def seed_many_keys(db: Path, groups: int = 10, per_group: int = 1000) -> None:
    """``groups`` x ``per_group`` keys of one event each, straight into the store (fast)."""
    store = Store(db)
    rows = [
        (f"grp{g}_{i:04d}", float(i), NOW - 60 + g) for g in range(groups) for i in range(per_group)
    ]
    store.ingest("many", rows, NOW)
    store.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of Debian's Chromium; skipped when missing, except under CI=true where it must exist."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI installs it with: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One Chromium for the whole module; tests open tabs on it."""
    with Browser(tmp_path_factory.mktemp("profile"), chromium) as running:
        yield running
        assert running.errors == [], running.errors  # no page threw or logged an error


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this run's screenshots go."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector with an hour of metrics in "pi", ten minutes in "fresh", 10,000 keys in
    "many"."""
    db = tmp_path_factory.mktemp("dash") / "dash.db"
    seed_many_keys(db)
    with Collector(db, port=0, access_keys=[KEY]) as collector:
        send(collector.url, "pi", "Kitchen Pi", metrics_events())
        send(collector.url, "fresh", "Fresh", metrics_events(minutes=10)[:-3])
        yield collector


def ready(page: Page) -> None:
    """Wait until every card on screen is drawn with the current view's data."""
    page.wait_for("document.body.dataset.ready === '1'")


def card(page: Page, key: str, kind: str = "number") -> str:
    """A JavaScript expression for the bucket page's card of ``key``."""
    return f"window.IssBucket.state.cards.get({kind + ':' + key!r})"


def test_bucket_page_draws_charts_units_and_timelines(
    browser: Browser, filled: Collector, shots: Path
) -> None:
    """Every key has its card; units show on the y axis, the value and the table; a state key
    draws a timeline with its changes."""
    page = browser.open(filled.url + "/buckets/pi")
    ready(page)
    page.screenshot(shots / "bucket-laptop.png")
    cards = page.evaluate("Array.from(window.IssBucket.state.cards.keys()).sort()")
    assert "number:cpu_percent" in cards and "state:door" in cards and "state:throttled" in cards
    assert page.evaluate("document.title") == "Kitchen Pi · isstreamer"
    c = card(page, "cpu_temp_c")
    assert page.evaluate(f"{c}.value.textContent").endswith("°C")
    assert page.evaluate(f"{c}.chart.plot.axes[1].values({c}.chart.plot, [40, 50])") == [
        "40°C",
        "50°C",
    ]
    table = page.evaluate("document.getElementById('table-rows').textContent")
    assert "KiB/s" in table and "MiB" in table and "raspberrypi" in table
    door = card(page, "door", "state")
    assert int(page.evaluate(f"{door}.box.dataset.intervals")) >= 2
    # Pixels of the timeline's canvas: not blank.
    painted = page.evaluate(
        f"(() => {{ const cv = {door}.chart.canvas; const d = cv.getContext('2d')"
        ".getImageData(0, 0, cv.width, cv.height).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"
    )
    assert painted > 1000


def test_fresh_bucket_chart_fits_its_data(browser: Browser, filled: Collector) -> None:
    """Ten minutes of data under the 1 h preset fill the chart: the x-range starts at the data."""
    page = browser.open(filled.url + "/buckets/fresh?range=1h")
    ready(page)
    box = card(page, "cpu_percent") + ".box.dataset"
    x_min, x_max = float(page.evaluate(box + ".xMin")), float(page.evaluate(box + ".xMax"))
    first = requests.get(filled.url + "/api/buckets/fresh", timeout=10).json()["firstEpoch"]
    assert x_min <= first < x_min + 0.05 * (x_max - x_min)  # starts at the first event
    assert x_max >= NOW - 10 and x_max - x_min < 15 * 60  # ends now; not the whole hour


def test_drag_zoom_goes_into_the_url_and_back_undoes_it(
    browser: Browser, filled: Collector
) -> None:
    """A drag across a chart zooms every chart and puts from/to in the URL; the back button
    returns to the preset, and a double-click resets a zoom."""
    page = browser.open(filled.url + "/buckets/pi?range=1h")
    ready(page)
    over = page.evaluate(
        f"(() => {{ const r = {card(page, 'cpu_percent')}.chart.plot.over"
        ".getBoundingClientRect(); return [r.left, r.width, r.top + r.height / 2]; })()"
    )
    left, width, middle = over
    page.drag(left + width * 0.3, left + width * 0.6, middle)
    page.wait_for("location.search.includes('from=')")
    ready(page)
    zoomed = page.evaluate(f"Number({card(page, 'load_1m')}.box.dataset.xMax)")
    assert zoomed < NOW - 600  # the other charts moved too
    page.evaluate("history.back()")
    page.wait_for("!location.search.includes('from=')")
    ready(page)
    assert float(page.evaluate(f"{card(page, 'load_1m')}.box.dataset.xMax")) >= NOW - 10
    page.evaluate("history.forward()")
    page.wait_for("location.search.includes('from=')")
    ready(page)  # the charts are built again for the zoom: a click before that hits the old ones
    page.double_click(left + width * 0.5, middle)
    page.wait_for("!location.search.includes('from=')")


def test_phone_layout_puts_a_chart_above_the_fold(
    browser: Browser, filled: Collector, shots: Path
) -> None:
    """At 390x844 the first chart starts on the first screen and the table comes after it."""
    page = browser.open(filled.url + "/buckets/pi", width=390, height=844, mobile=True)
    ready(page)
    page.screenshot(shots / "bucket-phone.png")
    chart_top = page.evaluate("document.querySelector('.chart').getBoundingClientRect().top")
    table_top = page.evaluate("document.getElementById('table-box').getBoundingClientRect().top")
    assert chart_top < 844 - 200 and table_top > chart_top
    # Axis labels with room to spare: ticks at least the label width apart.
    splits = page.evaluate(f"{card(page, 'cpu_percent')}.chart.plot.axes[0]._splits.length")
    assert 2 <= splits <= 5


def test_ten_thousand_keys_stay_usable(browser: Browser, filled: Collector, shots: Path) -> None:
    """10,000 keys: groups start collapsed; an opened group draws only the charts on screen;
    the filter finds one key; the table holds only the rows in view."""
    page = browser.open(filled.url + "/buckets/many")
    page.wait_for("document.querySelectorAll('.group-head').length === 10")
    assert page.evaluate("window.IssBucket.state.cards.size") == 0
    assert page.evaluate("document.querySelectorAll('#table-rows .trow').length") < 80
    page.evaluate("document.querySelectorAll('.group-head')[3].click()")
    ready(page)
    shown = page.evaluate("window.IssBucket.state.cards.size")
    assert 0 < shown <= 40
    page.screenshot(shots / "many-keys.png")
    page.evaluate(
        "(() => { const f = document.getElementById('filter'); f.value = 'grp7_0042';"
        " f.dispatchEvent(new Event('input')); })()"
    )
    page.wait_for("location.search.includes('q=grp7_0042')")
    page.wait_for("window.IssBucket.state.cards.has('number:grp7_0042')")
    ready(page)
    assert page.evaluate("window.IssBucket.state.cards.size") == 1


def test_bucket_list_and_missing_bucket(browser: Browser, filled: Collector) -> None:
    """The start page links every bucket; a missing bucket is a 404 page with a link back."""
    page = browser.open(filled.url + "/")
    page.wait_for("document.querySelectorAll('#buckets a').length === 3")
    links = page.evaluate("Array.from(document.querySelectorAll('#buckets a'), a => a.href)")
    assert filled.url + "/buckets/pi" in links
    missing = browser.open(filled.url + "/buckets/nothing-here")
    missing.wait_for("document.readyState === 'complete'")
    assert "404" in missing.evaluate("document.body.textContent")
    assert missing.evaluate("document.querySelector('#missing a').getAttribute('href')") == "/"


def test_exposed_dashboard_asks_for_the_key(browser: Browser, tmp_path: Path) -> None:
    """Bound beyond loopback, the pages show a key form; a #key= link opens the data."""
    with Collector(tmp_path / "exposed.db", host="0.0.0.0", port=0, access_keys=[KEY]) as exposed:
        local = f"http://127.0.0.1:{exposed.port}"
        send(local, "secret", "Secret bucket", [{"key": "x", "value": 1}])
        locked = browser.open(local + "/")
        locked.wait_for("!document.getElementById('keyform').hidden")
        assert "Secret bucket" not in locked.evaluate("document.body.textContent")
        opened = browser.open(local + f"/#key={KEY}")
        opened.wait_for("document.body.textContent.includes('Secret bucket')")
        assert opened.evaluate("document.getElementById('keyform').hidden") is True
        page = browser.open(local + "/buckets/secret")  # a bucket page, without the key
        page.wait_for("!document.getElementById('keyform').hidden")
        assert page.evaluate("window.IssBucket.state.cards.size") == 0


def make_docs_screenshot(out: Path, db: Path) -> None:
    """Render the busiest bucket of ``db`` (real `isstreamer metrics` data) into ``out``."""
    with tempfile.TemporaryDirectory() as tmp, Collector(db, port=0) as collector:
        bucket = requests.get(collector.url + "/api/buckets", timeout=10).json()[0]["bucketKey"]
        with Browser(Path(tmp) / "profile") as chromium:
            page = chromium.open(f"{collector.url}/buckets/{bucket}?range=1h")
            ready(page)
            time.sleep(0.3)  # the status dot's pulse settles
            page.screenshot(out.resolve())
    print(f"wrote {out}")


if __name__ == "__main__":
    from isstreamer.collector import default_db_path

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png")
    make_docs_screenshot(target, Path(sys.argv[2]) if len(sys.argv) > 2 else default_db_path())
