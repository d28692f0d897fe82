"""Replaying by hand: spill files, whole spools, and the files ISStreamer left behind.

Spill files go to the bucket recorded in them. Each is claimed before it is sent, so a
running Streamer sharing the spool never sends the same file, and deleted only once every
event in it was accepted. ISStreamer's ``err_missed_events.txt`` and offline CSV files carry
no bucket, so they go to the configured one; they are read and never changed, and whatever
cannot be delivered now is written to the spool, where the next replay (or any Streamer)
picks it up. Sending, retrying, splitting and quarantining are Delivery's, as for live data,
and the outcomes counted here are the Reports Delivery gives for each chunk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

from .config import Settings, load_settings
from .delivery import Delivery
from .errors import ConfigError
from .model import Bucket, Event
from .report import Report
from .retry import RetryPolicy
from .sinks.base import Sink
from .sinks.factory import needs_access_key, sink_factory
from .spool import Spool, event_count
from .spool.legacy import read_legacy, sniff
from .spool.names import parse_claim
from .spool.selection import Selection
from .stats import Stats
from .text import parse_value

__all__ = ["ReplayResult", "parse_value", "replay"]

log = logging.getLogger("isstreamer")

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int, float], None]  # (events done, events in all, events per second)
LEGACY_CHUNK = 500  # events per request when replaying a legacy file
SEND_TIMEOUT = 10.0  # seconds per HTTP request


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did, in events.

    ``failed`` events were tried and refused or unreachable; they are kept, so they also
    count in ``remaining`` (everything still waiting on disk after the call). ``skipped`` are
    unreadable lines of legacy files, reported in the log; ``dropped`` events could be
    neither delivered nor kept (a quarantine that cannot be written), also logged.
    """

    sent: int = 0
    failed: int = 0
    quarantined: int = 0
    remaining: int = 0
    skipped: int = 0
    last_error: str = ""
    dropped: int = 0

    @property
    def ok(self) -> bool:
        """True when everything was delivered."""
        return not (
            self.failed or self.quarantined or self.remaining or self.skipped or self.dropped
        )


def _as_paths(paths_or_dir: None | PathLike | Iterable[PathLike]) -> list[Path]:
    if paths_or_dir is None:
        return []
    if isinstance(paths_or_dir, (str, os.PathLike)):
        return [Path(os.path.expanduser(os.fspath(paths_or_dir)))]
    return [Path(os.path.expanduser(os.fspath(p))) for p in paths_or_dir]


_Plan = tuple[dict[Path, Optional[set[str]]], list[tuple[Path, str]]]


def _plan(paths: Sequence[Path], settings: Settings) -> _Plan:
    """Sort the paths into spool selections and legacy files; complain before sending anything."""
    spools: dict[Path, set[str] | None] = {}
    legacy: list[tuple[Path, str]] = []
    if not paths:
        spools[Spool(str(settings.spill_dir)).directory.resolve()] = None
    for path in paths:
        if path.is_dir():
            spools[path.resolve()] = None
        elif path.is_file():
            kind = sniff(path)
            if kind == "spill":
                if parse_claim(path.name) is not None:
                    log.warning("%s is being sent by another process; skipped", path)
                    continue
                names = spools.setdefault(path.parent.resolve(), set())
                if names is not None:
                    names.add(path.name)
            else:
                legacy.append((path, kind))
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    if legacy and not settings.bucket_key:
        raise ConfigError(
            f"{legacy[0][0]} has no bucket of its own: give a bucket key with --bucket-key, "
            "bucket_key=, ISSTREAMER_BUCKET_KEY or bucket_key in the ini file"
        )
    return spools, legacy


