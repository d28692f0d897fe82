"""The rollups of one ingest batch, counted in Python from each series' numbers.

Measured: an INSERT ... SELECT with SQLite's GROUP BY on a time expression costs about 1.2 µs
per event and level; counting per event in the ingest loop about 0.6 µs for both levels;
slices of each series' numbers, with min/max/sum in C, a fraction of that."""

from __future__ import annotations

from bisect import bisect_left
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
    """The fine rollups (FINE_S) of one ingest batch: add() takes each series' numbers of the
    batch at once; rows() adds the coarse level and gives the UPSERT rows."""

    def __init__(self) -> None:
        # (series id, epoch // FINE_S) -> [min, max, sum, count, last epoch, last value]
        self.slots: dict[tuple[int, float], list[Any]] = {}

    def add(self, series_id: int, values: list[Any], epochs: list[float]) -> None:
        """Count one series' numbers, in batch order (the later of equal epochs wins)."""
        if epochs != sorted(epochs):  # the rare batch out of time order: one at a time
            for value, epoch in zip(values, epochs):
                self._merge(series_id, epoch // FINE_S, [value], [epoch])
            return
        # In time order, each slot is a slice: min, max and sum run in C, not per event here.
        start, n = 0, len(epochs)
        while start < n:
            slot = epochs[start] // FINE_S
            end = bisect_left(epochs, (slot + 1) * FINE_S, start)
            self._merge(series_id, slot, values[start:end], epochs[start:end])
            start = end

    def _merge(self, series_id: int, slot: float, values: list[Any], epochs: list[float]) -> None:
        agg = self.slots.get((series_id, slot))
        if agg is None:
            self.slots[(series_id, slot)] = [
                min(values),
                max(values),
                sum(values),
                len(values),
                epochs[-1],
                values[-1],
            ]
            return
        agg[0] = min(agg[0], *values)
        agg[1] = max(agg[1], *values)
        agg[2] += sum(values)
        agg[3] += len(values)
        if epochs[-1] >= agg[4]:
            agg[4], agg[5] = epochs[-1], values[-1]

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
