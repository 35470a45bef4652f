"""gunicorn settings shared by bin/serve and the Dockerfile.

Worker class src.server.AIProxyWorker (gunicorn's gevent worker answering its own errors as JSON,
timing out slow headers and shedding idle connections near the cap, see src/server.py): each worker
keeps hundreds of slow upstream calls (10-60 s LLM calls) in flight
on greenlets instead of one OS thread per request.  CPU-bound local inference is moved to real OS
threads by lib/concurrency.py so it never stalls the event loop.
Environment: HOST, PORT, WEB_CONCURRENCY (workers, default = CPU count, at most 4),
GUNICORN_WORKER_CONNECTIONS (default 1000), GUNICORN_KEEPALIVE (default 185 s: longer than the load
balancer's 180 s idle timeout; it bounds the wait for the first byte of a request on a new or
idle keep-alive connection), GUNICORN_HEADER_TIMEOUT (default 10 s: from a request's first byte, its
request line and headers must arrive within this, else 408 and close), GUNICORN_GRACEFUL_TIMEOUT
(default 30 s), GUNICORN_SHARE_BURSTS (default 1: workers share a burst of new connections through a
scoreboard, src/accept_share.py; 0 = gunicorn's own race to accept). Each worker freezes the objects
of the loaded app out of the garbage collector (``post_worker_init``).

Why keep-alive stays long: the ALB reuses idle connections for up to its idle timeout (180 s); a
target that closes first races the ALB's next request on that connection (502 to the client). Idle
connections therefore live until ``keepalive``, but near the connection cap a new connection evicts
the connection that has waited on its client the longest (idle, slow headers or a slow body; never one
waiting on its upstream; src/server.py), so slow sockets cannot lock health checks out
(bench/slowloris_bench.py).

Fail closed: with no AIPROXY_API_KEY, start-up is refused unless AIPROXY_ALLOW_UNAUTHENTICATED=1 and
every final bind address (HOST/PORT, ``--bind``, ``GUNICORN_CMD_ARGS`` all count) is loopback; the
worker checks its open sockets again. The soft open-files limit is raised to the hard limit (each
connection is a file descriptor).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sys
import tempfile

# Aggregate Prometheus metrics across workers (must be set before prometheus_client is imported).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="aiproxy-metrics-")
_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)  # worker_class and the hooks import src/ and lib/

# One file descriptor per connection (plus upstream sockets): lift the soft limit to the hard one.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _hard == resource.RLIM_INFINITY or _soft < _hard:
    _target = 1 << 20 if _hard == resource.RLIM_INFINITY else _hard
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (_target, _hard))

_host = os.environ.get("HOST", "127.0.0.1")
_port = os.environ.get("PORT", "8080")
bind = [f"[{_host}]:{_port}" if ":" in _host and not _host.startswith("[") else f"{_host}:{_port}"]
worker_class = "src.server.AIProxyWorker"
workers = int(os.environ.get("WEB_CONCURRENCY") or min(4, os.cpu_count() or 1))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
backlog = 2048
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "185"))
# Kill a worker only if it stops heart-beating for longer than any request may take.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "200"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
accesslog = None  # the app logs one structured line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
preload_app = False
control_socket_disable = True


def _bind_hosts(server) -> list[str]:  # type: ignore[no-untyped-def]
    """The hosts gunicorn will really bind (HOST/PORT, --bind and GUNICORN_CMD_ARGS all end here)."""
    hosts = []
    for address in server.cfg.address:
        if isinstance(address, tuple):
            hosts.append(str(address[0]))
        else:  # a unix socket path or an inherited fd: not provably loopback
            hosts.append(str(address))
    return hosts


def on_starting(server):  # type: ignore[no-untyped-def]
    """Fail closed before any worker starts: settings must be valid, and an open (keyless) service
    may only bind to loopback (the final bind addresses, wherever they were configured)."""
    from lib.settings import SettingsError, load_settings
    from src.server import header_timeout_from_env, is_loopback

    header_timeout_from_env()  # a bad value stops start-up here, naming it
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"aiproxy: {exc}\n")
        sys.exit(3)
    if not settings.api_keys:
        if not settings.aiproxy_allow_unauthenticated:
            sys.stderr.write(
                "aiproxy: AIPROXY_API_KEY is not set: refusing to start an open service "
                "(set AIPROXY_ALLOW_UNAUTHENTICATED=1 for loopback development).\n"
            )
            sys.exit(3)
        open_hosts = [h for h in _bind_hosts(server) if not is_loopback(h)]
        if open_hosts:
            sys.stderr.write(
                "aiproxy: refusing to run without AIPROXY_API_KEY on non-loopback address "
                f"{', '.join(open_hosts)} (bind {', '.join(server.cfg.bind)}).\n"
            )
            sys.exit(3)
    # Migrate once here, in a child process, so the workers never import Alembic (lib/premigrate.py);
    # if that fails (database down), each worker migrates and retries as before.
    from lib.premigrate import run_in_child

    run_in_child(_ROOT)


def when_ready(server):  # type: ignore[no-untyped-def]
    """Before the first fork: the scoreboard the workers share a burst through (src/accept_share.py)."""
    if os.environ.get("GUNICORN_SHARE_BURSTS", "1").strip() == "0":
        return
    from src.accept_share import Scoreboard

    server.aiproxy_board = Scoreboard()


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """In the new worker: hand it the scoreboard (it claims its slot when it starts accepting)."""
    board = getattr(server, "aiproxy_board", None)
    if board is not None and hasattr(worker, "board"):
        worker.board = board


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """In the worker, once it has loaded the app: put everything loading made (modules, the app, the
    SDK clients: objects that live as long as the worker) out of the garbage collector's reach. Left
    in, every full collection walked them all: an 80-105 ms pause about every 13 s of steady traffic
    (``added_max_ms`` of bench/proxy_bench.py's overhead section; 12-13 ms with them frozen)."""
    import gc

    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    worker.log.info("worker %s: %d objects of the loaded app frozen out of the GC", worker.pid, frozen)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    if _METRICS_DIR.startswith(tempfile.gettempdir()) and "aiproxy-metrics-" in _METRICS_DIR:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """In the worker, after it stopped serving (SIGTERM, max requests): write every usage-ledger row
    still queued, so a graceful stop loses none (src/accounts.py, lib/ledger/writer.py)."""
    app = getattr(worker, "wsgi", None)
    accounts = getattr(app, "extensions", {}).get("aiproxy.accounts")
    if accounts is not None:
        accounts.close()
    records = getattr(app, "extensions", {}).get("aiproxy.assessment_records")
    if records is not None:  # assessment records queued for the database (src/routes/feedback.py)
        records.close()
