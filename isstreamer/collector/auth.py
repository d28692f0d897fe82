"""Who may do what at the collector: the access-key check and the rule for keyless reads."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping, Sequence


def given_key(headers: Mapping[str, str], query: Sequence[tuple[str, str]]) -> str:
    """The access key a request carries: the X-IS-AccessKey header, else ?accessKey=, else ""."""
    key = headers.get("x-is-accesskey")
    if key is None:
        key = next((v for k, v in query if k == "accessKey"), "")
    return key


def key_accepted(given: str, access_keys: Iterable[str]) -> bool:
    """True when ``given`` is one of ``access_keys``, compared in constant time."""
    raw = given.encode("utf-8", "surrogateescape")
    accepted = False
    for key in access_keys:
        # compare_digest takes time independent of where the strings differ; check all keys,
        # so the time does not tell which of them came close either.
        accepted |= hmac.compare_digest(key.encode("utf-8"), raw)
    return accepted


def reads_need_key(reads_open: bool, host_header: str | None) -> bool:
    """True when a read must carry a key: the collector is exposed, or the Host is foreign.

    Open reads also need a loopback Host header: a web page using DNS rebinding reaches
    127.0.0.1 under its own host name, and must not read the data without the key.
    """
    return not (reads_open and loopback_host(host_header or ""))


def loopback_host(host: str) -> bool:
    """True for Host headers naming this machine: localhost, 127.x.y.z, [::1], with any port."""
    name = host.strip().lower()
    name = name[1 : name.find("]")] if name.startswith("[") else name.rsplit(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_address(host: str) -> bool:
    """True for a loopback IP address to bind (``127.0.0.1``, ``::1``, ``::1%lo``), not a name."""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
