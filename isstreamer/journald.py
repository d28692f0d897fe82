"""journald priorities on stderr: a ``<3>``..``<7>`` prefix when stderr is the journal.

systemd connects a service's stderr to journald and names that stream in ``$JOURNAL_STREAM``
("device:inode"). journald reads a leading ``<N>`` as the line's syslog priority (the units'
``SyslogLevelPrefix=yes``), so ``journalctl -p warning`` shows warnings and errors only. On a
terminal, a pipe or a file the prefix would be noise: it is added only when the stream is
the one systemd named (a child whose stderr was redirected keeps the variable, not the stream).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

# syslog priorities (RFC 5424): 3 error, 4 warning, 5 notice, 6 informational, 7 debug.
ERR, WARNING, INFO, DEBUG = 3, 4, 6, 7


def priority(levelno: int) -> int:
    """The syslog priority of a logging level: ERROR and above 3 ... DEBUG and below 7."""
    if levelno >= logging.ERROR:
        return ERR
    if levelno >= logging.WARNING:
        return WARNING
    if levelno >= logging.INFO:
        return INFO
    return DEBUG


def is_journal(stream: IO[Any] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` (default stderr) is the journal stream ``$JOURNAL_STREAM`` names."""
    stream = sys.stderr if stream is None else stream
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep:
        return False
    try:
        wanted = (int(device), int(inode))
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # not a number, no file descriptor, closed
        return False
    return (st.st_dev, st.st_ino) == wanted


class PriorityFormatter(logging.Formatter):
    """A Formatter whose every line starts with the record's priority, e.g. ``<4>``.

    Every line: journald reads a traceback line by line, and each would otherwise be logged
    at the default priority (informational).
    """

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def formatter_for(
    stream: IO[Any] | None = None, fmt: str | None = None, datefmt: str | None = None
) -> logging.Formatter:
    """A PriorityFormatter when ``stream`` (default stderr) is the journal, else a Formatter."""
    kind = PriorityFormatter if is_journal(stream) else logging.Formatter
    return kind(fmt, datefmt)
