"""`python -m isstreamer.collector [serve options]`: the collector without the CLI."""

from __future__ import annotations

import argparse
import sys

from ..cli.serve import add_serve_arguments, run_serve


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m isstreamer.collector", description="Run the local collector."
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
