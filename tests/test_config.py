"""Settings: arguments > environment > ini > defaults, ISStreamer's ini format, search order."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from isstreamer.config import (
    default_spill_dir,
    defaults,
    find_ini,
    load_settings,
    read_ini,
    user_config_path,
    write_ini,
)
from isstreamer.errors import ConfigError
from isstreamer.sinks.initialstate import DEFAULT_API_BASE
from isstreamer.spool import DEFAULT_MAX_BYTES

# The file ISStreamer's README tells users to write, byte for byte in spirit.
ISSTREAMER_INI = """\
[isstreamer.client_config]
access_key = ini-access-key
default_bucket = Ini Bucket
offline_mode = false
offline_file = ./offline_out

[isstreamer.api_config]
stream_api_base = https://ini.example.com/
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def client_ini(**options: str) -> str:
    lines = ["[isstreamer.client_config]"] + [f"{k} = {v}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def test_defaults_without_any_source() -> None:
    """With no argument, environment or ini file, every setting is its default."""
    settings = load_settings({}, environ={})
    assert settings.ini_path is None
    assert settings.values == defaults()
    assert settings.api_base == DEFAULT_API_BASE == "https://groker.init.st"
    assert settings.buffer_size == 10 and settings.flush_interval == 1.0
    assert settings.spill_max_bytes == DEFAULT_MAX_BYTES == 100 * 1024 * 1024
    assert settings.spill_dir == str(default_spill_dir())
    assert Path(settings.spill_dir) == Path(platformdirs.user_data_dir("isstreamer")) / "spool"
    assert set(settings.sources.values()) == {"default"}


def test_isstreamer_ini_read_as_is(tmp_path: Path) -> None:
    """An ISStreamer ini file gives access_key, default_bucket, offline_*, stream_api_base."""
    ini = write(tmp_path / "legacy.ini", ISSTREAMER_INI)
    settings = load_settings({}, str(ini), environ={})
    assert settings.ini_path == ini
    assert settings.access_key == "ini-access-key"
    assert settings.bucket_name == "Ini Bucket"
    assert settings.offline is False
    assert settings.offline_file == "./offline_out"
    assert settings.api_base == "https://ini.example.com"  # trailing slash dropped
    for name in ("access_key", "bucket_name", "offline", "offline_file", "api_base"):
        assert settings.sources[name] == f"ini ({ini})"
    assert settings.sources["bucket_key"] == "default"


def test_new_ini_keys(tmp_path: Path) -> None:
    """bucket_key, buffer_size, flush_interval, spill_dir, spill_max_bytes: same section, typed."""
    ini = write(
        tmp_path / "new.ini",
        client_ini(
            bucket_key="bk1",
            buffer_size="50",
            flush_interval="2.5",
            spill_dir="/var/spool/x",
            spill_max_bytes="4096",
        ),
    )
    settings = load_settings({}, str(ini), environ={})
    assert settings.bucket_key == "bk1"
    assert settings.buffer_size == 50 and type(settings.buffer_size) is int
    assert settings.flush_interval == 2.5 and type(settings.flush_interval) is float
    assert settings.spill_dir == "/var/spool/x"
    assert settings.spill_max_bytes == 4096


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
    ],
)
def test_offline_mode_values(tmp_path: Path, text: str, expected: bool) -> None:
    """offline_mode accepts the usual spellings of true and false."""
    ini = write(tmp_path / "o.ini", client_ini(offline_mode=text))
    assert load_settings({}, str(ini), environ={}).offline is expected


def test_percent_sign_in_key_is_literal(tmp_path: Path) -> None:
    """Values are read without interpolation, so a key containing % survives."""
    ini = write(tmp_path / "p.ini", client_ini(access_key="abc%def%(x)s"))
    assert load_settings({}, str(ini), environ={}).access_key == "abc%def%(x)s"


def test_empty_ini_value_falls_back_to_default(tmp_path: Path) -> None:
    """An option left empty in the ini is as if it were absent."""
    ini = write(tmp_path / "e.ini", client_ini(access_key="", buffer_size=""))
    settings = load_settings({}, str(ini), environ={})
    assert settings.access_key == "" and settings.sources["access_key"] == "default"
    assert settings.buffer_size == 10


