"""Reach each gunicorn worker of a ``Service`` on purpose: open keep-alive connections until every
worker has accepted one, telling them apart by which worker process holds the server side of each
socket (Linux ``/proc``).  Lets a test send request N to one worker and N+1 to the other."""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

from tests.support.server import Service


def worker_pids(svc: Service) -> list[int]:
    assert svc.proc is not None
    children = Path(f"/proc/{svc.proc.pid}/task/{svc.proc.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> int | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return int(fields[9])
    return None


def connection_per_worker(svc: Service, *, attempts: int = 400) -> dict[int, http.client.HTTPConnection]:
    """One open keep-alive connection to each worker (the health route, which no limit counts, makes
    the worker accept it)."""
    pids = worker_pids(svc)
    found: dict[int, http.client.HTTPConnection] = {}
    for _ in range(attempts):
        conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
        conn.request("GET", "/")
        conn.getresponse().read()
        client_port = conn.sock.getsockname()[1]
        inode = _server_side_inode(svc.port, client_port)
        owner = next((pid for pid in pids if inode is not None and inode in _socket_inodes(pid)), None)
        if owner is not None and owner not in found:
            found[owner] = conn
            if len(found) == len(pids):
                return found
        else:
            conn.close()
        time.sleep(0.01)
    for conn in found.values():
        conn.close()
    raise AssertionError(f"could not reach every worker of {pids} in {attempts} connections")
