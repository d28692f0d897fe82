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
    """``urlsplit(url)``, which also takes a netloc listing several hosts (``redis+cluster://
    :pw@a:7000,[::1]:7001/``) where a Python build refuses one as "Invalid IPv6 URL" (Debian's
    3.11 has that check backported). ``netloc``, ``username`` and ``password`` then work;
    ``hostname`` and ``port`` mean nothing for such a URL. ValueError for any other URL that
    urlsplit refuses."""
    text = str(url)
    try:
        return urlsplit(text)
    except ValueError:
        # urlsplit drops tabs and line breaks anywhere in a URL: so does the second try.
        text = text.translate({ord(c): None for c in "\t\r\n"})
        scheme, sep, rest = text.partition("://")
        end = min([found for found in map(rest.find, "/?#") if found >= 0] or [len(rest)])
        netloc = rest[:end]
        hosts = netloc.rpartition("@")[2].split(",")
        if not sep or len(hosts) < 2 or not all(_bracketed_host_ok(h) for h in hosts):
            raise
        return urlsplit(f"{scheme}://host{rest[end:]}")._replace(netloc=netloc)


def _bracketed_host_ok(host: str) -> bool:
    # "[v6]" or "[v6]:port", or no bracket at all: what urlsplit accepts of one host.
    if "[" not in host and "]" not in host:
        return True
    return host.startswith("[") and host.count("[") == 1 and host.count("]") == 1


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
