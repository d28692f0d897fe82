"""Showing secrets safely: the one place that decides how much of a key or URL may be seen.

Everything that puts an access key, a password or a URL that may carry one into a repr, a
log line, an exception or a file goes through here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlunsplit

from .schemes import split_url

# Query parameters shown as they are: they name things, they grant nothing. Every other
# value is redacted: a URL is read by people, and a parameter we do not know may be a token.
_PUBLIC_PARAMS = frozenset({"bucketkey", "bucketname", "db", "container", "stream"})


def redact_key(key: str) -> str:
    """A recognisable but useless form of an access key, e.g. ``ist_…a1b2``."""
    if not key:
        return "(none)"
    if len(key) >= 16:
        return f"{key[:4]}…{key[-4:]}"
    if len(key) >= 8:
        return f"…{key[-2:]}"
    return "…"


def redact_url(url: str) -> str:
    """``url`` with its password and every query value but a few public ones redacted.

    ``https://me:pw@host/p?accessKey=ist_0123456789abcdefa1b2&bucketKey=b`` becomes
    ``https://me:…@host/p?accessKey=ist_…a1b2&bucketKey=b``. Anything that does not parse
    as a URL is shown as ``(unparsable URL)``: it may still hold a secret.
    """
    try:
        parts = split_url(str(url))
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            # A lone user part is a secret too when it is a token (https://TOKEN@host/).
            netloc = f"{user}:…@{hostport}" if sep else f"{redact_key(user)}@{hostport}"
        query = "&".join(
            f"{quote(name, safe='')}="
            + (
                quote(value, safe="")
                if name.lower() in _PUBLIC_PARAMS or not value
                else redact_key(value)
            )
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:  # a malformed URL (e.g. an unclosed "[")
        return "(unparsable URL)"


def scrub(text: str, *secrets: str) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by its redacted form.

    For text from elsewhere that may echo a secret back: a server's error message, an
    exception from a library that quotes its arguments.
    """
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, redact_key(secret))
    return text
