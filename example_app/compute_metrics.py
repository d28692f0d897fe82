#!/usr/bin/env python3
"""System metrics with psutil and log_object: ISStreamer's classic example, now complete.

ISStreamer's log_object ignored psutil's namedtuples, so memory, swap, disk and network
never arrived. isstreamer flattens namedtuples, lists and dicts: ``virtual_memory()`` with
the prefix "mem" becomes mem_total, mem_available, mem_percent, ...

    python compute_metrics.py                          # every 10 s until Ctrl-C
    python compute_metrics.py --iterations 3 --interval 1

The receiver comes from the configuration, as for every Streamer: ISSTREAMER_ACCESS_KEY
(plus ISSTREAMER_API_BASE for a local collector) or an isstreamer.ini. For a ready-made
agent with rates per second and temperatures, run ``isstreamer metrics`` instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

import psutil

from isstreamer import Streamer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=0, help="samples to send (default: until Ctrl-C)"
    )
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--bucket-key", default=os.environ.get("ISSTREAMER_BUCKET_KEY", "compute-metrics-example")
    )
    args = parser.parse_args()

    streamer = Streamer(bucket_name="Compute metrics example", bucket_key=args.bucket_key)
    psutil.cpu_percent(percpu=True)  # the first call only starts the measurement
    psutil.cpu_percent()
    done = threading.Event()  # a wait that Ctrl-C can end
    sent = 0
    try:
        while not args.iterations or sent < args.iterations:
            if sent:
                done.wait(args.interval)
            streamer.log("cpu_total", psutil.cpu_percent())
            streamer.log_object(
                psutil.cpu_percent(percpu=True), key_prefix="cpu"
            )  # cpu_0, cpu_1, ...
            streamer.log_object(psutil.virtual_memory(), key_prefix="mem")  # a namedtuple
            streamer.log_object(psutil.swap_memory(), key_prefix="swap")
            streamer.log_object(psutil.disk_usage("/"), key_prefix="disk_root")
            streamer.log_object(psutil.net_io_counters(), key_prefix="net")  # raw counters
            streamer.log("process_count", len(psutil.pids()))
            sent += 1
    except KeyboardInterrupt:
        pass
    finally:
        # close() delivers what is buffered, or keeps it on disk for later; never hangs.
        ok = streamer.close()
    print(
        f"sent {sent} samples to bucket {args.bucket_key}:"
        f" {streamer.stats()['sent']} events delivered"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
