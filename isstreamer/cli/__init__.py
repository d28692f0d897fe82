"""The ``isstreamer`` command: one module per subcommand, the shared parts beside them.

``main`` parses the global options (before or after any command) and runs the command;
``common`` opens settings and Streamers, ``signals`` is the one way a command stops.
"""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
