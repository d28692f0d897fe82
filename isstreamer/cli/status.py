"""``isstreamer status``: how a running ``isstreamer metrics`` is doing, and what waits in the
spool; the spool alone when no agent runs. The agent's side is isstreamer/status.py."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from typing import Any

from ..spool import Spool
from ..status import read_statuses
from .common import EXIT_FAILED, EXIT_OK, load, say
from .spool import print_summary, summary


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "status",
        parents=[common],
        help="the running agent's counters and the spool",
        description="Show each `isstreamer metrics` running on this spool (read from the "
        "status file it rewrites at least every 30 s) and what waits in the spool. "
        "Exit 0; with --json the agents' `running` field says whether one runs.",
    )
    p.add_argument("--json", action="store_true", help="print it as one JSON document")
    p.set_defaults(func=run_status)


def _ago(epoch: float) -> str:
    seconds = max(0, int(time.time() - epoch))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _utc(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_agent(agent: dict[str, Any]) -> None:
    stats = agent.get("stats") or {}
    head = f"agent: isstreamer {agent.get('command', '?')}, pid {agent.get('pid', '?')}"
    if not agent["running"]:
        print(f"{head}: not running (status last written {_ago(agent.get('updated', 0))})")
        return
    print(
        f"{head}, running since {_utc(agent.get('started', 0))}; "
        f"{agent.get('samples', 0)} samples, one every {agent.get('interval_s', '?')} s"
    )
    print(f"  to bucket {agent.get('bucket_key', '?')} at {agent.get('api_base', '?')}")
    print(
        f"  {stats.get('sent', 0)} events delivered, {stats.get('on_disk', 0)} in the spool, "
        f"{stats.get('queued', 0)} queued, "
        f"{stats.get('dropped', 0) + stats.get('quarantined', 0)} lost"
    )
    print(f"  last error: {stats.get('last_error') or '(none)'}")
    print(f"  status written {_ago(agent.get('updated', 0))}")


def run_status(args: argparse.Namespace) -> int:
    spool = Spool(str(load(args).spill_dir))
    try:
        os.listdir(spool.directory)
    except FileNotFoundError:
        pass  # nothing spilled yet, no agent ever ran here
    except OSError as exc:  # an agent running as another user: its 0700 spool is closed to us
        say(
            args,
            f"cannot read the spool directory {spool.directory}: {exc.strerror or exc}; run "
            "status as the agent's user (or root), with the same --spill-dir",
            always=True,
        )
        return EXIT_FAILED
    agents = read_statuses(spool.directory)
    info = summary(spool)
    if args.json:
        print(json.dumps({"agents": agents, "spool": info}, indent=2))
        return EXIT_OK
    if not any(agent["running"] for agent in agents):
        print("agent: none running on this spool (isstreamer metrics writes its status here)")
    for agent in agents:
        _print_agent(agent)
    print_summary(info)
    return EXIT_OK
