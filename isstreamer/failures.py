"""What failed, in words: one classifier for network failures and receivers' error answers.

A requests exception says little by its type: a refused connection, a name that does not
resolve and a rejected certificate are all ``ConnectionError``, and urllib3's
``NewConnectionError`` even derives from ``ConnectTimeoutError``. The cause is further down
the chain (``__cause__``, ``__context__``, urllib3's ``reason``, exceptions in ``args``), so
``classify()`` walks it and names the first cause it knows, most specific first. The sinks'
log lines, the spool's "last error" and the CLI's messages all come from here.
"""

from __future__ import annotations

import errno
import html
import http.client
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

MAX_MESSAGE_CHARS = 200  # of a receiver's message in one log line
# The texts the sinks give to a refused key: is_refused_key() recognises them, so the rule
# of what counts as "refused" stays in this one place.
REFUSED_KEY_TEXT = {
    401: "the access key was refused (401 Unauthorized)",
    403: "the access key is not allowed to write here (403 Forbidden)",
}
LIMIT_TEXT = {402: "the account reached its monthly event limit (402 Payment Required)"}
WRONG_ADDRESS_HINT = "check stream_api_base"  # a 3xx/404/405 answer: not an events API there
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_HEADING = re.compile(r"<h1[^>]*>(.*?)</h1>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


class Kind(str, Enum):
    """The kinds of failure a message can name."""

    DNS = "dns"  # the host name does not resolve
    REFUSED = "refused"  # nothing listens there (or a firewall says no)
    TIMEOUT = "timeout"  # no answer in time
    TLS = "tls"  # the certificate or the TLS handshake failed
    RESET = "reset"  # the connection broke before a whole answer arrived
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    """A failure's kind and its one-line description (no key, no traceback)."""

    kind: Kind
    text: str

    def __str__(self) -> str:
        return self.text


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps, nearest first, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped += list(current.args)
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def classify(exc: BaseException, address: str) -> Failure:
    """What went wrong reaching ``address`` (a URL without credentials), from the exception."""
    chain = list(causes(exc))
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or "not trusted"
            return Failure(Kind.TLS, f"cannot reach {address}: TLS certificate rejected ({why})")
    for cause in chain:
        if isinstance(cause, ssl.SSLError):
            why = cause.reason or type(cause).__name__
            return Failure(Kind.TLS, f"cannot reach {address}: TLS handshake failed ({why})")
        if isinstance(cause, socket.gaierror):
            why = cause.strerror or "no such host"
            return Failure(Kind.DNS, f"cannot reach {address}: its name does not resolve ({why})")
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return Failure(Kind.REFUSED, f"cannot reach {address}: connection refused")
        if isinstance(cause, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return Failure(Kind.RESET, f"cannot reach {address}: connection reset")
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return Failure(Kind.REFUSED, f"cannot reach {address}: {cause.strerror}")
    for cause in chain:
        if isinstance(cause, (socket.timeout, TimeoutError)) or "Timeout" in type(cause).__name__:
            return Failure(Kind.TIMEOUT, f"no answer from {address} in time")
    for cause in chain:
        if isinstance(cause, http.client.HTTPException) or type(cause).__name__ == "ProtocolError":
            what = type(cause).__name__  # RemoteDisconnected, IncompleteRead, BadStatusLine...
            return Failure(Kind.RESET, f"cannot reach {address}: no whole answer ({what})")
    # Not str(exc): requests quotes header values in some errors, the access key among them.
    name = type(exc).__name__
    if any(c.__name__ == "ConnectionError" for c in type(exc).__mro__):  # requests' or builtin
        return Failure(Kind.OTHER, f"cannot reach {address}: {name}")
    return Failure(Kind.OTHER, f"request to {address} failed: {name}")


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` with its whitespace runs made single spaces, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def receiver_text(body: str, content_type: str = "") -> str:
    """A receiver's error body as one line: an HTML page gives its title (or first heading)."""
    stripped = body.strip()
    if "html" in content_type.lower() or stripped[:1] == "<":
        found = _TITLE.search(stripped) or _HEADING.search(stripped)
        stripped = html.unescape(_TAG.sub(" ", found.group(1))) if found else ""
    return one_line(stripped)


def http_failure(status: int, reason: str, message: str) -> str:
    """``"500 Internal Server Error: <the receiver's message>"``, without repeating the reason."""
    head = f"{status} {reason}".strip()
    if not message or message.lower() in (reason.lower(), head.lower()):
        return head
    return f"{head}: {message}"


def refused_key_text(status: int) -> str | None:
    """The cause of a 401/402/403 answer in words, None for other statuses."""
    return REFUSED_KEY_TEXT.get(status) or LIMIT_TEXT.get(status)


def wrong_address_text(status: int, reason: str, address: str) -> str:
    """The answer of something that is no events API (a redirect, 404, 405) in words."""
    return f"{status} {reason} from {address}: {WRONG_ADDRESS_HINT}; events are kept"


def is_refused_key(message: str) -> bool:
    """True when a last-error message says the receiver refused the access key (401/403)."""
    return any(text in message for text in REFUSED_KEY_TEXT.values())


def needs_a_fix(message: str) -> bool:
    """True when waiting cannot help: the key was refused or the address is no events API."""
    return is_refused_key(message) or WRONG_ADDRESS_HINT in message
