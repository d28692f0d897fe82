"""`isstreamer config` (isstreamer/cli/config.py): showing settings (never the key), JSON,
and writing the ini file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cli_helpers import SECRET, Cli, cli_fixture  # noqa: F401 (fixtures)


def test_config_never_shows_the_key(cli: Cli, tmp_path: Path) -> None:
    """config shows every setting and where it came from, but never the access key itself."""
    ini = tmp_path / "isstreamer.ini"
    ini.write_text(f"[isstreamer.client_config]\naccess_key = {SECRET}\nbucket_key = from-ini\n")
    cli.delenv("ISSTREAMER_ACCESS_KEY")
    cli.setenv(ISSTREAMER_CONFIG=str(ini))
    for args in (("config",), ("-vv", "config", "show"), ("--config", str(ini), "config")):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "ist_" in done.stdout and "from-ini" in done.stdout and f"ini ({ini})" in done.stdout
    cli.delenv("ISSTREAMER_CONFIG")
    cli.setenv(ISSTREAMER_ACCESS_KEY=SECRET)
    from_env = cli("config")
    assert SECRET not in from_env.stdout
    assert "environment (ISSTREAMER_ACCESS_KEY)" in from_env.stdout


def test_config_json_names_values_and_sources(cli: Cli, tmp_path: Path) -> None:
    """config --json (before or after `show`) gives each value, redacted, with its source."""
    ini = tmp_path / "isstreamer.ini"
    ini.write_text(f"[isstreamer.client_config]\naccess_key = {SECRET}\nbucket_key = from-ini\n")
    cli.delenv("ISSTREAMER_ACCESS_KEY")
    done = cli("--config", str(ini), "config", "--json")
    assert done.returncode == 0 and SECRET not in done.stdout
    doc = json.loads(done.stdout)
    assert doc == json.loads(cli("--config", str(ini), "config", "--json", "show").stdout)
    assert doc["config_file"] == str(ini) and doc["local_collector"] is False
    assert doc["settings"]["bucket_key"] == {"value": "from-ini", "source": f"ini ({ini})"}
    assert doc["settings"]["access_key"]["value"].startswith("ist_")
    assert doc["settings"]["spill_dir"]["source"] == "environment (ISSTREAMER_SPILL_DIR)"


def test_config_never_shows_credentials_in_api_base(cli: Cli) -> None:
    """config shows api_base with its password redacted; a bad --api-base is refused (2)."""
    cli.setenv(ISSTREAMER_API_BASE=f"redis://:{SECRET}@127.0.0.1:6379/0")
    done = cli("config")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr and "127.0.0.1:6379" in done.stdout
    bad = cli("config", "init", "--api-base", f"ftp://u:{SECRET}@h/", stdin="k\n")
    assert bad.returncode == 2 and SECRET not in bad.stdout + bad.stderr


def test_config_init_writes_0600(cli: Cli) -> None:
    """config init stores the key from stdin in the user config file, readable only by its owner."""
    done = cli(
        "--bucket-key", "kitchen", "config", "init", "--access-key-stdin", stdin=SECRET + "\n"
    )
    assert done.returncode == 0, done.stderr
    ini = Path(os.environ["XDG_CONFIG_HOME"]) / "isstreamer" / "isstreamer.ini"
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    text = ini.read_text()
    assert f"access_key = {SECRET}" in text and "bucket_key = kitchen" in text
    assert SECRET not in done.stdout + done.stderr
    cli.delenv("ISSTREAMER_ACCESS_KEY")
    assert f"ini ({ini})" in cli("config").stdout
    no_key = cli("config", "init")
    assert no_key.returncode == 2 and "--access-key-stdin" in no_key.stderr
