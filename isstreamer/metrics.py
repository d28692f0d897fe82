"""System metrics from psutil for ``isstreamer metrics``: one flat dict of numbers per sample.

Counters (CPU times, disk and network bytes) only mean something as a change over time, so
the sampler keeps the previous reading and reports rates per second; the first sample after
start has no rates and no CPU figures. The clock and psutil itself are injectable, so the
rates can be tested with made-up counters.

Units are in the key names: percentages end in ``_percent`` (``cpu_*`` are percentages too),
sizes in ``_mib`` or ``_gib``, rates in ``_kib_per_s`` or ``_per_s``, times in ``_s``,
frequencies in ``_mhz``. What only a Raspberry Pi reports is pi_metrics.py's.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Union

log = logging.getLogger("isstreamer")

Number = Union[int, float]
Sample = dict[str, Number]
MIB = 1024 * 1024
GIB = 1024 * MIB
# Pseudo and image file systems: their usage says nothing about the device's disks.
SKIP_FSTYPES = frozenset(
    {
        "squashfs",
        "tmpfs",
        "devtmpfs",
        "overlay",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "autofs",
        "ramfs",
        "iso9660",
        "nsfs",
        "fuse.lxcfs",
    }
)
# Virtual interfaces (containers, bridges) count in the totals but get no keys of their own,
# or a Docker host would grow a key pair per container.
VIRTUAL_NICS = (
    "lo",
    "veth",
    "docker",
    "br-",
    "virbr",
    "ifb",
    "vnet",
    "tun",
    "tap",
    "cni",
    "flannel",
)


def key_part(name: str) -> str:
    """A mount point, interface or sensor name as a safe piece of a key ("/" -> "root")."""
    part = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    return part or "root"


def _cpu_busy_total(old: Any, new: Any) -> tuple[float, float]:
    """Busy and all CPU time between two readings of one CPU, as psutil.cpu_percent() counts.

    Each field's change is clamped at zero: per-CPU idle and iowait are known to step back
    now and then on Linux. Guest time is already inside user/nice, so it is taken out of the
    total, and waiting for I/O counts as idle.
    """
    delta = {name: max(0.0, b - a) for name, a, b in zip(new._fields, old, new)}
    total = sum(delta.values()) - delta.get("guest", 0.0) - delta.get("guest_nice", 0.0)
    return total - delta["idle"] - delta.get("iowait", 0.0), total


def _percent(busy: float, total: float) -> float | None:
    if total <= 0:
        return None  # no time passed, or every counter stepped back (suspend, wrap)
    return round(min(100.0, max(0.0, 100.0 * busy / total)), 1)


class _Counters:
    """The cumulative counters of one moment; rates come from two of these."""

    def __init__(self, at: float, cpus: list[Any], disk: Any | None, nics: dict[str, Any]) -> None:
        self.at = at
        self.cpus = cpus
        self.disk = disk
        self.nics = nics


class SystemSampler:
    """Reads psutil and turns it into ``{key: number}``; keeps one reading for the rates."""

    def __init__(
        self,
        *,
        source: Any = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        per_cpu: bool = True,
    ) -> None:
        if source is None:
            import psutil  # a dependency of the package, imported only where it is used

            source = psutil
        self._ps = source
        self._clock = clock
        self._wall = wall
        self._per_cpu = per_cpu
        self._previous: _Counters | None = None
        self._failed: set = set()  # sources already reported as unavailable

    def prime(self) -> None:
        """Take the first counter reading, so the next sample() has rates."""
        self._previous = self._counters()

    def sample(self) -> Sample:
        """Gauges now, plus rates since the previous call (or prime())."""
        current = self._counters()
        out = self._gauges()
        if self._previous is not None:
            out.update(self._rates(self._previous, current))
        self._previous = current
        return out

    # ---- reading psutil -----------------------------------------------------------------

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """One psutil call; None (reported once) when this system or container lacks it."""
        func = getattr(self._ps, name, None)
        if func is None:
            return None
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # psutil raises OSError, RuntimeError, NotImplementedError...
            if name not in self._failed:
                self._failed.add(name)
                log.info("metrics: %s unavailable here (%s: %s)", name, type(exc).__name__, exc)
            return None

    def _counters(self) -> _Counters:
        cpus = list(self._call("cpu_times", percpu=True) or [])
        return _Counters(
            self._clock(),
            cpus,
            self._call("disk_io_counters", perdisk=False),
            self._call("net_io_counters", pernic=True) or {},
        )

    def _gauges(self) -> Sample:
        out: Sample = {}
        load = self._call("getloadavg")
        if load:
            out["load_1"], out["load_5"], out["load_15"] = (round(x, 2) for x in load)
        mem = self._call("virtual_memory")
        if mem is not None:
            out["mem_percent"] = round(mem.percent, 1)
            out["mem_total_mib"] = round(mem.total / MIB, 1)
            out["mem_used_mib"] = round(mem.used / MIB, 1)
            out["mem_available_mib"] = round(mem.available / MIB, 1)
        swap = self._call("swap_memory")
        if swap is not None:
            out["swap_percent"] = round(swap.percent, 1)
            out["swap_total_mib"] = round(swap.total / MIB, 1)
            out["swap_used_mib"] = round(swap.used / MIB, 1)
        freq = self._call("cpu_freq")  # MHz; None where the kernel has no cpufreq
        if freq is not None and freq.current:
            out["cpu_freq_mhz"] = round(freq.current)
            if freq.max:  # 0 in VMs: unknown
                out["cpu_freq_max_mhz"] = round(freq.max)
        out.update(self._disk_usage())
        out.update(self._temperatures())
        boot = self._call("boot_time")
        if boot:
            out["uptime_s"] = int(self._wall() - boot)
        pids = self._call("pids")
        if pids is not None:
            out["process_count"] = len(pids)
        return out

    def _disk_usage(self) -> Sample:
        mounts = ["/"]  # always, even when "/" is an overlay (containers)
        parts = self._call("disk_partitions", all=False) or []
        # A device mounted twice is one disk: a service's ProtectSystem= and PrivateTmp= show
        # the root device again at /tmp, /var/tmp and its state directory.
        devices = {part.device for part in parts if part.mountpoint == "/"}
        for part in parts:
            if (
                part.fstype not in SKIP_FSTYPES
                and "/snap/" not in part.mountpoint
                and part.mountpoint not in mounts
                and part.device not in devices
            ):
                mounts.append(part.mountpoint)
                devices.add(part.device)
        out: Sample = {}
        for mount in mounts:
            usage = self._call("disk_usage", mount)
            if usage is None:
                continue
            name = key_part(mount)
            out[f"disk_{name}_percent"] = round(usage.percent, 1)
            out[f"disk_{name}_used_gib"] = round(usage.used / GIB, 2)
            out[f"disk_{name}_free_gib"] = round(usage.free / GIB, 2)
        return out

    def _temperatures(self) -> Sample:
        out: Sample = {}
        for chip, readings in sorted((self._call("sensors_temperatures") or {}).items()):
            for i, reading in enumerate(readings):
                if reading.current is None:
                    continue
                # The Pi has one reading, "cpu_thermal", with an empty label.
                suffix = "" if len(readings) == 1 else "_" + key_part(reading.label or str(i))
                out[f"temp_{key_part(chip)}{suffix}"] = round(float(reading.current), 1)
        return out

    # ---- rates --------------------------------------------------------------------------

    def _rates(self, old: _Counters, new: _Counters) -> Sample:
        seconds = new.at - old.at
        out: Sample = {}
        if seconds <= 0:
            return out
        if old.cpus and len(old.cpus) == len(new.cpus):  # a CPU hot-plugged: skip one sample
            deltas = [_cpu_busy_total(a, b) for a, b in zip(old.cpus, new.cpus)]
            total = _percent(sum(b for b, _ in deltas), sum(t for _, t in deltas))
            if total is not None:
                out["cpu_total"] = total
            for i, (busy, all_time) in enumerate(deltas if self._per_cpu else []):
                core = _percent(busy, all_time)
                if core is not None:
                    out[f"cpu_{i}"] = core
        if old.disk is not None and new.disk is not None:
            for field, key, scale in (
                ("read_bytes", "disk_read_kib_per_s", 1024),
                ("write_bytes", "disk_write_kib_per_s", 1024),
                ("read_count", "disk_reads_per_s", 1),
                ("write_count", "disk_writes_per_s", 1),
            ):
                _rate(out, key, getattr(old.disk, field), getattr(new.disk, field), seconds, scale)
        sums = {"recv": [0, 0], "sent": [0, 0]}
        for nic, now in sorted(new.nics.items()):
            before = old.nics.get(nic)
            if before is None:
                continue
            for field, direction in (("bytes_recv", "recv"), ("bytes_sent", "sent")):
                a, b = getattr(before, field), getattr(now, field)
                if b < a:
                    continue  # the interface was reset: no rate this time
                if nic != "lo":
                    sums[direction][0] += a
                    sums[direction][1] += b
                if not nic.startswith(VIRTUAL_NICS):
                    _rate(out, f"net_{key_part(nic)}_{direction}_kib_per_s", a, b, seconds, 1024)
        for direction, (a, b) in sums.items():
            _rate(out, f"net_{direction}_kib_per_s", a, b, seconds, 1024)
        return out


def _rate(out: Sample, key: str, before: Number, after: Number, seconds: float, scale: int) -> None:
    if after >= before:  # a counter that went backwards (wrap, reset) gives no rate
        out[key] = round((after - before) / scale / seconds, 2)
