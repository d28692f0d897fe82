"""``isstreamer config``: show the effective settings (key redacted), or write an ini file."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from ..config import Settings, shown_values, user_config_path, write_ini
from ..errors import ConfigError
from ..redact import redact_key, redact_url
from ..schemes import ALL as ALL_SCHEMES
from ..schemes import prefixes, scheme_of
from .common import EXIT_OK, SETTING_OPTIONS, collector_port, load, say, wants_local_collector


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "config",
        parents=[common],
        help="show the settings, or write an ini file (config init)",
        description="Without an action: show the effective settings and where each came from.",
    )
    p.add_argument("--json", action="store_true", help="the settings as JSON")
    p.set_defaults(func=run_show, json=False)
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    show = actions.add_parser(
        "show", parents=[common], help="show the effective settings (the default)"
    )
    # SUPPRESS: `config --json show` keeps the --json given before the action.
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="as JSON")
    show.set_defaults(func=run_show)
    init = actions.add_parser(
        "init",
        parents=[common],
        help="write an ini file (mode 0600) with your access key",
        description="Write the access key (and any of --bucket-key, --bucket-name, "
        "--api-base, --spill-dir given) to an ini file readable only by "
        "you. The key is read from a hidden prompt, or from stdin with "
        "--access-key-stdin.",
    )
    init.add_argument(
        "--access-key-stdin",
        action="store_true",
        help="read the access key from the first line of stdin",
    )
    init.add_argument(
        "--path", help=f"the file to write (default: --config if given, else {user_config_path()})"
    )
    init.set_defaults(func=run_init)


def _as_json(settings: Settings) -> dict[str, Any]:
    """The settings (key and credentials redacted), each with where it came from."""
    return {
        "config_file": str(settings.ini_path) if settings.ini_path else None,
        "settings": {
            name: {"value": value, "source": settings.sources.get(name, "default")}
            for name, value in shown_values(settings.values).items()
        },
        "local_collector": wants_local_collector(settings),
    }


def run_show(args: argparse.Namespace) -> int:
    settings = load(args)
    if args.json:
        print(json.dumps(_as_json(settings), indent=2, default=str))
        return EXIT_OK
    if settings.ini_path:
        print(f"config file: {settings.ini_path}")
    else:
        print(
            "config file: none found (looked for ./isstreamer.ini, ~/isstreamer.ini,"
            f" {user_config_path()})"
        )
    width = max(len(name) for name in settings.values)
    for name, value in shown_values(settings.values).items():
        shown = "(none)" if value in ("", None) else value
        print(f"{name:<{width}}  {shown!s:<40}  {settings.sources.get(name, 'default')}")
    if wants_local_collector(settings):
        port, _ = collector_port(args)
        print(
            "no access key and no api_base: log, pipe and metrics stream to the local collector on "
            f"http://127.0.0.1:{port} (isstreamer config init sets up Initial State)"
        )
    return EXIT_OK


def _read_key(args: argparse.Namespace) -> str:
    if args.access_key_stdin:
        return sys.stdin.readline().strip()
    if args.access_key:
        return str(args.access_key).strip()
    if sys.stdin.isatty():
        return getpass.getpass("Initial State access key (input hidden): ").strip()
    raise ConfigError(
        "no access key to write: pipe it in with --access-key-stdin, or run config init "
        "in a terminal to be asked for it"
    )


def run_init(args: argparse.Namespace) -> int:
    target = Path(args.path or args.config or user_config_path()).expanduser()
    if args.api_base and scheme_of(str(args.api_base)) not in ALL_SCHEMES:
        raise ConfigError(
            f"--api-base must start with one of {', '.join(prefixes())};"
            f" got {redact_url(str(args.api_base))!r}"
        )
    key = _read_key(args)
    # No key with other settings (install.sh --bucket-key on a re-run): those alone are written.
    values: dict[str, str] = {"access_key": key} if key else {}
    for name in SETTING_OPTIONS:
        if name != "access_key" and getattr(args, name, None):
            values[name] = str(getattr(args, name))
    if not values:
        raise ConfigError("the access key is empty; nothing written")
    try:
        path = write_ini(target, values)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    say(
        args,
        f"wrote {path} (mode 0600, access key {redact_key(key) if key else 'unchanged'}); "
        "`isstreamer config` shows the result",
    )
    return EXIT_OK
