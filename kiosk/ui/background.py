"""Work off the UI thread, results back on it in order: one queue drained by a Kivy trigger.

Use::

    jobs = BackgroundJobs()
    jobs.run("snapshot", collector.collect, on_done=screen.show)   # skipped if one is running
    jobs.post(lambda: screen.show_progress(p))   # from any thread: run on the UI thread, in order
    jobs.close()                             # results still queued are dropped

Why a queue: per-item ``Clock.schedule_once`` calls from threads can be lost
or reordered (Kivy issue 5202); here every result goes into one ordered
queue and a ``Clock.create_trigger`` drains it on the next frame.
A job of a kind that is already running is not started again (the caller
shows the running one's result instead).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from kivy.clock import Clock

log = logging.getLogger(__name__)


class BackgroundJobs:
    """Named jobs on daemon threads; their ``on_done(result)`` / ``on_error(exc)`` on the UI thread."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._drain_trigger = Clock.create_trigger(self._drain, 0)
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False

    def running(self, kind: str) -> bool:
        with self._lock:
            return kind in self._running

    def run(self, kind: str, work: Callable[[], Any], on_done: Callable[[Any], object],
            on_error: Callable[[BaseException], object] | None = None) -> bool:
        """Start ``work()`` on a thread unless a ``kind`` job runs; False if it was skipped."""
        with self._lock:
            if kind in self._running or self._closed:
                return False
            self._running.add(kind)

        def thread_main() -> None:
            try:
                result = work()
            except BaseException as err:  # handed to the UI thread, never lost
                if on_error is None:
                    log.exception("background job %s failed", kind)
                self.post(lambda err=err: self._finish(kind, on_error, err))
            else:
                self.post(lambda: self._finish(kind, on_done, result))

        threading.Thread(target=thread_main, name=f"balie-{kind}", daemon=True).start()
        return True

    def post(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on the UI thread at the next frame (callable from any thread)."""
        if self._closed:
            return
        self._inbox.put(fn)
        self._drain_trigger()

    def drain(self) -> None:
        """Run what is queued now (the trigger does this every frame something arrives)."""
        self._drain()

    def close(self) -> None:
        """Stop delivering results (the app is stopping or the screen is gone)."""
        self._closed = True
        self._drain_trigger.cancel()

    def _finish(self, kind: str, callback, value) -> None:
        with self._lock:
            self._running.discard(kind)
        if callback is not None:
            callback(value)

    def _drain(self, *_args) -> None:
        while not self._closed:
            try:
                fn = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:  # one bad result must not stop the others
                log.exception("handling a background result failed")
