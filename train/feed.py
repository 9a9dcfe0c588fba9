"""Batches one step ahead: a background thread reads the next batch while the current one trains."""
from __future__ import annotations

import queue
import threading
from typing import Iterator

_END = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetch:
    """Iterates `batches` in a daemon thread, at most `depth` batches ahead.

    Order is kept, and whatever the source raises (a KeyboardInterrupt too) is raised by the `next`
    that would have returned that batch, so a failing source stops the loop at the same step as before.
    """

    def __init__(self, batches: Iterator, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(batches,), daemon=True, name="prefetch")
        self._thread.start()

    def _fill(self, batches: Iterator) -> None:
        try:
            for batch in batches:
                if not self._put(batch):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            self._put(_Raised(exc))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _END:
            raise StopIteration
        if isinstance(item, _Raised):
            raise item.exc
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
