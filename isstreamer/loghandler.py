"""Python's logging into a bucket: each record becomes an event, rate-limited per key."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

from .events import DefaultEpoch
from .model import MAX_KEY_CHARS, MAX_STRING_CHARS

if TYPE_CHECKING:
    from .streamer import Streamer

OWN_LOGGER = "isstreamer"
MAX_KEYS = 1000  # distinct keys whose rate is tracked; a flood of logger names cannot grow memory
LEVEL_SUFFIX = "_level"


class StreamerHandler(logging.Handler):
    """A logging handler that sends each record to a Streamer.

    The event's key is ``key`` or the record's logger name; its value the formatted message,
    its epoch the record's time. The level goes beside it as ``<key>_level`` ("WARNING"), so
    a dashboard can show both. Each key may send ``rate_per_s`` records a second on average,
    in bursts of up to ``burst``; what is over is counted in ``suppressed`` and said in one
    event once the key may send again. Records of the agent's own logger are never sent
    (they would feed themselves), nor records logged while this handler is sending.
    """

    def __init__(
        self,
        streamer: Streamer,
        level: int = logging.INFO,
        key: str | None = None,
        *,
        rate_per_s: float = 10.0,
        burst: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(level)
        self.streamer = streamer
        self.key = key[: MAX_KEY_CHARS - len(LEVEL_SUFFIX)] if key else None
        self.rate_per_s = float(rate_per_s)
        self.burst = max(1, int(burst))
        self.suppressed = 0  # records not sent because their key was over its rate
        self._clock = clock
        self._allowance: dict[str, tuple[float, float, int]] = {}  # key -> (tokens, at, held back)
        self._sending = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + "."):
            return
        if getattr(self._sending, "active", False):
            return  # a record logged by the streamer while we hand it an event: no loop
        self._sending.active = True
        try:
            key = self.key or record.name[: MAX_KEY_CHARS - len(LEVEL_SUFFIX)] or "root"
            held_back = self._admit(key)
            if held_back is None:
                return
            message = self.format(record)
            if held_back:
                message = f"({held_back} earlier messages suppressed) {message}"
            # The record's time is the time of the call: a default epoch (clock.py may move it).
            when = DefaultEpoch(record.created)
            self.streamer.log(key, message[:MAX_STRING_CHARS], when)
            self.streamer.log(key + LEVEL_SUFFIX, record.levelname, when)
        except Exception:  # noqa: BLE001 - logging's convention: report, never raise
            self.handleError(record)
        finally:
            self._sending.active = False

    def _admit(self, key: str) -> int | None:
        """Token bucket per key: None to suppress, else how many records were held back."""
        now = self._clock()
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            tokens, at, held = self._allowance.get(key, (float(self.burst), now, 0))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            if tokens < 1.0:
                self.suppressed += 1
                self._allowance[key] = (tokens, now, held + 1)
                return None
            if key not in self._allowance and len(self._allowance) >= MAX_KEYS:
                self._allowance.pop(next(iter(self._allowance)))  # forget the oldest key
            self._allowance[key] = (tokens - 1.0, now, 0)
            return held
