"""The goals of docs/architecture.md checked against the figures, and the markdown tables."""

from __future__ import annotations

from typing import Any

OURS, LEGACY, CEILING, FLOOR = "isstreamer", "ISStreamer", "requests", "floor"
_BASELINE_NOTES = {
    "requests": " (pre-built batches)",
    "http.client": " (pre-built batches)",
    "requests+json": " (json.dumps per batch)",
}


def _get(tree: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _known(values: Any) -> list[float] | None:
    """The values, or None when any is missing (a failed or skipped run)."""
    values = list(values)
    return None if any(v is None for v in values) else values


def _check(values: list[float] | None, test: Any) -> bool | None:
    return None if values is None else bool(test(values))


def _goal(goal: str, figure: str, met: bool | None) -> dict[str, Any]:
    return {"goal": goal, "figure": figure, "met": met}


def evaluate_goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per goal: its text, the measured figure and met (None: could not measure)."""
    goals = []
    med = {b: _get(r, "log_cost", OURS, b, "log", "median_ns") for b in ("10", "1000")}
    p99 = {b: _get(r, "log_cost", OURS, b, "log", "p99_ns") for b in ("10", "1000")}
    floor = _get(r, "log_cost", OURS, "10", "floor", "median_ns")
    goals.append(
        _goal(
            "log() median ≤ 1 µs (buffer_size 10 / 1000)",
            f"{_num(med['10'], 0)} / {_num(med['1000'], 0)} ns (floor {_num(floor, 0)} ns)",
            _check(_known(med.values()), lambda v: max(v) <= 1000),
        )
    )
    goals.append(
        _goal(
            "log() p99 ≤ 20 µs (buffer_size 10 / 1000)",
            f"{_num(p99['10'], 0)} / {_num(p99['1000'], 0)} ns",
            _check(_known(p99.values()), lambda v: max(v) <= 20_000),
        )
    )
    ratios = {
        b: _ratio(_get(r, "log_cost", LEGACY, b, "log", "median_ns"), med[b])
        for b in ("10", "1000")
    }
    goals.append(
        _goal(
            "log() ≥ 8× cheaper than ISStreamer (median, buffer_size 10 / 1000)",
            f"{_num(ratios['10'], 1)}× / {_num(ratios['1000'], 1)}×",
            _check(_known(ratios.values()), lambda v: min(v) >= 8),
        )
    )
    sensor = {impl: _get(r, "sensor", impl, "cpu_per_10k_s") for impl in (OURS, LEGACY, FLOOR)}
    over_floor = _ratio(sensor[OURS], sensor[FLOOR])
    goals.append(
        _goal(
            "sensor loop (20 keys at 10 Hz, buffer_size 10): CPU per event ≤ 1.3× the floor",
            f"{_num(sensor[OURS], 3)} s vs {_num(sensor[FLOOR], 3)} s per 10k events: "
            f"{_num(over_floor, 2)}×",
            over_floor <= 1.3 if over_floor is not None else None,
        )
    )
    under_legacy = _ratio(sensor[LEGACY], sensor[OURS])
    goals.append(
        _goal(
            "sensor loop: CPU per event ≥ 2.5× less than ISStreamer",
            f"{_num(sensor[OURS], 3)} s vs {_num(sensor[LEGACY], 3)} s per 10k events: "
            f"{_num(under_legacy, 2)}×",
            under_legacy >= 2.5 if under_legacy is not None else None,
        )
    )
    burst = _get(r, "burst", OURS) or {}
    burst_ref = _get(r, "burst", "requests+json", "events_per_s")
    burst_ratio = _ratio(burst.get("events_per_s"), burst_ref)
    all_in = burst.get("events") is not None and burst.get("delivered_by_return") == burst["events"]
    no_spill = burst.get("spilled") == 0 and burst.get("spill_files_left") == 0
    goals.append(
        _goal(
            f"burst of {_num(burst.get('events'))} at buffer_size 1000, then close(): all "
            "delivered by close(), no spill file, ≥ requests.Session + json.dumps",
            f"{_num(burst.get('delivered_by_return'))} delivered by close(), "
            f"{_num(burst.get('spilled'))} spilled; {_num(burst.get('events_per_s'), 0)} vs "
            f"{_num(burst_ref, 0)} events/s: {_num(burst_ratio, 2)}×",
            (all_in and no_spill and burst_ratio >= 1) if burst_ratio is not None else None,
        )
    )
    ours_e2e = _get(r, "end_to_end", OURS, "1000", "events_per_s")
    e2e_ratio = _ratio(ours_e2e, _get(r, "end_to_end", LEGACY, "1000", "events_per_s"))
    goals.append(
        _goal(
            "end to end at buffer_size 1000 ≥ 1.8× ISStreamer",
            f"{_num(e2e_ratio, 2)}× "
            f"({_num(_get(r, 'end_to_end', LEGACY, '1000', 'events_per_s'), 0)} events/s)",
            e2e_ratio >= 1.8 if e2e_ratio is not None else None,
        )
    )
    down = {
        q: [_get(r, "outage", OURS, b, "log", q) for b in ("10", "1000")]
        for q in ("median_ns", "p99_ns")
    }
    goals.append(
        _goal(
            "log() while the receiver is down: median ≤ 1 µs, p99 ≤ 20 µs (buffer_size 10 / 1000)",
            " / ".join(f"{_num(m, 0)}, {_num(p, 0)} ns" for m, p in zip(*down.values())),
            _check(
                _known(down["median_ns"] + down["p99_ns"]),
                lambda v: max(v[:2]) <= 1000 and max(v[2:]) <= 20_000,
            ),
        )
    )
    growth = [_get(r, "outage", OURS, b, "rss_growth_down_mib") for b in ("10", "1000")]
    events = _get(r, "outage", OURS, "10", "events")
    goals.append(
        _goal(
            f"RSS growth < 60 MiB through a {_num(events)}-event outage (buffer_size 10 / 1000)",
            f"{_num(growth[0], 1)} / {_num(growth[1], 1)} MiB",
            _check(_known(growth), lambda v: max(v) < 60),
        )
    )
    idle = _get(r, "idle", OURS, "cpu_per_10s")
    goals.append(
        _goal(
            "idle CPU < 0.1 s per 10 s",
            f"{_num(idle, 4)} s",
            idle < 0.1 if idle is not None else None,
        )
    )
    return goals


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _errors(section: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in section.items():
        if isinstance(value, dict):
            if "error" in value:
                out.append(f"- {prefix}{key}: **error** {value['error']}")
            else:
                out += _errors(value, f"{prefix}{key} ")
    return out


def _e2e_ratio(r: dict[str, Any], other: str, size: str) -> str:
    ours = _get(r, "end_to_end", OURS, size, "events_per_s")
    return _num(_ratio(ours, _get(r, "end_to_end", other, size, "events_per_s")), 2) + "×"


def render(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    verdict = {True: "met", False: "**not met**", None: "n/a"}
    legacy = r["legacy"]["version"] if r["legacy"]["available"] else "not run"
    kind = "quick" if r.get("quick") else "full"
    lines = [
        (
            f"Machine: {m.get('nproc')} CPUs, {m.get('cpu')}, Python {m.get('python')}; "
            f"ISStreamer {legacy}; `{r.get('command')}` ({kind} run, {r.get('seconds')} s)"
        ),
        "",
    ]
    lines += _table(
        ["goal", "measured", "verdict"],
        [[g["goal"], g["figure"], verdict[g["met"]]] for g in r["goals"]],
    )
    impls = [i for i in (OURS, LEGACY) if i in r["log_cost"]]

    lines += ["", "log() per call, ns (batches of 100 calls timed with perf_counter_ns)", ""]
    rows = []
    for impl in impls:
        for b, run in r["log_cost"][impl].items():
            log, floor = run.get("log", {}), run.get("floor", {})
            rows.append(
                [
                    impl,
                    b,
                    _num(log.get("median_ns"), 0),
                    _num(log.get("p99_ns"), 0),
                    _num(log.get("mean_ns"), 0),
                    _num(floor.get("median_ns"), 0),
                    _num(floor.get("p99_ns"), 0),
                    _num(_ratio(log.get("median_ns"), floor.get("median_ns")), 1),
                ]
            )
    lines += _table(
        ["client", "buffer_size", "median", "p99", "mean", "floor median", "floor p99", "× floor"],
        rows,
    )

    sizes = ["10", "100", "1000"]
    lines += ["", "CPU (user+sys, whole process) per 10,000 delivered events, s", ""]
    rows = [
        [impl] + [_num(_get(r, "cpu_per_10k", impl, b, "cpu_per_10k_s"), 3) for b in sizes]
        for impl in r["cpu_per_10k"]
    ]
    if LEGACY in r["cpu_per_10k"]:
        rows.append(
            ["ISStreamer ÷ isstreamer"]
            + [
                _num(
                    _ratio(
                        _get(r, "cpu_per_10k", LEGACY, b, "cpu_per_10k_s"),
                        _get(r, "cpu_per_10k", OURS, b, "cpu_per_10k_s"),
                    ),
                    2,
                )
                + "×"
                for b in sizes
            ]
        )
    lines += _table(["client"] + [f"buffer_size {b}" for b in sizes], rows)

    lines += ["", "End to end, events/s (first log() to last event in the receiver process)", ""]
    rows = [
        [impl + _BASELINE_NOTES.get(impl, "")]
        + [_num(_get(r, "end_to_end", impl, b, "events_per_s"), 0) for b in sizes]
        for impl in r["end_to_end"]
    ]
    for other in (CEILING, "requests+json", LEGACY):
        if other in r["end_to_end"]:
            rows.append([f"isstreamer ÷ {other}"] + [_e2e_ratio(r, other, b) for b in sizes])
    lines += _table(["client"] + [f"buffer_size {b}" for b in sizes], rows)

    lines += [
        "",
        (
            "Outage: events logged with the receiver down, which stays down "
            f"{_get(r, 'sizes', 'down_s')} s more and is then started "
            "(RSS growth is peak RSS minus RSS before)"
        ),
        "",
    ]
    rows = []
    for impl, runs in r["outage"].items():
        for b, o in runs.items():
            rows.append(
                [
                    impl,
                    b,
                    _num(o.get("events")),
                    _num(o.get("log_seconds"), 2),
                    f"{_num(_get(o, 'log', 'median_ns'), 0)} / {_num(_get(o, 'log', 'p99_ns'), 0)}",
                    _num(o.get("rss_growth_mib"), 1),
                    _num(o.get("rss_growth_down_mib"), 1),
                    _num(o.get("peak_rss_growth_mib"), 1),
                    _num(o.get("first_delivery_after_up_s"), 1),
                    _num(o.get("drain_s"), 1) if "drain_s" in o else "never",
                    _num(o.get("delivered")),
                ]
            )
    lines += _table(
        [
            "client",
            "buffer_size",
            "events",
            "logging s",
            "log() median / p99 ns",
            "RSS growth: logging MiB",
            "… through the outage MiB",
            "… until drained MiB",
            "first delivery after up s",
            "all delivered after s",
            "delivered",
        ],
        rows,
    )

    lines += ["", "Idle and replay", ""]
    rows = [
        [
            f"idle {impl}",
            (
                f"{_num(i.get('cpu_per_10s'), 4)} s CPU per 10 s, "
                f"{_num(i.get('wakeups'))} wake-ups in {i.get('seconds')} s"
            ),
        ]
        for impl, i in r["idle"].items()
    ]
    rep = r["replay"].get(OURS, {})
    rows.append(
        [
            "replay from spill files",
            (
                f"{_num(rep.get('events_per_s'), 0)} events/s ({_num(rep.get('events'))} events "
                f"in {_num(rep.get('files'))} files, "
                f"{_num(rep.get('cpu_per_10k_s'), 3)} s CPU per 10k)"
            ),
        ]
    )
    lines += _table(["workload", "figure"], rows)

    lines += [
        "",
        (
            "Sensor loop: 20 keys at 10 Hz, buffer_size 10 (floor: deque + Event-woken thread "
            "posting json.dumps batches over one keep-alive http.client connection)"
        ),
        "",
    ]
    rows = [
        [
            impl,
            _num(s_.get("delivered")),
            _num(s_.get("cpu_per_10k_s"), 3),
            _num(_ratio(s_.get("cpu_per_10k_s"), _get(r, "sensor", FLOOR, "cpu_per_10k_s")), 2),
            _num(s_.get("wakeups_per_s"), 1),
        ]
        for impl, s_ in r.get("sensor", {}).items()
    ]
    lines += _table(["client", "delivered", "CPU s per 10k", "× floor", "wake-ups/s"], rows)
    lines += [
        "",
        "Burst at buffer_size 1000, default settings, until close() (or the last post)",
        "",
    ]
    rows = [
        [
            impl,
            _num(b_.get("events")),
            _num(b_.get("delivered_by_return")),
            _num(b_.get("spilled")),
            _num(b_.get("seconds"), 3),
            _num(b_.get("events_per_s"), 0),
        ]
        for impl, b_ in r.get("burst", {}).items()
    ]
    lines += _table(["client", "events", "delivered by return", "spilled", "s", "events/s"], rows)

    for name in ("collector", "redis", "v3io", "relay"):
        section = r.get(name, {})
        lines += ["", f"{name} benchmark: " + ", ".join(f"{k} {v}" for k, v in section.items())]
    problems = []
    for name in (
        "log_cost",
        "cpu_per_10k",
        "end_to_end",
        "outage",
        "idle",
        "replay",
        "sensor",
        "burst",
    ):
        problems += _errors(r[name], f"{name} ")
    if problems:
        lines += ["", "Errors:"] + problems
    return "\n".join(lines)
