"""The rollups of one ingest batch, counted in Python as the store walks the batch.

Measured: SQLite's GROUP BY on a time expression costs about 0.6 µs per event and level, an
INSERT ... SELECT of both levels 2.4 µs; counting here costs about 0.6 µs for both levels."""

from __future__ import annotations

from typing import Any

from .schema import ROLLUP_STEPS_S

FINE_S, COARSE_S = ROLLUP_STEPS_S
# Merge into the rollups table: min and max widen, sums add, the latest event's value wins.
UPSERT = """
INSERT INTO rollups (series_id, step, t, min, max, sum, count, last_epoch, last_value)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series_id, step, t) DO UPDATE SET
    min = min(min, excluded.min),
    max = max(max, excluded.max),
    sum = sum + excluded.sum,
    count = count + excluded.count,
    last_value = CASE WHEN excluded.last_epoch >= last_epoch
                 THEN excluded.last_value ELSE last_value END,
    last_epoch = max(last_epoch, excluded.last_epoch)
"""


class Fine:
    """The fine rollups of one ingest batch, added to event by event; rows() adds the coarse."""

    def __init__(self) -> None:
        self.slots: dict[tuple[int, float], list[Any]] = {}
        # series id -> (minute, its aggregate): a batch holds runs of one series' minute, so
        # most events find theirs here without building and hashing a tuple.
        self._open: dict[int, tuple[float, list[Any]]] = {}

    def add(self, series_id: int, epoch: float, value: Any) -> None:
        """Count one number of one series."""
        slot = epoch // FINE_S
        current = self._open.get(series_id)
        if current is not None and current[0] == slot:
            agg = current[1]
        else:
            found = self.slots.get((series_id, slot))
            if found is None:
                agg = self.slots[(series_id, slot)] = [value, value, value, 1, epoch, value]
                self._open[series_id] = (slot, agg)
                return
            agg = found
            self._open[series_id] = (slot, agg)
        if value < agg[0]:
            agg[0] = value
        elif value > agg[1]:
            agg[1] = value
        agg[2] += value
        agg[3] += 1
        if epoch >= agg[4]:
            agg[4] = epoch
            agg[5] = value

    def rows(self) -> list[tuple[Any, ...]]:
        """UPSERT parameters for both levels."""
        coarse: dict[tuple[int, float], list[Any]] = {}
        out = []
        for (series_id, slot), agg in self.slots.items():
            out.append((series_id, FINE_S, int(slot) * FINE_S, *agg))
            wide = (series_id, slot * FINE_S // COARSE_S)
            into = coarse.get(wide)
            if into is None:
                coarse[wide] = agg[:]
                continue
            into[0] = min(into[0], agg[0])
            into[1] = max(into[1], agg[1])
            into[2] += agg[2]
            into[3] += agg[3]
            if agg[4] >= into[4]:
                into[4:6] = agg[4:6]
        out.extend((s, COARSE_S, int(slot) * COARSE_S, *agg) for (s, slot), agg in coarse.items())
        return out
