"""Workers share a burst of new connections instead of racing for it.

Every gevent worker accepts from the same listening socket, one connection per wake-up. In a burst the
worker that wins the first accepts keeps winning: in the bench's 1000-call burst one worker did two
thirds of the work (2.28 s of CPU against 1.02 s), so the burst lasted as long as the busier worker
took, and in the 5,000-stream burst one worker neared its connection cap while the other had room.

The fix is a small scoreboard in shared memory, made by the gunicorn master before it forks
(``src/gunicorn_conf.py``: ``when_ready`` creates it, ``post_fork`` hands it to the worker). Each
worker claims a slot when it starts accepting, writes its own open-connection count there, and gives
the slot up when it stops accepting (shutdown, reload); before accepting, a worker that is more
than ``MARGIN`` connections ahead of its least busy live peer pauses accepting for ``PAUSE_S``, so
that peer takes the waiting connections. A pause never lasts longer than ``MAX_WAIT_S`` in a row (a
peer that stopped accepting, or a stale slot, can cost a connection at most that long), and a slot
that has not been refreshed for ``STALE_S`` (a dead worker) is ignored. Without a scoreboard (one
worker, or gunicorn started without this config) the stock accept loop runs unchanged.
"""

from __future__ import annotations

import mmap
import os
import time
from typing import Any

from gevent.server import StreamServer

#: Worker slots (a slot is ``age % SLOTS``: gunicorn numbers each worker it spawns).
SLOTS = 64
#: Open connections a worker may be ahead of its least busy peer before it lets that peer accept.
MARGIN = 8
#: How long one pause lasts, and the longest run of pauses before accepting anyway.
PAUSE_S = 0.002
MAX_WAIT_S = 0.05
#: A slot not refreshed for this long belongs to a worker that is gone.
STALE_S = 3.0

_PID, _CONNS, _STAMP = 0, 1, 2
_FIELDS = 3


def _now_ms() -> int:
    return int(time.monotonic() * 1000)  # CLOCK_MONOTONIC: one clock for every process of the host


class Scoreboard:
    """Open connections per worker, in an anonymous shared mapping inherited through ``fork``."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * _FIELDS * 8)
        self._cells = memoryview(self._map).cast("q")
        self.slot = -1  # this process's slot, once claimed

    def claim(self, age: int, pid: int | None = None) -> None:
        """Take the slot for the worker numbered ``age`` (called in the worker after the fork)."""
        self.slot = age % self.slots
        base = self.slot * _FIELDS
        self._cells[base + _CONNS] = 0
        self._cells[base + _STAMP] = _now_ms()
        self._cells[base + _PID] = pid if pid is not None else os.getpid()

    def publish(self, connections: int) -> None:
        if self.slot < 0:
            return
        base = self.slot * _FIELDS
        self._cells[base + _CONNS] = connections
        self._cells[base + _STAMP] = _now_ms()

    def release(self) -> None:
        """Give the slot up (the worker is exiting)."""
        if self.slot >= 0:
            self._cells[self.slot * _FIELDS + _PID] = 0

    def least_peer(self) -> int | None:
        """The fewest open connections of a live peer, or None when there is none."""
        cells = self._cells
        oldest = _now_ms() - int(STALE_S * 1000)
        least: int | None = None
        for slot in range(self.slots):
            base = slot * _FIELDS
            if slot == self.slot or cells[base + _PID] == 0 or cells[base + _STAMP] < oldest:
                continue
            count = cells[base + _CONNS]
            if least is None or count < least:
                least = count
        return least


class FairAccept:
    """Decides, before each accept, whether this worker should leave the connection to a peer."""

    def __init__(self, board: Scoreboard, connections: Any) -> None:
        self.board = board
        self._connections = connections  # callable: this worker's open connections now
        self._waiting_since: float | None = None
        self.pauses = 0

    def should_pause(self) -> bool:
        least = self.board.least_peer()
        if least is None or self._connections() <= least + MARGIN:
            self._waiting_since = None
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since >= MAX_WAIT_S:
            self._waiting_since = None  # the peer is not taking them: accept this one
            return False
        self.pauses += 1
        return True


class FairStreamServer(StreamServer):
    """gevent's ``StreamServer`` that consults ``fair`` before each accept (see the module doc)."""

    fair: FairAccept | None = None

    def _do_read(self) -> None:
        fair = self.fair
        if fair is not None and fair.should_pause():
            self.stop_accepting()
            self._timer = self.loop.timer(PAUSE_S)
            self._timer.start(self._start_accepting_if_started)
            return
        super()._do_read()
