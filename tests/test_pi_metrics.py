"""The Raspberry Pi sampler, reading fixture trees in the kernel's formats (tests/fixtures/pi)."""

from __future__ import annotations

import logging
import shutil
import stat
from pathlib import Path

import pytest

from isstreamer.pi_metrics import THROTTLED_SYSFS, PiSampler

PI = Path(__file__).parent / "fixtures" / "pi"


@pytest.fixture
def pi_root(tmp_path: Path) -> Path:
    """A copy of the Pi fixture tree that a test may change."""
    root = tmp_path / "root"
    shutil.copytree(PI, root)
    return root


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_pi_reports_flags_wifi_and_wear() -> None:
    """The fixture Pi: under-voltage and throttling now and since boot, Wi-Fi, card wear."""
    sample = PiSampler(PI, vcgencmd=None).sample()
    assert sample == {
        "pi_under_voltage_now": 1,
        "pi_under_voltage_since_boot": 1,
        "pi_freq_capped_now": 0,
        "pi_freq_capped_since_boot": 0,
        "pi_throttled_now": 1,
        "pi_throttled_since_boot": 1,
        "pi_soft_temp_limit_now": 0,
        "pi_soft_temp_limit_since_boot": 0,
        "wifi_wlan0_link_quality_percent": 70.0,  # 49 of cfg80211's 70
        "wifi_wlan0_signal_dbm": -61,  # no noise key: -256 means none reported
        "rootfs_read_only": 0,
        "rootfs_written_gib": 50.0,
        "sd_life_used_a_percent": 20,
        "sd_life_used_b_percent": 10,
        "sd_pre_eol_level": 1,
    }


def test_vcgencmd_is_preferred_and_sysfs_is_the_fallback(tmp_path: Path, pi_root: Path) -> None:
    """A working vcgencmd gives the flags; a failing one (no /dev/vchiq) falls back to sysfs."""
    working = _script(tmp_path / "vcgencmd", "echo throttled=0x80008")
    flags = PiSampler(pi_root, vcgencmd=working).throttling()
    assert flags["pi_soft_temp_limit_now"] == 1 and flags["pi_soft_temp_limit_since_boot"] == 1
    assert flags["pi_under_voltage_now"] == 0
    failing = _script(tmp_path / "broken", "echo 'VCHI initialization failed' >&2; exit 255")
    sampler = PiSampler(pi_root, vcgencmd=failing)
    assert sampler.throttled_flags() == 0x50005
    assert PiSampler(pi_root, vcgencmd=str(tmp_path / "absent")).throttled_flags() == 0x50005


def test_absent_files_are_skipped(tmp_path: Path) -> None:
    """A machine without any of the files (not a Pi) gives no keys and no error."""
    assert PiSampler(tmp_path, vcgencmd=None).sample() == {}


def test_wear_of_a_root_named_by_its_device(pi_root: Path) -> None:
    """A root mounted read-only from /dev/mmcblk0p2, on a card past its rated life."""
    mountinfo = pi_root / "proc/self/mountinfo"
    mountinfo.write_text(
        "28 1 179:2 / / ro,noatime shared:1 - ext4 /dev/mmcblk0p2 ro,errors=remount-ro\n"
    )
    (pi_root / "sys/block/mmcblk0/device/life_time").write_text("0x0b 0x0a\n")
    (pi_root / "sys/block/mmcblk0/device/pre_eol_info").write_text("0x03\n")
    wear = PiSampler(pi_root, vcgencmd=None).wear()
    assert wear["rootfs_read_only"] == 1
    assert wear["sd_life_used_a_percent"] == 110 and wear["sd_life_used_b_percent"] == 100
    assert wear["sd_pre_eol_level"] == 3


def test_wifi_lines_without_dbm_or_with_noise(pi_root: Path) -> None:
    """A noise level is reported when the driver gives one; a unitless level is not a dBm."""
    (pi_root / "proc/net/wireless").write_text(
        "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
        " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
        " wlan0: 0000   70.  -40.  -92.        0      0      0      0      0        0\n"
        "  wlp2s0: 0000   35    200    0        0      0      0      0      0        0\n"
    )
    wifi = PiSampler(pi_root, vcgencmd=None).wifi()
    assert wifi == {
        "wifi_wlan0_link_quality_percent": 100.0,
        "wifi_wlan0_signal_dbm": -40,
        "wifi_wlan0_noise_dbm": -92,
        "wifi_wlp2s0_link_quality_percent": 50.0,
    }


def test_an_unreadable_or_odd_file_is_said_once(
    pi_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A get_throttled that is a directory (unreadable) is skipped and logged once."""
    path = pi_root / THROTTLED_SYSFS
    path.unlink()
    path.mkdir()
    sampler = PiSampler(pi_root, vcgencmd=None)
    with caplog.at_level(logging.INFO, logger="isstreamer"):
        assert "pi_throttled_now" not in sampler.sample()
        assert "pi_throttled_now" not in sampler.sample()
    assert len([r for r in caplog.records if "get_throttled" in r.getMessage()]) == 1
    path.rmdir()
    path.write_text("zz\n")
    assert sampler.throttled_flags() is None


def test_without_the_firmware_file_hwmon_gives_under_voltage(pi_root: Path) -> None:
    """A kernel without get_throttled: under-voltage now from the rpi_volt hwmon sensor only."""
    (pi_root / THROTTLED_SYSFS).unlink()
    for name, sensor in (("cpu_thermal", "hwmon0"), ("rpi_volt", "hwmon1")):
        (pi_root / "sys/class/hwmon" / sensor).mkdir(parents=True)
        (pi_root / "sys/class/hwmon" / sensor / "name").write_text(name + "\n")
    (pi_root / "sys/class/hwmon/hwmon1/in0_lcrit_alarm").write_text("1\n")
    assert PiSampler(pi_root, vcgencmd=None).throttling() == {"pi_under_voltage_now": 1}


def test_a_failing_vcgencmd_is_not_run_again(tmp_path: Path, pi_root: Path) -> None:
    """After one failure vcgencmd is left alone: sysfs answers without a fork per sample."""
    count = tmp_path / "runs"
    failing = _script(tmp_path / "vcgencmd", f"echo run >> {count}; exit 255")
    sampler = PiSampler(pi_root, vcgencmd=failing)
    assert sampler.throttled_flags() == sampler.throttled_flags() == 0x50005
    assert count.read_text().count("run") == 1
