"""The scoreboard the gunicorn workers share a burst through (src/accept_share.py): counts written in
one process are read in another (the mapping is inherited through fork, as the master's is), a gone
worker's slot stops counting, and the accept decision pauses only while this worker is ahead and
never for longer than MAX_WAIT_S in a row."""

from __future__ import annotations

import os
import time

import pytest

from src import accept_share
from src.accept_share import MARGIN, FairAccept, Scoreboard


def test_counts_written_after_a_fork_are_read_by_the_other_process() -> None:
    board = Scoreboard(slots=8)
    pid = os.fork()
    if pid == 0:  # the "worker": claims its slot and publishes, as post_fork and _admit do
        board.claim(age=3)
        board.publish(41)
        os._exit(0)
    os.waitpid(pid, 0)
    board.claim(age=4)
    assert board.least_peer() == 41
    board.publish(7)
    other = Scoreboard.__new__(Scoreboard)  # a second view of the same mapping, as another worker
    other.__dict__.update(board.__dict__)
    other.slot = 3
    assert other.least_peer() == 7


def _two_workers(peer_connections: int) -> tuple[Scoreboard, Scoreboard]:
    """This worker's view of a 4-slot board (slot 2) and a peer's (slot 1), over one mapping."""
    board = Scoreboard(slots=4)
    peer = Scoreboard.__new__(Scoreboard)
    peer.__dict__.update(board.__dict__)
    peer.claim(age=1, pid=123)
    peer.publish(peer_connections)
    board.claim(age=2)
    return board, peer


def test_released_and_stale_slots_do_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    board, peer = _two_workers(2)
    assert board.least_peer() == 2
    peer.release()  # a worker that exits gives its slot up
    assert board.least_peer() is None
    peer.claim(age=1, pid=123)
    peer.publish(2)
    later = time.monotonic() + accept_share.STALE_S + 1  # a kill -9'd worker stops refreshing
    monkeypatch.setattr(accept_share.time, "monotonic", lambda: later)
    assert board.least_peer() is None


def test_a_worker_pauses_only_while_ahead_and_never_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    board, peer = _two_workers(10)
    mine = {"n": 10 + MARGIN}
    fair = FairAccept(board, lambda: mine["n"])
    assert fair.should_pause() is False  # within the margin
    mine["n"] = 11 + MARGIN
    clock = {"t": 1000.0}
    monkeypatch.setattr(accept_share.time, "monotonic", lambda: clock["t"])
    peer.publish(10)  # refreshed at the patched clock
    assert fair.should_pause() is True
    clock["t"] += accept_share.MAX_WAIT_S / 2
    assert fair.should_pause() is True
    clock["t"] += accept_share.MAX_WAIT_S  # the peer has not taken them: accept one anyway
    assert fair.should_pause() is False
    assert fair.should_pause() is True  # a new run of pauses starts
    assert fair.pauses == 3
    peer.release()
    assert fair.should_pause() is False  # no live peer: never pause
