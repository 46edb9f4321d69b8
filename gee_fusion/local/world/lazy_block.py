"""A block of generated products read from the disk cache in parts: the fields each consumer reads
together (a group: the Sentinel-2 bands of the L1C and L2A collections, Cloud Score+, s2cloudless)
are read from the block file on first use, so a request of the 13 bands and the SCL reads 1.2 of the
1.8 MiB of a Sentinel-2 block file, and checks only those.

Every part read is checked on its own (:func:`gee_fusion.local.world.npz.read_part`: the index of
the file and every member read, by their CRC-32C), never trusted from the first read. Parts may come
from two versions of the file (another process may have replaced it by a whole new file between
two reads): every file of a block's path holds the same bytes (the path is keyed by the generator
and the world config, and the generator is deterministic), so the block is the same. A part that
cannot be read any more (the file evicted, damaged) comes from ``more``, which computes the whole
block again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

import numpy as np

Arrays = Mapping[str, np.ndarray]


class LazyBlock(Mapping[str, np.ndarray]):
    """A block's fields by name, each group of fields read on first use.

    Args:
        arrays: The fields read already.
        sizes: Bytes of every field of the block (those not read yet included).
        groups: Fields read together; a field in no group is read alone.
        more: Reads the fields named (or, when that fails, returns the whole block).
    """

    def __init__(
        self,
        arrays: Arrays,
        sizes: Mapping[str, int],
        groups: Sequence[Collection[str]],
        more: Callable[[Collection[str]], Arrays],
    ) -> None:
        self._arrays = dict(arrays)
        self._sizes = dict(sizes)
        self._groups = groups
        self._more = more
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Memory the block holds once every field is read (what a cache counts)."""
        return sum(self._sizes.values())

    def loaded(self) -> frozenset[str]:
        """The fields read so far."""
        return frozenset(self._arrays)

    def __getitem__(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is not None:
            return arr
        if name not in self._sizes:
            raise KeyError(name)
        with self._lock:
            if name not in self._arrays:
                group = next((g for g in self._groups if name in g), (name,))
                wanted = [n for n in group if n in self._sizes and n not in self._arrays]
                got = self._more(wanted)
                self._arrays.update({k: v for k, v in got.items() if k not in self._arrays})
            return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)
