"""Showing secrets safely: the one place that decides how much of a key may be seen."""
from __future__ import annotations


def redact_key(key: str) -> str:
    """A recognisable but useless form of an access key, e.g. ``ist_…a1b2``."""
    if not key:
        return "(none)"
    if len(key) >= 16:
        return f"{key[:4]}…{key[-4:]}"
    if len(key) >= 8:
        return f"…{key[-2:]}"
    return "…"
