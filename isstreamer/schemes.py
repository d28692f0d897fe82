"""The URL schemes of the receivers, written once: which sink takes an api_base, and whether it
needs an access key. Sinks, the settings and the command line all read them from here."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlsplit

HTTP = ("https", "http")  # Initial State, or the local collector over http://
REDIS = ("redis", "rediss")
REDIS_CLUSTER = ("redis+cluster", "rediss+cluster")
V3IO = ("v3io+https", "v3io+http")
ALL = HTTP + REDIS + REDIS_CLUSTER + V3IO
NO_ACCESS_KEY = REDIS + REDIS_CLUSTER  # their credentials are in the URL
DEFAULT_API_BASE = "https://groker.init.st"  # Initial State's events API


def scheme_of(url: str) -> str:
    """The scheme of ``url`` in lower case, "" when it has none."""
    head, sep, _ = str(url).partition("://")
    return head.lower() if sep else ""


def split_url(url: str) -> SplitResult:
    """``urlsplit(url)`` that also takes a netloc listing several hosts (``redis+cluster://
    :pw@a:7000,[::1]:7001/``), which some Python builds refuse as "Invalid IPv6 URL" (Debian's
    3.11 has that check backported); ``netloc``, ``username`` and ``password`` work, ``hostname``
    and ``port`` do not mean anything for such a URL. ValueError for what urlsplit refuses
    in the rest."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return urlsplit(text)
    end = len(rest)
    for mark in "/?#":  # where the netloc ends, as urlsplit finds it
        found = rest.find(mark)
        if 0 <= found < end:
            end = found
    netloc = rest[:end]
    if "[" in netloc and "]" not in netloc:
        raise ValueError("Invalid IPv6 URL")  # an unclosed bracket, as urlsplit refuses it
    return urlsplit(f"{scheme}://host{rest[end:]}")._replace(netloc=netloc)


def prefixes(schemes: tuple[str, ...] = ALL) -> tuple[str, ...]:
    """``("https://", ...)``, for messages and ``str.startswith``."""
    return tuple(f"{name}://" for name in schemes)


def needs_access_key(url: str) -> bool:
    """Whether ``url`` still needs an access key setting: Redis URLs carry their own
    credentials, and an HTTP api_base may carry the key as ``?accessKey=`` (the events API's
    URL variant, which the HTTP sink reads); v3io and any other HTTP URL need one."""
    scheme = scheme_of(url)
    if scheme in NO_ACCESS_KEY:
        return False
    if scheme in HTTP:
        try:
            query = split_url(url).query
        except ValueError:  # a malformed netloc: the sink will say what is wrong with it
            return True
        return not any(name == "accessKey" and value for name, value in parse_qsl(query))
    return True
