"""The cores shared by a batch's compute and the previous batch's write (ingest/cores.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ingest.cores import Cores


def _most_at_once(cores: Cores, jobs: int) -> int:
    """Run `jobs` short jobs on as many threads as the cores, each through cores.job(): the most that ran at once."""
    lock, running, most = threading.Lock(), [0], [0]

    def job() -> None:
        with cores.job():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)  # long enough for the others to start beside it
            with lock:
                running[0] -= 1

    with ThreadPoolExecutor(cores.total) as pool:
        list(pool.map(lambda _: job(), range(jobs)))
    return most[0]


def test_the_compute_gives_up_a_core_while_a_write_runs() -> None:
    cores = Cores(3)
    assert _most_at_once(cores, 12) == 3
    with cores.writing():
        assert cores.for_compute == 2
        assert _most_at_once(cores, 12) == 2
    assert cores.for_compute == 3
    with cores.writing(), cores.writing():
        assert _most_at_once(cores, 6) == 1
    one = Cores(1)
    with one.writing():  # never less than one thread
        assert one.for_compute == 1 and _most_at_once(one, 3) == 1


def test_a_job_waiting_for_a_core_starts_as_soon_as_the_write_ends() -> None:
    cores = Cores(2)
    first_started, release_first, second_started = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with cores.job():
            first_started.set()
            release_first.wait(10)

    def second() -> None:
        with cores.job():
            second_started.set()

    with ThreadPoolExecutor(2) as pool:
        with cores.writing():
            pool.submit(first)
            assert first_started.wait(5)
            waiting = pool.submit(second)
            assert not second_started.wait(0.2)  # the compute has one core while the write runs
        assert second_started.wait(5) and not release_first.is_set()  # then two: it did not wait for the first
        release_first.set()
        waiting.result()
