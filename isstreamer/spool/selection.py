"""Which files of a spool a sender takes: a filter the Spool applies, for replays by hand.

A replay of chosen files must follow them when they are rewritten (a partly delivered file
comes back under a new name, a huge one is split into parts), and may send files spilled for
another receiver to the one it was given. The worker's Spool has no selection: it takes every
file and sends only those spilled for its own receiver.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .format import SpillBatch
from .names import event_count

log = logging.getLogger("isstreamer")


class Selection:
    """Some files of a spool (or all), optionally sent to one receiver whatever they record."""

    def __init__(self, names: set[str] | None = None, sink: str | None = None) -> None:
        self.names = None if names is None else set(names)  # None: every file
        self.sink = sink  # send files spilled for another receiver to this one
        self.set_aside = 0  # events of selected files the spool quarantined unread

    def wants(self, name: str) -> bool:
        """True when the spill file ``name`` (not a claim name) is selected."""
        return self.names is None or name in self.names

    def follow(self, name: str) -> None:
        """A selected file was rewritten (or split) as ``name``: that one is selected too."""
        if self.names is not None:
            self.names.add(name)

    def adopt(self, batch: SpillBatch) -> SpillBatch:
        """The batch as this selection sends it (retargeted when it names another receiver)."""
        if self.sink is not None and batch.sink != self.sink:
            log.info(
                "replay: %s was spilled for %s; sending it to %s",
                batch.path.name,
                batch.sink,
                self.sink,
            )
            batch.sink = self.sink  # Delivery only sends batches meant for its own sink
        return batch

    def quarantined(self, name: str) -> None:
        """The spool set the selected file ``name`` aside unread (it cannot be decoded)."""
        if self.wants(name):
            self.set_aside += event_count(Path(name))
