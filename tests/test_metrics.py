"""The psutil sampler behind `isstreamer metrics`: gauges, and rates from two samples."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import pytest

from isstreamer.metrics import SystemSampler, key_part

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
DiskIO = namedtuple("DiskIO", "read_count write_count read_bytes write_bytes")
NetIO = namedtuple("NetIO", "bytes_sent bytes_recv packets_sent packets_recv")
Memory = namedtuple("Memory", "total available percent used free")
Swap = namedtuple("Swap", "total used free percent sin sout")
Partition = namedtuple("Partition", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
Temp = namedtuple("Temp", "label current high critical")
MIB = 1024 * 1024


def cpu(busy: float, idle: float, guest: float = 0.0) -> CpuTimes:
    return CpuTimes(busy, 0.0, 0.0, idle, 0.0, 0.0, 0.0, 0.0, guest, 0.0)


class FakePsutil:
    """Just enough of psutil, with counters the test moves forward by hand."""

    def __init__(self) -> None:
        self.cpus = [cpu(100, 900), cpu(200, 800)]
        self.disk: Any = DiskIO(10, 20, 1000 * MIB, 2000 * MIB)
        self.nics = {
            "lo": NetIO(0, 0, 0, 0),
            "eth0": NetIO(5 * MIB, 50 * MIB, 0, 0),
            "docker0": NetIO(0, 0, 0, 0),
        }
        self.partitions = [
            Partition("/dev/mmcblk0p2", "/", "ext4", "rw"),
            Partition("/dev/mmcblk0p1", "/boot/firmware", "vfat", "rw"),
            Partition("/dev/loop0", "/snap/core/1", "squashfs", "ro"),
        ]
        self.temps = {"cpu_thermal": [Temp("", 48.312, None, None)]}

    def cpu_times(self, percpu: bool) -> list:
        return list(self.cpus)

    def disk_io_counters(self, perdisk: bool) -> Any:
        return self.disk

    def net_io_counters(self, pernic: bool) -> dict:
        return dict(self.nics)

    def getloadavg(self) -> tuple:
        return (0.5, 0.25, 0.125)

    def virtual_memory(self) -> Memory:
        return Memory(1024 * MIB, 512 * MIB, 50.0, 400 * MIB, 100 * MIB)

    def swap_memory(self) -> Swap:
        return Swap(100 * MIB, 10 * MIB, 90 * MIB, 10.0, 0, 0)

    def disk_partitions(self, all: bool) -> list:
        return self.partitions

    def disk_usage(self, path: str) -> Usage:
        return Usage(32 * 1024 * MIB, 8 * 1024 * MIB, 24 * 1024 * MIB, 25.0)

    def sensors_temperatures(self) -> dict:
        return self.temps

    def boot_time(self) -> float:
        return 1000.0

    def pids(self) -> list:
        return [1, 2, 3]


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakePsutil:
    """A fake psutil with a Pi-like layout."""
    return FakePsutil()


def sampler_for(fake: FakePsutil, clock: Clock) -> SystemSampler:
    return SystemSampler(source=fake, clock=clock, wall=lambda: 4600.0)


def test_first_sample_has_gauges_but_no_rates(fake: FakePsutil) -> None:
    """Without an earlier reading there are gauges only: no cpu, disk or network rates."""
    sample = sampler_for(fake, Clock()).sample()
    assert sample["load_1"] == 0.5 and sample["load_15"] == 0.12
    assert sample["mem_percent"] == 50.0 and sample["mem_total_mib"] == 1024.0
    assert sample["mem_available_mib"] == 512.0 and sample["swap_used_mib"] == 10.0
    assert sample["disk_root_percent"] == 25.0 and sample["disk_root_free_gib"] == 24.0
    assert sample["disk_boot_firmware_used_gib"] == 8.0
    assert not any(k.startswith("disk_snap") for k in sample)
    assert sample["temp_cpu_thermal"] == 48.3
    assert sample["uptime_s"] == 3600 and sample["process_count"] == 3
    assert not [k for k in sample if k.startswith(("cpu", "net_")) or k.endswith("_per_s")]


def test_a_device_mounted_again_is_reported_once(fake: FakePsutil) -> None:
    """Bind mounts of the root device (a hardened unit's /tmp, /var/lib/...) add no disk keys."""
    root = fake.partitions[0]
    fake.partitions += [
        Partition(root.device, "/tmp", root.fstype, "rw"),
        Partition(root.device, "/var/lib/isstreamer", root.fstype, "rw"),
    ]
    disks = {k for k in sampler_for(fake, Clock()).sample() if k.startswith("disk_")}
    assert not [k for k in disks if "_tmp_" in k or "_var_" in k]
    assert "disk_root_percent" in disks and "disk_boot_firmware_percent" in disks


def test_rates_come_from_two_samples_and_the_clock(fake: FakePsutil) -> None:
    """Disk and network rates are the counter change divided by the injected clock's seconds."""
    clock = Clock(100.0)
    sampler = sampler_for(fake, clock)
    sampler.prime()
    clock.now = 110.0
    fake.disk = DiskIO(60, 20, 1010 * MIB, 2000 * MIB)  # +10 MiB read, +50 reads in 10 s
    fake.nics = {
        "lo": NetIO(99 * MIB, 99 * MIB, 0, 0),
        "eth0": NetIO(5 * MIB + 20480, 51 * MIB, 0, 0),
        "docker0": NetIO(10240, 0, 0, 0),
    }
    sample = sampler.sample()
    assert sample["disk_read_kib_per_s"] == 1024.0 and sample["disk_write_kib_per_s"] == 0.0
    assert sample["disk_reads_per_s"] == 5.0
    assert sample["net_eth0_recv_kib_per_s"] == 102.4 and sample["net_eth0_sent_kib_per_s"] == 2.0
    assert sample["net_sent_kib_per_s"] == 3.0  # eth0 + docker0; lo is never counted
    assert sample["net_recv_kib_per_s"] == 102.4
    assert "net_docker0_sent_kib_per_s" not in sample and "net_lo_recv_kib_per_s" not in sample


def test_cpu_percent_from_time_deltas(fake: FakePsutil) -> None:
    """cpu_N is busy time over all time since the last sample; cpu_total sums the cores."""
    clock = Clock()
    sampler = sampler_for(fake, clock)
    sampler.prime()
    clock.now += 1
    fake.cpus = [cpu(150, 950), cpu(200, 900, guest=5)]  # core 0: 50 of 100 busy; core 1: 0 of 100
    sample = sampler.sample()
    assert sample["cpu_0"] == 50.0 and sample["cpu_1"] == 0.0
    assert sample["cpu_total"] == 25.0


def test_counters_going_backwards_give_no_rate(fake: FakePsutil) -> None:
    """A reset or wrapped counter skips that rate for one sample instead of reporting nonsense."""
    clock = Clock()
    sampler = sampler_for(fake, clock)
    sampler.prime()
    clock.now += 5
    fake.disk = DiskIO(0, 0, 0, 2000 * MIB)
    fake.nics = {"eth0": NetIO(0, 60 * MIB, 0, 0)}
    fake.cpus = [cpu(50, 900), cpu(250, 850)]
    sample = sampler.sample()
    assert "disk_read_kib_per_s" not in sample and sample["disk_write_kib_per_s"] == 0.0
    assert "net_eth0_sent_kib_per_s" not in sample and sample["net_eth0_recv_kib_per_s"] == 2048.0
    assert "cpu_0" not in sample and sample["cpu_1"] == 50.0


def test_a_field_stepping_back_is_clamped(fake: FakePsutil) -> None:
    """Per-CPU iowait that steps back (a Linux quirk) counts as zero, not as a missing sample."""
    clock = Clock()
    sampler = sampler_for(fake, clock)
    fake.cpus = [CpuTimes(100, 0, 0, 900, 5, 0, 0, 0, 0, 0)] * 2
    sampler.prime()
    clock.now += 1
    fake.cpus = [CpuTimes(105, 0, 0, 905, 4, 0, 0, 0, 0, 0)] * 2
    sample = sampler.sample()
    assert sample["cpu_total"] == 50.0 and sample["cpu_0"] == 50.0


def test_no_time_passed_means_no_rates(fake: FakePsutil) -> None:
    """Two samples at the same instant have no rates rather than a division by zero."""
    sampler = sampler_for(fake, Clock())
    sampler.prime()
    assert not [k for k in sampler.sample() if k.endswith("_per_s") or k.startswith("cpu")]


def test_missing_or_failing_sources_are_skipped(fake: FakePsutil) -> None:
    """A psutil function this system lacks, or one that raises, leaves the other keys intact."""
    fake.sensors_temperatures = None  # type: ignore[assignment, method-assign]

    def denied(perdisk: bool) -> Any:
        raise PermissionError("no /proc/diskstats in this container")

    fake.disk_io_counters = denied  # type: ignore[method-assign]
    clock = Clock()
    sampler = sampler_for(fake, clock)
    sampler.prime()
    clock.now += 10
    sample = sampler.sample()
    assert "mem_percent" in sample and "net_eth0_recv_kib_per_s" in sample
    assert not [k for k in sample if k.startswith(("temp_", "disk_read", "disk_write"))]


def test_several_readings_of_one_chip_get_labels(fake: FakePsutil) -> None:
    """A chip with several sensors keys each by its label (or index when it has none)."""
    fake.temps = {"coretemp": [Temp("Package id 0", 50.0, None, None), Temp("", 45.0, None, None)]}
    sample = sampler_for(fake, Clock()).sample()
    assert sample["temp_coretemp_Package_id_0"] == 50.0 and sample["temp_coretemp_1"] == 45.0


def test_key_part_makes_names_safe() -> None:
    """Mount points and interface names become key-safe pieces; "/" is "root"."""
    assert key_part("/") == "root"
    assert key_part("/boot/firmware") == "boot_firmware"
    assert key_part("wlan0") == "wlan0"
    assert key_part("Package id 0") == "Package_id_0"


def test_real_psutil_gives_at_least_ten_keys() -> None:
    """On this machine, a primed sampler reports cpu, memory and more than ten keys in all."""
    sampler = SystemSampler()
    sampler.prime()
    sample = sampler.sample()
    assert len(sample) >= 10
    assert "mem_percent" in sample and "load_1" in sample and "disk_root_percent" in sample
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sample.values())


def test_cpu_frequency_in_mhz(fake: FakePsutil) -> None:
    """psutil.cpu_freq() gives cpu_freq_mhz, and the maximum only when it is known (not 0)."""
    Freq = namedtuple("Freq", "current min max")
    fake.cpu_freq = lambda: Freq(1499.7, 600.0, 1500.0)  # type: ignore[attr-defined]
    sample = sampler_for(fake, Clock()).sample()
    assert sample["cpu_freq_mhz"] == 1500 and sample["cpu_freq_max_mhz"] == 1500
    fake.cpu_freq = lambda: Freq(2596.15, 0.0, 0.0)  # type: ignore[attr-defined]
    sample = sampler_for(fake, Clock()).sample()
    assert sample["cpu_freq_mhz"] == 2596 and "cpu_freq_max_mhz" not in sample
