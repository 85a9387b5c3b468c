"""The training order: which row of which source is global row ``g``, and each rank's batches.

Sources are mixed by *rows* of ``seq_len`` tokens, so the row ratio is the token ratio (only a
source's last, padded row is short). With integer weights ``w``, every cycle of ``sum(w)``
global rows holds exactly ``w[s]`` rows of source ``s``, spread evenly through the cycle; so
after any number of rows each source is within one row of its share. A source's rows are
reshuffled at each of its epochs (a permutation seeded by seed, source and epoch), and a source
that runs out starts its next epoch: the row at global index ``g`` is a pure function of
``(seed, g)``. Ranks only choose which global rows they compute, so the order is the same for
any world size, and resuming needs nothing but ``g``.

>>> "".join(cycle({"b": 15, "p": 4, "g": 1}))
'bbpbbbpbbbgbbpbbbpbb'
>>> micro_batch_rows(start=40, micro=2, accumulation=2, world=2, rank=1)
[[42, 43], [46, 47]]
"""

from __future__ import annotations

import math
import queue
import threading
import time
import zlib
from collections.abc import Callable
from functools import reduce

import numpy as np
import torch

from trainer.data import Rows, collate


def cycle(weights: dict[str, int]) -> list[str]:
    """One cycle of the mixture, each source spread evenly (smooth weighted round-robin)."""
    divisor = reduce(math.gcd, weights.values())
    weights = {name: weight // divisor for name, weight in weights.items()}
    total, credit, order = sum(weights.values()), dict.fromkeys(weights, 0), []
    for _ in range(total):
        for name, weight in weights.items():
            credit[name] += weight
        chosen = max(credit, key=credit.get)  # ties go to the first-named source
        credit[chosen] -= total
        order.append(chosen)
    return order


class Mixture:
    """Global rows drawn from several sources in fixed proportions."""

    def __init__(self, sources: dict[str, Rows], weights: dict[str, int], seed: int) -> None:
        self.sources, self.seed = sources, seed
        self.order = cycle(weights)
        self.per_cycle = {name: self.order.count(name) for name in sources}
        self.before = [self.order[:i].count(name) for i, name in enumerate(self.order)]
        self._permutations: dict[tuple[str, int], np.ndarray] = {}

    def rows_taken(self, name: str, g: int) -> int:
        """How many rows of source ``name`` the first ``g`` global rows hold."""
        cycles, rest = divmod(g, len(self.order))
        return cycles * self.per_cycle[name] + self.order[:rest].count(name)

    def epoch(self, name: str, g: int) -> float:
        """Epochs of source ``name`` done after ``g`` global rows."""
        return self.rows_taken(name, g) / len(self.sources[name])

    def rows_for_epochs(self, name: str, epochs: float) -> int:
        """The fewest global rows that hold ``epochs`` passes over source ``name``."""
        wanted = math.ceil(epochs * len(self.sources[name]))
        cycles, rest = divmod(wanted, self.per_cycle[name])
        if rest == 0:  # the cycle's rows after the source's last one belong to the next cycle
            cycles, rest = cycles - 1, self.per_cycle[name]
        seen = [i for i, n in enumerate(self.order) if n == name]
        return cycles * len(self.order) + seen[rest - 1] + 1

    def locate(self, g: int) -> tuple[str, int]:
        """(source, row index) of global row ``g``."""
        cycles, rest = divmod(g, len(self.order))
        name = self.order[rest]
        taken = cycles * self.per_cycle[name] + self.before[rest]
        epoch, index = divmod(taken, len(self.sources[name]))
        return name, int(self._permutation(name, epoch)[index])

    def _permutation(self, name: str, epoch: int) -> np.ndarray:
        key = (name, epoch)
        if key not in self._permutations:
            if len(self._permutations) > 4 * len(self.sources):
                self._permutations.clear()
            seed = [self.seed, zlib.crc32(name.encode()), epoch]
            self._permutations[key] = np.random.default_rng(seed).permutation(
                len(self.sources[name])
            )
        return self._permutations[key]

    def batch(self, rows: list[int]) -> dict[str, torch.Tensor]:
        """Global rows as a batch (see ``data.collate``)."""
        return collate([(self.sources[name], i) for name, i in map(self.locate, rows)])


def micro_batch_rows(start: int, micro: int, accumulation: int, world: int, rank: int) -> list:
    """Global row ids of each micro-batch of one rank, for the step starting at row ``start``.

    Micro-batch ``m`` of rank ``r`` takes rows ``start + (m * world + r) * micro`` onwards, so
    the step's global batch is the same rows at every world size.
    """
    return [
        [start + (m * world + rank) * micro + j for j in range(micro)] for m in range(accumulation)
    ]


class Prefetcher:
    """Builds the next steps' batches on a background thread; ``get`` says how long it waited.

    >>> fetch = Prefetcher(lambda step: step * 10, first=3, depth=2)
    >>> fetch.get()[0], fetch.get()[0]
    (30, 40)
    >>> fetch.close()
    """

    def __init__(self, make: Callable[[int], object], first: int, depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make, first), daemon=True)
        self._thread.start()

    def _run(self, make: Callable[[int], object], step: int) -> None:
        while not self._stop.is_set():
            try:
                item = (make(step), None)
            except Exception as error:  # surfaced in the training thread by get()
                item = (None, error)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[1] is not None:
                return
            step += 1

    def get(self) -> tuple[object, float]:
        """The next step's batches and the seconds spent waiting for them."""
        started = time.perf_counter()
        item, error = self._queue.get()
        if error is not None:
            raise error
        return item, time.perf_counter() - started

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
