"""Settings from arguments > environment > ini file > defaults, with where each came from.

The ini format is ISStreamer's, read as is, with new keys in the same sections.
"""

from __future__ import annotations

import configparser
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from . import schemes
from .errors import ConfigError
from .model import access_key_problem, bucket_key_problem
from .redact import redact_key, redact_url
from .schemes import DEFAULT_API_BASE
from .spool import DEFAULT_MAX_BYTES

APP = "isstreamer"
CLIENT = "isstreamer.client_config"
API = "isstreamer.api_config"

# setting -> (ini section, ini option, environment variable)
_SOURCES: dict[str, tuple] = {
    "access_key": (CLIENT, "access_key", "ISSTREAMER_ACCESS_KEY"),
    "bucket_key": (CLIENT, "bucket_key", "ISSTREAMER_BUCKET_KEY"),
    "bucket_name": (CLIENT, "default_bucket", "ISSTREAMER_BUCKET_NAME"),
    "api_base": (API, "stream_api_base", "ISSTREAMER_API_BASE"),
    "offline": (CLIENT, "offline_mode", None),
    "offline_file": (CLIENT, "offline_file", None),
    "buffer_size": (CLIENT, "buffer_size", None),
    "flush_interval": (CLIENT, "flush_interval", None),
    "spill_dir": (CLIENT, "spill_dir", "ISSTREAMER_SPILL_DIR"),
    "spill_max_bytes": (CLIENT, "spill_max_bytes", None),
}
# The v3io SDK's variable; only for a v3io api_base (never sent to another receiver), and
# only when no isstreamer setting gives a key.
V3IO_KEY_ENV = "V3IO_ACCESS_KEY"


def user_config_path() -> Path:
    """Where `isstreamer config init` and install.sh write the ini file."""
    return Path(platformdirs.user_config_dir(APP)) / "isstreamer.ini"


def default_spill_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP)) / "spool"


def defaults() -> dict[str, Any]:
    return {
        "access_key": "",
        "bucket_key": "",
        "bucket_name": "",
        "api_base": DEFAULT_API_BASE,
        "offline": False,
        "offline_file": "./isstreamer_out.csv",
        "buffer_size": 10,
        "flush_interval": 1.0,
        "spill_dir": str(default_spill_dir()),
        "spill_max_bytes": DEFAULT_MAX_BYTES,
    }


def find_ini(explicit: str | None = None) -> Path | None:
    """The explicit path, $ISSTREAMER_CONFIG, ./isstreamer.ini, ~/isstreamer.ini, user config."""
    for origin, given in (
        ("ini_file_location", explicit),
        ("ISSTREAMER_CONFIG", os.environ.get("ISSTREAMER_CONFIG")),
    ):
        if given:
            path = Path(os.path.expanduser(given))
            if not path.is_file():
                raise ConfigError(
                    f"config file {path} (from {origin}) does not exist or is not a file"
                )
            return path
    for candidate in (
        Path.cwd() / "isstreamer.ini",
        Path.home() / "isstreamer.ini",
        user_config_path(),
    ):
        if candidate.is_file():
            return candidate
    return None


