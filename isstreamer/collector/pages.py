"""The dashboard's files: its HTML pages, scripts and vendored uPlot, shipped in ``static/``."""

from __future__ import annotations

import functools
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}
# Pages hold no data (the browser fetches it from the read API), so they are served without a
# key; "no-cache" makes an upgraded collector's pages show up at the next reload.
_CACHE = "no-cache"


@functools.cache
def _load(name: str) -> tuple[bytes, str, str] | None:
    # Only plain names of files that exist in static/: no path ever reaches the filesystem.
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = STATIC_DIR / name
    ctype = _TYPES.get(path.suffix)
    if ctype is None or not path.is_file():
        return None
    return path.read_bytes(), ctype, _CACHE


def page_for(parts: list[str]) -> tuple[bytes, str, str] | None:
    """(body, content type, cache policy) for a dashboard URL split into segments, or None."""
    if parts in ([], [""]):
        return _load("index.html")
    if len(parts) == 2 and parts[0] == "buckets" and parts[1]:
        return _load("bucket.html")
    if len(parts) == 2 and parts[0] == "static":
        return _load(parts[1])
    return None


NOT_FOUND: tuple[bytes, str, str] = _load("404.html") or (b"not found", _TYPES[".txt"], _CACHE)