def test_precedence_argument_env_ini_default(tmp_path: Path) -> None:
    """Argument beats environment beats ini beats default; the sources say which one won."""
    ini = write(tmp_path / "all.ini", ISSTREAMER_INI + "\n")
    env = {
        "ISSTREAMER_ACCESS_KEY": "env-key",
        "ISSTREAMER_BUCKET_NAME": "Env Bucket",
        "ISSTREAMER_API_BASE": "http://env.example.com",
    }
    settings = load_settings({"access_key": "arg-key"}, str(ini), environ=env)
    assert settings.access_key == "arg-key" and settings.sources["access_key"] == "argument"
    assert settings.bucket_name == "Env Bucket"
    assert settings.sources["bucket_name"] == "environment (ISSTREAMER_BUCKET_NAME)"
    assert settings.api_base == "http://env.example.com"
    assert settings.sources["api_base"] == "environment (ISSTREAMER_API_BASE)"
    assert (
        settings.offline_file == "./offline_out"
        and settings.sources["offline_file"] == f"ini ({ini})"
    )
    assert settings.buffer_size == 10 and settings.sources["buffer_size"] == "default"


def test_none_argument_means_not_given(tmp_path: Path) -> None:
    """An argument of None does not hide the environment or the ini."""
    ini = write(tmp_path / "n.ini", ISSTREAMER_INI)
    settings = load_settings(
        {"access_key": None, "bucket_name": None},
        str(ini),
        environ={"ISSTREAMER_ACCESS_KEY": "env-key"},
    )
    assert settings.access_key == "env-key"
    assert settings.bucket_name == "Ini Bucket"


def test_empty_environment_variable_is_ignored(tmp_path: Path) -> None:
    """ISSTREAMER_ACCESS_KEY="" does not hide the ini's key."""
    ini = write(tmp_path / "n.ini", ISSTREAMER_INI)
    settings = load_settings({}, str(ini), environ={"ISSTREAMER_ACCESS_KEY": ""})
    assert settings.access_key == "ini-access-key"


def test_every_documented_environment_variable() -> None:
    """ISSTREAMER_ACCESS_KEY, _API_BASE, _BUCKET_KEY, _BUCKET_NAME and _SPILL_DIR are read."""
    env = {
        "ISSTREAMER_ACCESS_KEY": "k",
        "ISSTREAMER_API_BASE": "https://e.example",
        "ISSTREAMER_BUCKET_KEY": "bk",
        "ISSTREAMER_BUCKET_NAME": "bn",
        "ISSTREAMER_SPILL_DIR": "/s",
    }
    settings = load_settings({}, environ=env)
    assert (
        settings.access_key,
        settings.api_base,
        settings.bucket_key,
        settings.bucket_name,
        settings.spill_dir,
    ) == ("k", "https://e.example", "bk", "bn", "/s")


def test_os_environ_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit environ mapping, os.environ is read."""
    monkeypatch.setenv("ISSTREAMER_BUCKET_KEY", "from-os-environ")
    assert load_settings({}).bucket_key == "from-os-environ"


def test_arguments_without_env_or_ini_form_are_kept() -> None:
    """Settings only an argument can give (e.g. timeout) are passed through as arguments."""
    settings = load_settings({"timeout": 3.0, "strict": None}, environ={})
    assert settings.timeout == 3.0 and settings.sources["timeout"] == "argument"
    assert "strict" not in settings.values
    with pytest.raises(AttributeError):
        _ = settings.strict


def test_argument_values_are_coerced() -> None:
    """Numbers and booleans given as strings by a caller are typed like ini values."""
    settings = load_settings(
        {"buffer_size": "20", "flush_interval": "0.5", "offline": "yes"}, environ={}
    )
    assert (
        settings.buffer_size == 20 and settings.flush_interval == 0.5 and settings.offline is True
    )


# ---- search order -----------------------------------------------------------------------


@pytest.fixture
def every_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """An ini file in each place the search looks, each naming its own bucket."""
    places = {
        "explicit": tmp_path / "explicit.ini",
        "env": tmp_path / "from-env.ini",
        "cwd": Path.cwd() / "isstreamer.ini",
        "home": Path.home() / "isstreamer.ini",
        "user": user_config_path(),
    }
    for name, path in places.items():
        write(path, client_ini(default_bucket=name))
    monkeypatch.setenv("ISSTREAMER_CONFIG", str(places["env"]))
    return places


def test_user_config_path_is_platformdirs() -> None:
    """The user config file lives in platformdirs' config dir (XDG_CONFIG_HOME here)."""
    assert user_config_path() == Path(platformdirs.user_config_dir("isstreamer")) / "isstreamer.ini"
    assert str(user_config_path()).startswith(os.environ["XDG_CONFIG_HOME"])


