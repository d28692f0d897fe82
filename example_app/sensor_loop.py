#!/usr/bin/env python3
"""A simulated sensor in a loop: readings stamped with the time they were taken, and a
flush() per iteration.

Each reading carries ``epoch=`` the moment it was measured, not the moment it is sent, so a
reading that waits out a network outage still lands at the right place on the chart. The
first iteration also shows a time override for a reading taken earlier (a sensor's own
buffered value). ``flush(timeout)`` returns once the iteration's readings were delivered or
written to the spool on disk, so the loop never loses them, even to a power cut.

    python sensor_loop.py --iterations 20 --interval 0.5

Configure the receiver with ISSTREAMER_ACCESS_KEY (and ISSTREAMER_API_BASE) or isstreamer.ini.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import threading
import time

from isstreamer import Streamer


def read_sensor(step: int) -> tuple[float, float]:
    """A pretend temperature/humidity sensor: a slow wave plus a little noise."""
    temperature = 21.0 + 2.0 * math.sin(step / 10) + random.gauss(0, 0.1)
    humidity = 45.0 + 5.0 * math.cos(step / 15) + random.gauss(0, 0.3)
    return round(temperature, 2), round(humidity, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=10, help="readings to take (0: until Ctrl-C)"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    parser.add_argument(
        "--bucket-key", default=os.environ.get("ISSTREAMER_BUCKET_KEY", "sensor-loop-example")
    )
    args = parser.parse_args()

    streamer = Streamer(bucket_name="Sensor loop example", bucket_key=args.bucket_key)
    pause = threading.Event()  # a wait that Ctrl-C can end
    step = 0
    try:
        # Time override: a reading the sensor buffered a minute ago goes in at that time.
        streamer.log("temperature_c", read_sensor(-60)[0], epoch=time.time() - 60)
        while not args.iterations or step < args.iterations:
            taken = time.time()
            temperature, humidity = read_sensor(step)
            streamer.log("temperature_c", temperature, epoch=taken)
            streamer.log("humidity_pct", humidity, epoch=taken)
            streamer.log("heater_on", temperature < 20.5, epoch=taken)
            streamer.log("status", "ok" if humidity < 55 else "humid", epoch=taken)
            if not streamer.flush(timeout=5.0):
                print("readings not confirmed within 5 s; they stay queued and are retried")
            step += 1
            if not args.iterations or step < args.iterations:
                pause.wait(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        ok = streamer.close()
    stats = streamer.stats()
    print(
        f"{step} readings to bucket {args.bucket_key}: {stats['sent']} events delivered, "
        f"{stats['spilled']} kept on disk for later"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