@dataclass
class _Run:
    """One replay call: a sink, shared counters, the stop event and the progress report."""

    sink: Sink
    settings: Settings
    policy: RetryPolicy
    stop: threading.Event
    progress: Progress | None
    total: int
    any_receiver: bool
    stats: Stats = field(default_factory=Stats)
    started: float = field(default_factory=time.monotonic)
    outcome: Report = field(default_factory=Report)  # of every chunk sent, added up
    set_aside: int = 0  # events of spill files quarantined unread (they cannot be decoded)
    failed: int = 0
    remaining: int = 0

    def done(self) -> int:
        o = self.outcome
        return o.sent + o.quarantined + o.dropped + self.set_aside

    def report(self) -> None:
        if self.progress is not None:
            done = self.done()
            self.progress(done, self.total, done / max(1e-6, time.monotonic() - self.started))

    def delivery(self, spool: Spool) -> Delivery:
        return Delivery(self.sink, spool, self.stats, self.policy, stop_event=self.stop)

    def wait_pace(self, delivery: Delivery) -> bool:
        """Honour a rate limit (Retry-After) the receiver asked for; False when stopped."""
        wait = delivery.probe_at - time.monotonic() if delivery.open else 0.0
        if wait > 0:
            log.info("replay: the receiver asked to slow down; waiting %.1f s", wait)
            return not self.stop.wait(wait)
        return not self.stop.is_set()

    def spool_files(self, directory: Path, names: set[str] | None) -> None:
        select = Selection(names, self.sink.address if self.any_receiver else None)
        spool = Spool(directory, int(self.settings.spill_max_bytes), select=select)
        delivery = self.delivery(spool)
        exhausted = False
        try:
            while self.wait_pace(delivery):
                step = delivery.replayer.step()
                if step is None:
                    exhausted = True
                    break
                self.outcome += step
                self.report()
                if step.spilled and delivery.open:  # the receiver failed: the rest waits
                    self.failed += step.spilled
                    break
        finally:
            delivery.release_replay("replay interrupted" if self.stop.is_set() else "")
            spool.release_own_claims()
            self.set_aside += select.set_aside
        left = _pending(spool)
        if exhausted and left:  # nothing more could be claimed, yet files are left
            log.warning(
                "replay: %d events in %s were spilled for another receiver than %s; left as "
                "they are (replay with any_receiver=True, or --any-receiver, sends them here)",
                left,
                directory,
                self.sink.address,
            )
        self.remaining += left

    def legacy_events(self, path: Path, events: list[Event], bucket: Bucket) -> None:
        spool = Spool(str(self.settings.spill_dir), int(self.settings.spill_max_bytes))
        delivery = self.delivery(spool)
        reason = ""
        for start in range(0, len(events), LEGACY_CHUNK):
            chunk = events[start : start + LEGACY_CHUNK]
            if reason or not self.wait_pace(delivery):
                # Not sent: kept in the spool so nothing is lost and nothing is sent twice.
                kept = delivery.spill(
                    bucket, chunk, last_error=reason or f"replay of {path.name} interrupted"
                )
                self.outcome += Report(dropped=kept.dropped)
                self.remaining += kept.spilled
                continue
            report = delivery.deliver(bucket, chunk)
            self.outcome += report
            self.remaining += report.spilled
            if report.spilled or report.dropped:
                self.failed += report.spilled
                reason = self.stats.last_error or "delivery failed"
            self.report()


def _pending(spool: Spool) -> int:
    """Events in the spool's (selected) files that nobody is sending."""
    return sum(event_count(p) for p in spool.files())


def replay(
    paths_or_dir: None | PathLike | Iterable[PathLike] = None,
    *,
    access_key: str | None = None,
    api_base: str | None = None,
    bucket_key: str | None = None,
    bucket_name: str | None = None,
    ini_file_location: str | None = None,
    spill_dir: PathLike | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
    retry_policy: RetryPolicy | None = None,
    stop_event: threading.Event | None = None,
    any_receiver: bool = False,
) -> ReplayResult:
    """Send spilled or legacy events now; with no path, the configured spool.

    A path may be a spill file, a spool directory, ISStreamer's ``err_missed_events.txt`` or
    an offline CSV (``epoch,key,value``). Settings not given here come from the environment
    and the ini file, as for a Streamer. ``timeout`` (seconds) bounds the whole call, and
    setting ``stop_event`` ends it early; what was not sent stays on disk either way.
    Spill files recorded for another receiver are left alone unless ``any_receiver``.
    Raises ConfigError (no access key, no bucket key for a legacy file) or FileNotFoundError
    before anything is sent.
    """
    settings = load_settings(
        {
            "access_key": access_key or None,
            "api_base": api_base,
            "bucket_key": bucket_key or None,
            "bucket_name": bucket_name or None,
            "spill_dir": os.fspath(spill_dir) if spill_dir else None,
            "offline": False,  # a replay goes to the receiver, never into another CSV
        },
        ini_file_location,
    )
    if needs_access_key(settings.api_base) and not settings.access_key:
        raise ConfigError(
            "no access key: set ISSTREAMER_ACCESS_KEY, put access_key in the ini file "
            "(isstreamer config init) or pass access_key="
        )
    spools, legacy_paths = _plan(_as_paths(paths_or_dir), settings)
    legacy = [(path, *read_legacy(path, kind)) for path, kind in legacy_paths]
    total = sum(_pending(Spool(d, select=Selection(n))) for d, n in spools.items()) + sum(
        len(e) for _, e, _ in legacy
    )
    stop = stop_event or threading.Event()
    timer = threading.Timer(timeout, stop.set) if timeout is not None else None
    sink = sink_factory(settings, SEND_TIMEOUT)()
    policy = retry_policy or RetryPolicy()
    run = _Run(sink, settings, policy, stop, progress, total, any_receiver)
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        for directory, names in spools.items():
            run.spool_files(directory, names)
        bucket = Bucket(str(settings.bucket_key), str(settings.bucket_name or settings.bucket_key))
        for path, events, _skipped in legacy:
            run.legacy_events(path, events, bucket)
    finally:
        if timer is not None:
            timer.cancel()
        sink.close()
    result = ReplayResult(
        sent=run.outcome.sent,
        failed=run.failed,
        quarantined=run.outcome.quarantined + run.set_aside,
        remaining=run.remaining,
        skipped=sum(s for _, _, s in legacy),
        last_error=run.stats.last_error,
        dropped=run.outcome.dropped,
    )
    log.info("replay to %s: %s", sink.address, result)
    return result