def test_search_order(every_location: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit > $ISSTREAMER_CONFIG > ./isstreamer.ini > ~/isstreamer.ini > user config dir."""
    places = every_location
    assert find_ini(str(places["explicit"])) == places["explicit"]
    assert load_settings({}, str(places["explicit"]), environ={}).bucket_name == "explicit"
    assert find_ini() == places["env"]
    monkeypatch.delenv("ISSTREAMER_CONFIG")
    assert find_ini() == places["cwd"]
    places["cwd"].unlink()
    assert find_ini() == places["home"]
    places["home"].unlink()
    assert find_ini() == places["user"]
    assert load_settings({}, environ={}).bucket_name == "user"
    places["user"].unlink()
    assert find_ini() is None


def test_explicit_path_with_tilde(tmp_path: Path) -> None:
    """An explicit path starting with ~ is expanded."""
    write(Path.home() / "cfg" / "my.ini", client_ini(default_bucket="tilde"))
    assert find_ini("~/cfg/my.ini") == Path.home() / "cfg" / "my.ini"


def test_explicit_path_missing_is_an_error(tmp_path: Path) -> None:
    """A named config file that does not exist raises ConfigError naming it, no silent default."""
    missing = tmp_path / "nope.ini"
    with pytest.raises(ConfigError, match="nope.ini"):
        load_settings({}, str(missing), environ={})


def test_env_config_path_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$ISSTREAMER_CONFIG naming a missing file: ConfigError says where the path came from."""
    monkeypatch.setenv("ISSTREAMER_CONFIG", str(tmp_path / "gone.ini"))
    with pytest.raises(ConfigError, match="ISSTREAMER_CONFIG"):
        find_ini()


def test_directory_as_explicit_path_is_an_error(tmp_path: Path) -> None:
    """A directory given as the config file raises ConfigError."""
    with pytest.raises(ConfigError):
        find_ini(str(tmp_path))


def test_unparseable_ini_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not ini syntax raises ConfigError naming the file."""
    bad = write(tmp_path / "bad.ini", "access_key = no section header\n")
    with pytest.raises(ConfigError, match="bad.ini"):
        read_ini(bad)


# ---- invalid values ---------------------------------------------------------------------


@pytest.mark.parametrize("base", ["ftp://example.com", "groker.init.st", "file:///etc/passwd", ""])
def test_bad_api_base_scheme(tmp_path: Path, base: str) -> None:
    """An api_base that is not http(s):// or redis(s):// raises ConfigError."""
    with pytest.raises(ConfigError, match="api_base"):
        load_settings({"api_base": base}, environ={})


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:8080",
        "https://groker.init.st",
        "redis://localhost:6379/0",
        "rediss://h:6380",
    ],
)
def test_good_api_base_schemes(base: str) -> None:
    """http, https, redis and rediss URLs are accepted."""
    assert load_settings({"api_base": base}, environ={}).api_base == base


def test_bad_api_base_in_ini_names_the_file(tmp_path: Path) -> None:
    """A bad stream_api_base in the ini raises ConfigError naming the file."""
    ini = write(tmp_path / "api.ini", "[isstreamer.api_config]\nstream_api_base = groker.init.st\n")
    with pytest.raises(ConfigError, match="api.ini"):
        load_settings({}, str(ini), environ={})


