"""The tests' events server is the one shipped to users: isstreamer.testing."""

from __future__ import annotations

from isstreamer.testing import DEFAULT_ACCESS_KEY, ApiServer, Request
from isstreamer.testing.handler import _Handler, _HTTPServer

__all__ = ["DEFAULT_ACCESS_KEY", "ApiServer", "Request", "_Handler", "_HTTPServer"]
