"""Run the benchmark suite: every workload in a fresh process, one local receiver process.

    python -m bench                 # full run (a few minutes), writes bench/results/latest.json
    python -m bench --quick         # smoke run (seconds)
    python -m bench --out FILE      # JSON somewhere else

Prints a markdown table: each goal of docs/architecture.md next to its figure, then the details.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .clients import BASELINES, legacy_available
from .external import run_external
from .receiver import Receiver
from .report import evaluate_goals, render

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"
BUFFER_SIZES = (10, 100, 1000)
WORKLOAD_TIMEOUT = 1200.0
EXTERNAL = ("collector", "redis", "v3io", "relay")  # bench/<name>_bench.py, each run(quick)
SENSOR_KEYS, SENSOR_HZ = 20, 10  # the realistic rate of the CPU goal: 200 events/s


def sizes(quick: bool, scale: float) -> dict[str, Any]:
    """Event counts per workload; ``scale`` shrinks or grows them (for the smoke test)."""
    base: dict[str, Any] = (
        {
            "log_calls": 20_000,
            "deliver": {10: 2_000, 100: 10_000, 1000: 20_000},
            "outage": 30_000,
            "replay": 20_000,
            "idle_s": 1.0,
            "down_s": 1.0,
            "repeat": 1,
            "sensor_s": 2.0,
            "burst": 10_000,
        }
        if quick
        else {
            "log_calls": 200_000,
            "deliver": {10: 50_000, 100: 100_000, 1000: 300_000},
            "outage": 300_000,
            "replay": 300_000,
            "idle_s": 10.0,
            "down_s": 5.0,
            "repeat": 3,
            "sensor_s": 15.0,
            "burst": 100_000,
        }
    )

    def scaled(n: int, step: int) -> int:
        return max(step * 2, int(n * scale) // step * step)

    base["log_calls"] = scaled(base["log_calls"], 100)
    base["deliver"] = {b: scaled(n, b) for b, n in base["deliver"].items()}
    base["outage"] = scaled(base["outage"], 1000)
    base["replay"] = scaled(base["replay"], 1000)
    base["burst"] = scaled(base["burst"], 1000)
    # Waits shrink with the counts (a smoke run checks the report, not the figures), but stay
    # long enough for the receiver to be down across a few flush intervals.
    base["down_s"] = max(0.3, base["down_s"] * min(1.0, scale))
    base["sensor_s"] = max(0.3, base["sensor_s"] * min(1.0, scale))
    return base


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_workload(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one workload in a fresh interpreter, in its own temporary directory."""
    with tempfile.TemporaryDirectory(prefix="isstreamer-bench-") as workdir:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.workloads", json.dumps(spec)],
            cwd=workdir,
            env=dict(env, HOME=workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=WORKLOAD_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the workload and any receiver it started
            proc.communicate()
            return {"error": f"timed out after {WORKLOAD_TIMEOUT:.0f} s"}
    lines = [line[7:] for line in out.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {"error": f"exit status {proc.returncode}: {err.strip()[-500:]}"}
    return json.loads(lines[-1])


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the median over repeated runs (errors win: they must be seen)."""
    for run in runs:
        if "error" in run:
            return run
    merged: dict[str, Any] = {"runs": len(runs)}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)):
            values = sorted(run[key] for run in runs)
            merged[key] = values[len(values) // 2]
        else:
            merged[key] = value
    return merged


def collect(args: argparse.Namespace, env: dict[str, str], say: Any) -> dict[str, Any]:
    plan = sizes(args.quick, args.scale)
    if args.idle_seconds is not None:
        plan["idle_s"] = args.idle_seconds
    repeat = args.repeat or plan["repeat"]
    legacy_ok, legacy_version = legacy_available()
    impls = ["isstreamer"] + (["ISStreamer"] if legacy_ok and not args.no_legacy else [])
    results: dict[str, Any] = {
        "legacy": {
            "available": legacy_ok and not args.no_legacy,
            "version": legacy_version,
            **({"skipped": "--no-legacy"} if args.no_legacy else {}),
        },
        "sizes": {
            **plan,
            "deliver": {str(k): v for k, v in plan["deliver"].items()},
            "repeat": repeat,
        },
        "log_cost": {},
        "cpu_per_10k": {},
        "end_to_end": {},
        "outage": {},
        "idle": {},
        "replay": {},
        "sensor": {},
        "burst": {},
    }
    with Receiver() as receiver:
        where = {"url": receiver.url, "port": receiver.port}
        for impl in impls:
            for batch in (10, 1000):
                say(f"log() cost: {impl}, buffer_size {batch}")
                results["log_cost"].setdefault(impl, {})[str(batch)] = run_workload(
                    {
                        "workload": "log_cost",
                        "impl": impl,
                        "buffer_size": batch,
                        "calls": plan["log_calls"],
                        **where,
                    },
                    env,
                )
        for batch in BUFFER_SIZES:
            for impl in impls + list(BASELINES):
                count = plan["deliver"][batch]
                say(f"delivery: {impl}, buffer_size {batch}, {count} events x {repeat}")
                runs = [
                    run_workload(
                        {
                            "workload": "deliver",
                            "impl": impl,
                            "buffer_size": batch,
                            "events": plan["deliver"][batch],
                            **where,
                        },
                        env,
                    )
                    for _ in range(repeat)
                ]
                run = _median_of(runs)
                results["cpu_per_10k"].setdefault(impl, {})[str(batch)] = {
                    k: run[k] for k in ("cpu_per_10k_s", "cpu_s", "events", "error") if k in run
                }
                results["end_to_end"].setdefault(impl, {})[str(batch)] = {
                    k: run[k]
                    for k in ("events_per_s", "seconds", "events", "delivered", "error")
                    if k in run
                }
        for impl in impls:
            say(f"idle: {impl}, {plan['idle_s']} s")
            results["idle"][impl] = run_workload(
                {
                    "workload": "idle",
                    "impl": impl,
                    "buffer_size": 10,
                    "seconds": plan["idle_s"],
                    **where,
                },
                env,
            )
        say(f"replay: {plan['replay']} events from spill files")
        results["replay"]["isstreamer"] = run_workload(
            {
                "workload": "replay",
                "impl": "isstreamer",
                "buffer_size": 10,
                "events": plan["replay"],
                "per_file": 1000,
                **where,
            },
            env,
        )
        for impl in impls + ["floor"]:
            say(
                f"sensor loop: {impl}, {SENSOR_KEYS} keys at {SENSOR_HZ} Hz"
                f" for {plan['sensor_s']} s"
            )
            results["sensor"][impl] = run_workload(
                {
                    "workload": "sensor",
                    "impl": impl,
                    "buffer_size": 10,
                    "keys": SENSOR_KEYS,
                    "hz": SENSOR_HZ,
                    "seconds": plan["sensor_s"],
                    **where,
                },
                env,
            )
        for impl in ("isstreamer", "requests+json"):
            say(f"burst: {impl}, {plan['burst']} events at buffer_size 1000 x {repeat}")
            results["burst"][impl] = _median_of(
                [
                    run_workload(
                        {
                            "workload": "burst",
                            "impl": impl,
                            "buffer_size": 1000,
                            "events": plan["burst"],
                            **where,
                        },
                        env,
                    )
                    for _ in range(repeat)
                ]
            )
    # ISStreamer starts a thread per batch: at buffer_size 10 an outage of 300k events would
    # mean 30,000 threads, more than a shared machine's pid_max allows. It runs at 1000 only.
    for impl, batch in [("isstreamer", 10), ("isstreamer", 1000)] + [("ISStreamer", 1000)] * (
        len(impls) > 1
    ):
        say(f"outage: {impl}, buffer_size {batch}, {plan['outage']} events")
        results["outage"].setdefault(impl, {})[str(batch)] = run_workload(
            {
                "workload": "outage",
                "impl": impl,
                "buffer_size": batch,
                "events": plan["outage"],
                "down_s": plan["down_s"],
            },
            env,
        )
    for name in EXTERNAL:
        if args.no_external:
            results[name] = {"skipped": "--no-external"}
            continue
        say(f"{name} benchmark")
        results[name] = run_external(name, args.quick, env)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small workloads: a smoke run of seconds"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"JSON results (default {DEFAULT_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="runs per delivery figure, median kept (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every event count (e.g. 0.1)"
    )
    parser.add_argument("--idle-seconds", type=float, default=None, help="idle measurement length")
    parser.add_argument(
        "--no-legacy", action="store_true", help="skip ISStreamer 2.0.0 even if importable"
    )
    parser.add_argument(
        "--no-external", action="store_true", help="skip the collector and redis benchmarks"
    )
    args = parser.parse_args(argv)
    env = dict(
        os.environ,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    env.pop("ISSTREAMER_CONFIG", None)

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started = time.time()
    results = collect(args, env, say)
    results.update(
        {
            "machine": machine(),
            "quick": args.quick,
            "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 1),
        }
    )
    results["goals"] = evaluate_goals(results)
    print(render(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nJSON: {args.out}", file=sys.stderr)
    return 0
