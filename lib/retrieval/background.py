"""Cold start: an HNSW index built on a background OS thread while exact search answers.

A worker's first query on a large collection used to wait for the whole HNSW build (minutes at
100k chunks on this machine).  Instead the worker loads the vectors into an ``ExactIndex`` (a copy
taking milliseconds), answers from it exactly, and hands a snapshot of it to a ``BackgroundBuild``.
The build runs on a raw OS thread, not a ``threading.Thread``: under gevent ``threading`` is patched
and a "thread" is a greenlet on the hub, where seconds of native usearch work would stall every
request of the worker.  The build thread shares nothing with requests but two attributes it sets
when it ends (``done``, ``error``); the switch to the built index happens on the querying side
(``Retrieval.live``), which replays the writes that landed meanwhile, so no lock crosses threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lib.concurrency import _niced, gevent_patched
from lib.retrieval.index import Keys, Matrix, VectorIndex

#: Build threads run at this CPU niceness so the hub thread wins the CPU when a request wakes it.
BUILD_NICE = 5


def start_os_thread(fn: Callable[..., Any], *args: Any) -> None:
    """``fn(*args)`` on a new real OS thread, also when gevent has patched ``threading``."""
    if gevent_patched():
        from gevent import monkey

        start = monkey.get_original("_thread", "start_new_thread")
    else:
        import _thread

        start = _thread.start_new_thread
    start(fn, args)


class BackgroundBuild:
    """``index.add(keys, matrix)`` running on its own OS thread; ``keys`` is the snapshot it holds."""

    def __init__(self, index: VectorIndex, keys: Keys, matrix: Matrix) -> None:
        self.index = index
        self.keys = keys
        self.done = False
        self.error: BaseException | None = None
        start_os_thread(self._run, matrix)

    def _run(self, matrix: Matrix) -> None:
        try:
            _niced(BUILD_NICE, self.index.add, (self.keys, matrix), {})
        except Exception as exc:  # noqa: BLE001 - handed to the querying side, which keeps exact search
            self.error = exc
        finally:
            self.done = True

    def wait(self, timeout: float | None = None, poll: float = 0.01) -> bool:
        """Wait (cooperatively under gevent: ``time.sleep`` is patched) until the build ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True
