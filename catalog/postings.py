"""A compact weighted inverted index: key → items, scored with one numpy call.

Built once per catalog version. Each key's row holds (item, weight × IDF) pairs in
flat arrays, so scoring a message is a concatenation of the rows its keys select and
a single ``bincount`` — fast enough for thousands of items without per-item Python
loops.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt


class PostingsBuilder:
    def __init__(self) -> None:
        self._rows: dict[str, dict[int, float]] = defaultdict(dict)

    def raise_to(self, key: str, item: int, weight: float) -> None:
        """Record ``weight`` for (key, item) unless a higher one is already there."""
        row = self._rows[key]
        if weight > row.get(item, 0.0):
            row[item] = weight

    def build(self, item_count: int, idf_power: float, max_share: float = 1.0) -> Postings:
        """Freeze; keys found in more than ``max_share`` of the items are dropped."""
        limit = max(1, int(item_count * max_share))
        # IDF relative to a key found in one item only, so that scores (and the
        # thresholds on them) mean the same in a catalog of 10 items or of 5,000.
        unique = math.log(1 + (item_count - 0.5) / 1.5)
        keys: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for key, row in self._rows.items():
            if len(row) > limit:
                continue
            idf = (
                math.log(1 + (item_count - len(row) + 0.5) / (len(row) + 0.5)) / unique
            ) ** idf_power
            keys[key] = len(keys)
            for item, weight in sorted(row.items()):
                indices.append(item)
                data.append(weight * idf)
            indptr.append(len(indices))
        return Postings(
            keys,
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int32),
            np.asarray(data, dtype=np.float64),
            item_count,
        )


class Postings:
    def __init__(
        self,
        keys: dict[str, int],
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int32],
        data: npt.NDArray[np.float64],
        item_count: int,
    ) -> None:
        self._keys = keys
        self._indptr = indptr
        self._indices = indices
        self._data = data
        self.item_count = item_count

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def item_count_of(self, key: str) -> int:
        row = self._keys[key]
        return int(self._indptr[row + 1] - self._indptr[row])

    def scores(self, weighted_keys: dict[str, float]) -> npt.NDArray[np.float64]:
        """Σ factor × weight × IDF over the given keys, for every item (zeros if none)."""
        index_parts: list[npt.NDArray[np.int32]] = []
        data_parts: list[npt.NDArray[np.float64]] = []
        for key, factor in weighted_keys.items():
            row = self._keys.get(key)
            if row is None:
                continue
            start, end = self._indptr[row], self._indptr[row + 1]
            index_parts.append(self._indices[start:end])
            data = self._data[start:end]
            data_parts.append(data if factor == 1.0 else data * factor)
        if not index_parts:
            return np.zeros(self.item_count)
        summed: npt.NDArray[np.float64] = np.bincount(
            np.concatenate(index_parts),
            weights=np.concatenate(data_parts),
            minlength=self.item_count,
        ).astype(np.float64)
        return summed
