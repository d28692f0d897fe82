"""The local collector behind `isstreamer serve`: Initial State's events API on SQLite, a read
API and a live dashboard. Its command line is isstreamer.cli.serve."""

from __future__ import annotations

from .keys import default_db_path, key_file_path
from .local import LocalCollector, ensure_local_collector, local_collector
from .server import Collector
from .wire import Limits

__all__ = [
    "Collector",
    "Limits",
    "LocalCollector",
    "default_db_path",
    "ensure_local_collector",
    "key_file_path",
    "local_collector",
]