def read_ini(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    values = {}
    for name, (section, option, _env) in _SOURCES.items():
        if parser.has_option(section, option):
            values[name] = parser.get(section, option).strip()
    return values


@dataclass(repr=False)
class Settings:
    """The effective configuration and, per setting, where it came from."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    ini_path: Path | None = None

    def __repr__(self) -> str:
        # Settings end up in tracebacks, debug output and bug reports: never the key itself.
        return (
            f"Settings(values={shown_values(self.values)!r}, sources={self.sources!r}, "
            f"ini_path={self.ini_path!r})"
        )

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def shown_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as they may be shown: the access key and any credentials in api_base redacted."""
    shown = dict(values)
    if "access_key" in shown:
        shown["access_key"] = redact_key(str(shown["access_key"] or ""))
    if shown.get("api_base"):
        shown["api_base"] = redact_url(str(shown["api_base"]))
    return shown


def _coerce(name: str, value: Any, origin: str) -> Any:
    try:
        if name == "offline":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if name in ("buffer_size", "spill_max_bytes"):
            number = int(value)
            if number < 1:
                raise ValueError("must be at least 1")
            return number
        if name == "flush_interval":
            seconds = float(value)
            if not seconds > 0:
                raise ValueError("must be more than 0")
            return seconds
    except (TypeError, ValueError) as exc:
        # Only settings with no secret reach this (access_key and api_base are checked below).
        raise ConfigError(f"{name} from {origin} is invalid ({value!r}): {exc}") from None
    if name == "access_key":
        key = str(value).strip()  # a key read from a file often ends in a newline
        problem = access_key_problem(key)
        if problem:  # Don't echo it: this message may be printed or logged.
            raise ConfigError(f"access_key from {origin}: {problem}")
        return key
    if name == "bucket_key":
        problem = bucket_key_problem(str(value)) if value else None
        if problem:
            raise ConfigError(f"bucket_key from {origin} is invalid: {problem}")
        return value
    if name == "api_base":
        value = str(value).strip()
        if schemes.scheme_of(value) not in schemes.ALL:
            raise ConfigError(
                f"api_base from {origin} must start with one of "
                f"{', '.join(schemes.prefixes())}; got {redact_url(value)!r}"
            )
        return value.rstrip("/")
    return value


def load_settings(
    arguments: Mapping[str, Any],
    ini_file_location: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting; ``arguments`` holds only what the caller actually gave."""
    env = os.environ if environ is None else environ
    ini_path = find_ini(ini_file_location)
    ini = read_ini(ini_path) if ini_path else {}
    values = defaults()
    sources = {name: "default" for name in values}
    for name, (section, option, env_name) in _SOURCES.items():
        if name in arguments and arguments[name] is not None:
            values[name], sources[name] = _coerce(name, arguments[name], "argument"), "argument"
        elif env_name and env.get(env_name):
            values[name], sources[name] = (
                _coerce(name, env[env_name], env_name),
                f"environment ({env_name})",
            )
        elif name in ini and ini[name] != "":
            origin = f"{ini_path} [{section}] {option}"
            values[name], sources[name] = _coerce(name, ini[name], origin), f"ini ({ini_path})"
    if (
        sources["access_key"] == "default"
        and env.get(V3IO_KEY_ENV)
        and schemes.scheme_of(str(values["api_base"])) in schemes.V3IO
    ):
        values["access_key"] = _coerce("access_key", env[V3IO_KEY_ENV], V3IO_KEY_ENV)
        sources["access_key"] = f"environment ({V3IO_KEY_ENV})"
    for name, value in arguments.items():  # settings with no env/ini form
        if name not in values and value is not None:
            values[name], sources[name] = value, "argument"
    return Settings(values, sources, ini_path)


_HEADER = re.compile(r"\s*\[(.*)\]\s*$")
_OPTION = re.compile(r"([^\s=:#;\[][^=:]*?)\s*[=:]")


def write_ini(path: Path, values: Mapping[str, str]) -> Path:
    """Write (or update) an ini file holding secrets: 0600 from the first byte.

    The given settings are replaced in place or added to their section; every other line, the
    user's comments among them, stays as it was. Written to a private temporary file, synced,
    then renamed over the old one: a crash leaves the old file or the new one, never half.
    """
    path = Path(path)
    wanted: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        checked = _coerce(name, value, "argument")  # what load_settings would refuse
        text = checked if isinstance(checked, str) else str(value)
        if "\n" in text or "\r" in text:  # Don't echo it: it may be the access key.
            raise ConfigError(f"{name} holds a line break; an ini value is one line")
        section, option, _env = _SOURCES[name]
        wanted.setdefault(section, {})[option] = text
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    text = "\n".join(_updated_lines(lines, wanted)) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)  # mkstemp makes it 0600 already; say so whatever the platform
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _updated_lines(lines: list[str], wanted: Mapping[str, Mapping[str, str]]) -> list[str]:
    """``lines`` of an ini file with the ``wanted`` options (per section) set."""
    out: list[str] = []
    done: set[tuple[str, str]] = set()  # (section, option) written
    section: str | None = None
    last = 0  # where the current section's last option (or its header) ends in out
    skipping = False  # inside the continuation lines of a value being replaced

    def add_missing() -> None:
        if section is not None and section in wanted:
            missing = [(o, v) for o, v in wanted[section].items() if (section, o) not in done]
            out[last:last] = [f"{option} = {value}" for option, value in missing]
            done.update((section, option) for option, _ in missing)

    for line in lines:
        header = _HEADER.match(line)
        if header:
            add_missing()
            section, skipping = header.group(1).strip(), False
            out.append(line)
            last = len(out)
            continue
        if skipping and line[:1].isspace() and line.strip():
            continue
        skipping = False
        match = _OPTION.match(line) if section in wanted else None
        option = match.group(1).lower() if match else ""
        if section is not None and option in wanted.get(section, {}):
            if (section, option) not in done:  # a repeated option is dropped
                out.append(f"{option} = {wanted[section][option]}")
                done.add((section, option))
                last = len(out)
            skipping = True
            continue
        out.append(line)
        if line.strip() and not line.lstrip().startswith(("#", ";")):
            last = len(out)
    add_missing()
    for name in wanted:
        if not any(s == name for s, _ in done):
            if out and out[-1].strip():
                out.append("")
            out.append(f"[{name}]")
            section, last = name, len(out)
            add_missing()
    return out
