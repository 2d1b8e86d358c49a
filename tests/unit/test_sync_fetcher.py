"""The fetcher of documents ahead: at most its workers at once, the most urgent first, and
nothing left running after it is closed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from sluice.sync.fetcher import Fetcher


def test_keys_are_fetched_in_order_not_as_queued_and_an_urgent_one_goes_first() -> None:
    gate = threading.Event()
    done: list[str] = []

    def load(key: str) -> None:
        gate.wait(5)
        done.append(key)

    fetcher = Fetcher(load, 1, order=lambda key: int(key[1:]))
    first = fetcher.submit("k0")  # taken at once by the one worker, which waits at the gate
    time.sleep(0.05)
    futures = [fetcher.submit(k) for k in ("k5", "k3", "k9", "k1")]
    urgent = fetcher.submit("k7", urgent=True)
    gate.set()
    for future in [first, *futures, urgent]:
        future.result(5)
    assert done == ["k0", "k7", "k1", "k3", "k5", "k9"]
    fetcher.close()


def test_at_most_its_workers_run_at_once_and_an_error_is_the_keys() -> None:
    lock = threading.Lock()
    at_once = [0, 0]

    def load(key: str) -> None:
        with lock:
            at_once[0] += 1
            at_once[1] = max(at_once)
        time.sleep(0.01)
        with lock:
            at_once[0] -= 1
        if key == "bad":
            raise ValueError("bad key")

    fetcher = Fetcher(load, 3, order=None)
    futures = [fetcher.submit(f"k{i}") for i in range(20)]
    bad = fetcher.submit("bad")
    for future in futures:
        future.result(5)
    with pytest.raises(ValueError, match="bad key"):
        bad.result(5)
    assert at_once[1] == 3
    fetcher.close()


def test_closing_cancels_what_has_not_started_and_waits_for_what_has() -> None:
    started = threading.Event()
    release = threading.Event()
    done: list[str] = []

    def load(key: str) -> None:
        started.set()
        release.wait(5)
        done.append(key)

    fetcher = Fetcher(load, 1, order=None)
    running = fetcher.submit("a")
    queued = fetcher.submit("b")
    started.wait(5)
    closer = threading.Thread(target=fetcher.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive()  # waits for the fetch in flight
    release.set()
    closer.join(5)
    assert not closer.is_alive()
    assert running.result(1) is None and done == ["a"]
    with pytest.raises(CancelledError):
        queued.result(1)
    with pytest.raises(RuntimeError):
        fetcher.submit("c")
