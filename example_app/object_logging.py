#!/usr/bin/env python3
"""log_object: one call logs every value of a dict, list, namedtuple, dataclass or object.

Keys are the prefix plus the field name (or index), nested values are joined with "_", and
all values of one call share one timestamp. Values that are not numbers, booleans or strings
(None, here) are skipped with one warning, never sent: the service would reject the batch.

    python object_logging.py
    python object_logging.py --iterations 5 --interval 1
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import namedtuple
from dataclasses import dataclass, field

from isstreamer import Streamer

Reading = namedtuple("Reading", "temperature humidity")


@dataclass
class Battery:
    volts: float = 3.71
    charging: bool = False
    cells: list = field(default_factory=lambda: [3.70, 3.72])


class Weather:
    """A plain object: ISStreamer logged its properties; public attributes count too."""

    def __init__(self) -> None:
        self.station = "garden"
        self.wind_kmh = 12.5

    @property
    def beaufort(self) -> int:
        return 3 if self.wind_kmh < 20 else 5


def log_everything(streamer: Streamer, step: int) -> None:
    streamer.log_object(
        {"visitors": 3 + step, "door": "closed", "alarm_armed": True}, key_prefix="shop"
    )
    streamer.log_object([1.5, 2.5, 3.5], key_prefix="channel")  # channel_0, channel_1, channel_2
    streamer.log_object(Reading(temperature=21.4, humidity=48.0))  # Reading_temperature, ...
    streamer.log_object(Battery(), key_prefix="battery")  # battery_volts, battery_cells_0, ...
    streamer.log_object(Weather(), key_prefix="")  # no prefix: beaufort, station, wind_kmh
    streamer.log_object(
        {"outside": {"temp": 7.5, "rain": False}}, key_prefix="garden"
    )  # garden_outside_temp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument(
        "--bucket-key", default=os.environ.get("ISSTREAMER_BUCKET_KEY", "object-logging-example")
    )
    args = parser.parse_args()

    pause = threading.Event()
    with Streamer(bucket_name="Object logging example", bucket_key=args.bucket_key) as streamer:
        for step in range(args.iterations):
            if step:
                pause.wait(args.interval)
            log_everything(streamer, step)
            streamer.log_object(
                {"sensor": None}, key_prefix="skipped"
            )  # None is invalid: counted, not sent
        streamer.flush(timeout=10.0)
        stats = streamer.stats()
    print(
        f"bucket {args.bucket_key}: {stats['sent']} events delivered,"
        f" {stats['invalid']} invalid skipped"
    )
    return 0 if stats["sent"] and not stats["dropped"] else 1


if __name__ == "__main__":
    sys.exit(main())
