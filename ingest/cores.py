"""How the worker's threads share the cores: the compute of one batch, the write of the batch before it.

The worker writes batch i on its writer thread while batch i+1 is captured and projected (ingest/worker.py);
the write runs on one core (lensgraph/store/embedded.py WRITE_THREADS). Had the compute kept a thread on
every core, three busy threads would have shared two: each thread the scheduler preempts holds up the others
(a two-thread matmul waits for its other half; the commit waits its turn). So the compute never asks for
more cores than the write leaves free: forward passes run on one thread (a second one only made a SmolLM2
forward 1.1x faster alone, and 3x slower beside a write), and the projection's single-threaded jobs run one
fewer at a time while a write is in flight (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op threads set to one, and restored after (the setting is global to the process)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Cores:
    def __init__(self, total: int) -> None:
        self.total = total  # projection jobs at once while nothing is written
        self._writes = 0
        self._jobs = 0  # projection jobs running
        self._changed = threading.Condition()

    @property
    def for_compute(self) -> int:
        return max(1, self.total - self._writes)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write that overlaps compute: the compute gives up a core until it ends."""
        with self._changed:
            self._writes += 1
        try:
            yield
        finally:
            with self._changed:
                self._writes -= 1
                self._changed.notify_all()

    @contextmanager
    def job(self) -> Iterator[None]:
        """Around one single-threaded projection job: waits until the compute has a core free for it."""
        with self._changed:
            self._changed.wait_for(lambda: self._jobs < self.for_compute)
            self._jobs += 1
        try:
            yield
        finally:
            with self._changed:
                self._jobs -= 1
                self._changed.notify_all()


CORES = Cores(torch.get_num_threads())  # the process's: its writes and its projections share the same cores