@pytest.mark.parametrize(
    "option, value",
    [
        ("buffer_size", "ten"),
        ("buffer_size", "0"),
        ("flush_interval", "soon"),
        ("flush_interval", "0"),
        ("flush_interval", "-1"),
        ("spill_max_bytes", "-5"),
        ("spill_max_bytes", "1.5"),
    ],
)
def test_bad_numbers_in_ini_name_the_file(tmp_path: Path, option: str, value: str) -> None:
    """A bad number in the ini raises ConfigError naming the file and the option."""
    ini = write(tmp_path / "numbers.ini", client_ini(**{option: value}))
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(ini), environ={})
    assert str(ini) in str(info.value) and option in str(info.value)


def test_bad_number_argument_says_argument() -> None:
    """A bad number given as an argument raises ConfigError that says it came from the argument."""
    with pytest.raises(ConfigError, match="argument"):
        load_settings({"buffer_size": -1}, environ={})


def test_bad_env_api_base_names_the_variable() -> None:
    """A bad ISSTREAMER_API_BASE raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="ISSTREAMER_API_BASE"):
        load_settings({}, environ={"ISSTREAMER_API_BASE": "nope"})


def test_config_error_is_value_error() -> None:
    """ConfigError can be caught as ValueError by callers that know nothing of this package."""
    assert issubclass(ConfigError, ValueError)


# ---- writing ----------------------------------------------------------------------------


def test_write_ini_creates_0600_file_readable_back(tmp_path: Path) -> None:
    """write_ini writes a 0600 file (in a 0700 dir it creates) that load_settings reads back."""
    path = tmp_path / "conf" / "isstreamer.ini"
    old = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        write_ini(path, {"access_key": "secret-key", "bucket_name": "B", "api_base": "http://h:1"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    settings = load_settings({}, str(path), environ={})
    assert (settings.access_key, settings.bucket_name, settings.api_base) == (
        "secret-key",
        "B",
        "http://h:1",
    )
    assert "default_bucket = B" in path.read_text()
    assert not list(path.parent.glob(".*.tmp"))


def test_write_ini_updates_in_place(tmp_path: Path) -> None:
    """write_ini changes only the given options and keeps the rest, tightening the mode to 0600."""
    path = write(tmp_path / "isstreamer.ini", ISSTREAMER_INI + "\n[other]\nkeep = me\n")
    os.chmod(path, 0o644)
    write_ini(path, {"access_key": "new-key", "spill_max_bytes": "2048"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = load_settings({}, str(path), environ={})
    assert settings.access_key == "new-key"
    assert settings.bucket_name == "Ini Bucket"
    assert settings.api_base == "https://ini.example.com"
    assert settings.spill_max_bytes == 2048
    assert "keep = me" in path.read_text()


def test_access_key_is_stripped() -> None:
    """A key read from a file with its trailing newline works as the key itself."""
    settings = load_settings({"access_key": " key-from-a-file\n"}, environ={})
    assert settings.access_key == "key-from-a-file"


def test_access_key_with_control_characters_is_refused_without_echo() -> None:
    """A key with a line break inside is a ConfigError whose message does not contain the key."""
    with pytest.raises(ConfigError) as info:
        load_settings({"access_key": "SECRET-part\nother"}, environ={})
    assert "SECRET" not in str(info.value)


SECRET = "ist_0123456789abcdefSECRETa1b2"


def test_settings_repr_and_str_hide_the_key() -> None:
    """repr() and str() of Settings show the key redacted, as do the credentials of api_base."""
    settings = load_settings(
        {
            "access_key": SECRET,
            "api_base": f"https://me:{SECRET}@h/?accessKey={SECRET}&bucketKey=b",
        },
        environ={},
    )
    for text in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert "SECRET" not in text
        assert "'access_key': 'ist_…a1b2'" in text
        assert "'api_base': 'https://me:…@h/?accessKey=ist_…a1b2&bucketKey=b'" in text
    assert settings.access_key == SECRET  # the value itself is untouched


def test_settings_repr_without_key() -> None:
    """No key at all shows as (none), not as an empty string someone may mistake for a bug."""
    assert "'access_key': '(none)'" in repr(load_settings({}, environ={}))


def test_bad_api_base_error_hides_credentials() -> None:
    """A refused api_base is named in the error with its password and query values redacted."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"api_base": f"ftp://me:{SECRET}@h/?accessKey={SECRET}"}, environ={})
    assert "SECRET" not in str(caught.value)
    assert "ftp://me:…@h/?accessKey=ist_…a1b2" in str(caught.value)


