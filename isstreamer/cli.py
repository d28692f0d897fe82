"""The `isstreamer` command."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from ._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isstreamer", description="Stream telemetry to Initial State or a local collector.")
    parser.add_argument("--version", action="version", version=f"isstreamer {__version__}")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    build_parser().parse_args(argv)
    return 0
