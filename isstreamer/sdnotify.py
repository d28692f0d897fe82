"""Telling systemd a service is ready (``Type=notify``): one datagram to ``$NOTIFY_SOCKET``.

The collector's unit waits for READY=1, so units ordered after it (the metrics agent) start
only once the port is bound; otherwise the agent could find 8080 closed at boot and start a
collector of its own. Outside systemd there is no socket and nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("isstreamer")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1") to systemd; False when not run by systemd or it fails."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:  # systemd then times the start out and says so itself
        log.warning("cannot tell systemd %r: %s", state, exc)
        return False
    return True