HAND_WRITTEN = (
    "# my settings, written by hand\n"
    "[isstreamer.client_config]\n"
    "; the old key, replaced below\n"
    "access_key = old-key\n"
    "access_key = a-second-old-key\n"
    "bucket_key = kitchen\n"
    "  continued-old-value\n"
    "# a note at the end of the section\n"
    "\n"
    "[elsewhere]\n"
    "keep = me  ; and this comment\n"
)


def test_write_ini_keeps_comments_and_other_lines(tmp_path: Path) -> None:
    """Only the given options change; comments, order and other sections stay byte for byte."""
    path = write(tmp_path / "isstreamer.ini", HAND_WRITTEN)
    write_ini(path, {"access_key": "new-key", "bucket_key": "pi", "bucket_name": "Kitchen Pi"})
    assert path.read_text() == (
        "# my settings, written by hand\n"
        "[isstreamer.client_config]\n"
        "; the old key, replaced below\n"
        "access_key = new-key\n"
        "bucket_key = pi\n"
        "default_bucket = Kitchen Pi\n"
        "# a note at the end of the section\n"
        "\n"
        "[elsewhere]\n"
        "keep = me  ; and this comment\n"
    )
    assert load_settings({}, str(path), environ={}).bucket_key == "pi"


def test_write_ini_adds_missing_sections(tmp_path: Path) -> None:
    """A setting of a section the file lacks gets the section appended after a blank line."""
    path = write(tmp_path / "isstreamer.ini", "# only a comment\n")
    write_ini(path, {"access_key": "k", "api_base": "http://h:1"})
    text = path.read_text()
    assert text.startswith("# only a comment\n\n[isstreamer.client_config]\naccess_key = k\n")
    assert "\n[isstreamer.api_config]\nstream_api_base = http://h:1\n" in text
    settings = load_settings({}, str(path), environ={})
    assert (settings.access_key, settings.api_base) == ("k", "http://h:1")


def test_write_ini_refuses_a_line_break_without_echo(tmp_path: Path) -> None:
    """A value with a line break would add lines to the file: refused, the value not shown."""
    path = tmp_path / "isstreamer.ini"
    with pytest.raises(ConfigError, match="line break") as caught:
        write_ini(path, {"access_key": "secret\n[x]"})
    assert "secret" not in str(caught.value)
    assert not path.exists()


def test_write_ini_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The file is replaced in one rename; nothing else is left in its directory."""
    path = write(tmp_path / "conf" / "isstreamer.ini", HAND_WRITTEN)
    write_ini(path, {"access_key": "k"})
    assert [p.name for p in path.parent.iterdir()] == ["isstreamer.ini"]


def test_config_loads_no_sink() -> None:
    """Importing the settings loads no sink (and so neither requests nor redis-py)."""
    code = (
        "import isstreamer.config, sys; "
        "print([m for m in sys.modules if 'sinks' in m or m in ('requests', 'redis')])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("bucket_key", ["a:b", "k" * 251])
def test_bad_bucket_key_is_a_config_error(bucket_key: str) -> None:
    """A bucket key the service would refuse is refused when the settings are read."""
    with pytest.raises(ConfigError, match="bucket_key from argument"):
        load_settings({"bucket_key": bucket_key}, environ={})


def test_write_ini_checks_what_it_writes(tmp_path: Path) -> None:
    """write_ini refuses what load_settings would refuse later, before touching the file."""
    path = tmp_path / "isstreamer.ini"
    with pytest.raises(ConfigError, match="must not contain"):
        write_ini(path, {"access_key": "k", "bucket_key": "a:b"})
    with pytest.raises(ConfigError, match="api_base"):
        write_ini(path, {"api_base": "ftp://h"})
    assert not path.exists()
