"""What Raspberry Pi owners watch, for ``isstreamer metrics``: power and throttling flags,
Wi-Fi link and signal, SD card and root file-system wear. Anything absent is skipped.

Every file is read below ``root`` (``/`` on a device), so tests point it at fixture trees in
the kernel's own formats. Keys carry their units (``_percent``, ``_dbm``, ``_gib``); flags
are 0 or 1, so they chart as numbers.

Sources:
- throttling: ``vcgencmd get_throttled`` (``throttled=0x50005``) when installed and working,
  else the firmware driver's sysfs file (``50005``, hex without 0x). Bits 0-3 are the state
  now, bits 16-19 whether it happened since boot. Kernels without that file still have the
  ``rpi_volt`` hwmon sensor: under-voltage now, nothing else.
- Wi-Fi: ``/proc/net/wireless``. cfg80211 drivers (the Pi's brcmfmac among them) report the
  link quality on a 0-70 scale and the level in dBm; a noise of -256 means none reported.
- wear: the root file system's device from ``/proc/self/mountinfo``; for an eMMC or SD
  card, ``life_time`` (two estimates, 0x01 = 0-10 % of its life used ... 0x0a = 90-100 %,
  0x0b = beyond it; the key gives the band's upper end, 10 ... 100, or 110) and
  ``pre_eol_info`` (1 normal, 2 warning, 3 urgent) when the card reports them; ext4's
  ``lifetime_write_kbytes``; and whether root is mounted read-only (what the kernel does to
  a file system on a failing card).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Union

log = logging.getLogger("isstreamer")

Sample = dict[str, Union[int, float]]
THROTTLED_SYSFS = "sys/devices/platform/soc/soc:firmware/get_throttled"
VCGENCMD_TIMEOUT_S = 2.0
# bit -> key part; the same bit + 16 is "since boot"
THROTTLE_BITS = {0: "under_voltage", 1: "freq_capped", 2: "throttled", 3: "soft_temp_limit"}
SINCE_BOOT_SHIFT = 16
WIFI_QUALITY_MAX = 70  # cfg80211's scale (signal -110..-40 dBm mapped to 0..70)
NO_NOISE_DBM = -256  # what /proc/net/wireless shows when the driver reports no noise level
LIFE_TIME_BEYOND = 0x0B  # the card is past its rated life
KIB_PER_GIB = 1024 * 1024


class PiSampler:
    """Reads the Pi-specific sources below ``root`` into ``{key: number}``."""

    def __init__(self, root: str | os.PathLike[str] = "/", vcgencmd: str | None = "") -> None:
        """``vcgencmd``: the command's path, None to never run it, "" to look for it on PATH."""
        self.root = Path(root)
        self.vcgencmd = shutil.which("vcgencmd") if vcgencmd == "" else vcgencmd
        self._reported: set[str] = set()  # sources whose failure was logged once

    def sample(self) -> Sample:
        out: Sample = {}
        out.update(self.throttling())
        out.update(self.wifi())
        out.update(self.wear())
        return out

    # ---- reading --------------------------------------------------------------------------

    def _read(self, relative: str) -> str | None:
        """A file below root as text; None when absent (silently) or unreadable (said once)."""
        path = self.root / relative
        try:
            return path.read_text(encoding="ascii", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._once(relative, f"cannot read {path}: {exc.strerror or exc}")
            return None

    def _once(self, source: str, message: str) -> None:
        if source not in self._reported:
            self._reported.add(source)
            log.info("metrics: %s", message)

    # ---- throttling -----------------------------------------------------------------------

    def throttled_flags(self) -> int | None:
        """The firmware's throttled bits, from vcgencmd or else sysfs; None when neither works."""
        if self.vcgencmd:
            try:
                done = subprocess.run(
                    [self.vcgencmd, "get_throttled"],
                    capture_output=True,
                    text=True,
                    timeout=VCGENCMD_TIMEOUT_S,
                )
                match = re.search(r"throttled=(0x[0-9a-fA-F]+)", done.stdout)
                if done.returncode == 0 and match:
                    return int(match.group(1), 16)
                why = (done.stderr or done.stdout).strip()[:100] or f"exit {done.returncode}"
            except (OSError, subprocess.SubprocessError) as exc:
                why = str(exc)
            # Not tried again: a service without /dev/vchiq access would fork for nothing.
            self.vcgencmd = None
            self._once("vcgencmd", f"vcgencmd get_throttled failed ({why}); reading sysfs")
        text = self._read(THROTTLED_SYSFS)
        if text is None:
            return None
        try:
            return int(text.strip(), 16)
        except ValueError:
            self._once(THROTTLED_SYSFS, f"unexpected get_throttled value {text.strip()[:40]!r}")
            return None

    def _hwmon_under_voltage(self) -> int | None:
        """Bit 0 (under-voltage now) from the rpi_volt hwmon sensor, where the kernel has
        dropped the firmware's sysfs file; the other bits are unknown then."""
        try:
            sensors = sorted(os.listdir(self.root / "sys/class/hwmon"))
        except OSError:
            return None
        for sensor in sensors:
            if (self._read(f"sys/class/hwmon/{sensor}/name") or "").strip() == "rpi_volt":
                alarm = (self._read(f"sys/class/hwmon/{sensor}/in0_lcrit_alarm") or "").strip()
                return int(alarm) if alarm in ("0", "1") else None
        return None

    def throttling(self) -> Sample:
        flags = self.throttled_flags()
        if flags is None:
            under_voltage = self._hwmon_under_voltage()
            return {} if under_voltage is None else {"pi_under_voltage_now": under_voltage}
        out: Sample = {}
        for bit, name in THROTTLE_BITS.items():
            out[f"pi_{name}_now"] = (flags >> bit) & 1
            out[f"pi_{name}_since_boot"] = (flags >> (bit + SINCE_BOOT_SHIFT)) & 1
        return out

    # ---- Wi-Fi ----------------------------------------------------------------------------

    def wifi(self) -> Sample:
        text = self._read("proc/net/wireless")
        out: Sample = {}
        for line in (text or "").splitlines()[2:]:  # two header lines
            name, _, rest = line.partition(":")
            fields = rest.split()
            if not name.strip() or len(fields) < 4:
                continue
            iface = re.sub(r"[^A-Za-z0-9]+", "_", name.strip())
            try:
                link, level, noise = (float(f.rstrip(".")) for f in fields[1:4])
            except ValueError:
                continue
            quality = round(100.0 * min(link, WIFI_QUALITY_MAX) / WIFI_QUALITY_MAX, 1)
            out[f"wifi_{iface}_link_quality_percent"] = quality
            if level < 0:  # dBm; 0 or more: an old driver's unitless level, not shown
                out[f"wifi_{iface}_signal_dbm"] = int(level)
            if NO_NOISE_DBM < noise < 0:
                out[f"wifi_{iface}_noise_dbm"] = int(noise)
        return out

    # ---- wear -----------------------------------------------------------------------------

    def root_mount(self) -> tuple[str, str, str, str] | None:
        """(major:minor, file system type, source, options) of the root mount."""
        found = None
        for line in (self._read("proc/self/mountinfo") or "").splitlines():
            left, sep, right = line.partition(" - ")
            fields, after = left.split(), right.split()
            if sep and len(fields) >= 6 and fields[4] == "/" and len(after) >= 3:
                found = (fields[2], after[0], after[1], f"{fields[5]},{after[2]}")
        return found  # the last "/" mount is the one in use (one mounted over another)

    def _block_name(self, devno: str, source: str) -> str | None:
        name = os.path.basename(source)
        if source.startswith("/dev/") and name != "root":
            return name
        # /dev/root (Raspberry Pi OS boots with root=PARTUUID=...): find it by its number.
        classes = self.root / "sys/class/block"
        try:
            names = sorted(os.listdir(classes))
        except OSError:
            return None
        for candidate in names:
            if (self._read(f"sys/class/block/{candidate}/dev") or "").strip() == devno:
                return candidate
        return None

    def wear(self) -> Sample:
        mount = self.root_mount()
        if mount is None:
            return {}
        devno, fstype, source, options = mount
        out: Sample = {"rootfs_read_only": int("ro" in options.split(","))}
        part = self._block_name(devno, source)
        if part is None:
            return out
        if fstype == "ext4":
            written = self._read(f"sys/fs/ext4/{part}/lifetime_write_kbytes")
            if written is not None and written.strip().isdigit():
                out["rootfs_written_gib"] = round(int(written) / KIB_PER_GIB, 2)
        is_partition = self._read(f"sys/class/block/{part}/partition") is not None
        disk = re.sub(r"p?\d+$", "", part) if is_partition else part
        life = (self._read(f"sys/block/{disk}/device/life_time") or "").split()
        for estimate, value in zip("ab", life):
            level = _hex(value)
            if level:  # 0: not defined by the card
                out[f"sd_life_used_{estimate}_percent"] = min(level, LIFE_TIME_BEYOND) * 10
        pre_eol = _hex((self._read(f"sys/block/{disk}/device/pre_eol_info") or "").strip())
        if pre_eol:
            out["sd_pre_eol_level"] = pre_eol
        return out


def _hex(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None
