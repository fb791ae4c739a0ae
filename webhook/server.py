"""Serving: uvicorn over TLS, certificate reload, worker processes and graceful shutdown.

On SIGTERM a worker marks itself not ready, stops accepting connections, lets requests
in flight finish (up to the drain timeout) and exits 0. With `--workers N` a parent
process owns the listening socket, starts N workers on it, forwards signals to them and
replaces a worker that dies unexpectedly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing
import os
import signal
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from webhook import logs, read_deadline
from webhook.app import DEFAULT_MAX_BODY_BYTES, ServerState, create_app
from webhook.certs import ensure_serving_pair, service_hosts
from webhook.config import load_settings
from webhook.errors import BulwarkError, CertificateError
from webhook.read_deadline import DEFAULT_READ_SECONDS, ReadDeadlineProtocol, with_read_deadline
from webhook.tls import CertificateReloader, server_context
from webhook.verdict import Object, RoleSource

log = logs.get_logger("bulwark.server")

# How every worker runs uvicorn (and bench/floor.py, so the floor is measured on the same
# server). uvloop and httptools come with uvicorn[standard]; naming them makes a missing
# one fail at start rather than fall back to the pure-Python loop and parser unnoticed.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "webhook.read_deadline:event_loop",  # uvloop, with a TLS handshake deadline
    "http": ReadDeadlineProtocol,  # httptools, with a deadline to read each request
    "log_config": None,
    "access_log": False,
    "server_header": False,
    # The API server calls the webhook directly; no proxy's X-Forwarded-* is to be believed.
    "proxy_headers": False,
    "timeout_keep_alive": 30,  # the API server reuses connections; don't make it redial
    "ws": "none",  # no WebSocket upgrades: an Upgrade request is an ordinary request
}


@dataclass(frozen=True)
class ServeOptions:
    host: str = "0.0.0.0"  # noqa: S104 - a webhook in a pod must listen on the pod's address
    port: int = 8443
    cert_dir: str = "certs"
    config_path: str | None = None
    workers: int = 1
    log_level: str = "info"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    drain_seconds: float = 20.0
    cert_poll_seconds: float = 5.0
    request_read_seconds: float = DEFAULT_READ_SECONDS
    kubeconfig: str | None = None
    service: str = "bulwark"
    namespace: str = "bulwark-system"


class UnreadableRoles:
    """The role source when no cluster is configured: every lookup says it could not read."""

    def rules(self, kind: str, namespace: str, name: str) -> list[Object] | None:
        return None

    def complete(self) -> bool:
        return False


# After SIGTERM a worker first keeps serving for up to this long, not ready and answering
# each admission with `Connection: close`, so that clients holding a keep-alive connection
# (the API server does) send their next request elsewhere instead of having it dropped when
# the connection is closed. It stops sooner once no connection is left open.
LAME_DUCK_SECONDS = 2.0
# Then the listener closes, and uvicorn is told to stop this much later: a connection
# accepted last may still be in its TLS handshake, unknown to uvicorn until it ends, and
# would be lost with the event loop. Once uvicorn knows a connection, one whose first
# request has not arrived yet gets `read_deadline.FIRST_REQUEST_SECONDS` to deliver it.
# (Closed in the same instant as the listener, a request sent just before was dropped
# unanswered: a keep-alive client test lost one in about eight SIGTERMs.)
SETTLE_SECONDS = 1.0


class _DrainingServer(uvicorn.Server):
    """A uvicorn server that fails readiness the moment it is asked to stop, and drains.

    Its signal handlers only set flags. A handler runs between two bytecodes of whatever
    the main thread was doing, which may be the middle of writing a log line with the log
    writer's lock held: a handler that logged there would wait on that lock forever, and
    the worker would never drain. The drain is logged from the event loop instead.
    """

    def __init__(
        self, config: uvicorn.Config, state: ServerState, supervisor: int | None = None
    ) -> None:
        super().__init__(config)
        self.bulwark_state = state
        self.stop_signal: int | None = None
        self.stop_requested_at = 0.0
        # The pid of the `--workers` process that started this one. Killed with SIGKILL,
        # it cannot stop its workers, which would serve on, holding the port, with nobody
        # to restart them; a worker drains when it finds itself another parent's child.
        self.supervisor = supervisor

    def request_stop(self, sig: int) -> None:
        """Mark the worker draining; the event loop does the rest. Safe in a signal handler.

        A second SIGINT (Ctrl-C twice) stops at once, as uvicorn's own handler does; a
        SIGTERM after a SIGINT (a terminal's Ctrl-C and then the supervisor's) does not.
        """
        if self.stop_signal is not None:
            if sig == signal.SIGINT and self.stop_signal == signal.SIGINT:
                self.force_exit = self.should_exit = True
            return
        self.bulwark_state.draining = True
        self.stop_signal = sig
        self.stop_requested_at = time.monotonic()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.request_stop(sig)

    async def on_tick(self, counter: int) -> bool:
        orphaned = self.supervisor is not None and os.getppid() != self.supervisor
        if orphaned and self.stop_signal is None:
            log.warning("supervisor_gone", supervisor=self.supervisor)
            self.request_stop(signal.SIGTERM)
        if self.stop_signal is not None and not self.should_exit:
            lame = time.monotonic() - self.stop_requested_at < LAME_DUCK_SECONDS
            if not lame or not self.server_state.connections:
                self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.stop_signal is not None:
            log.info("draining", signal=signal.Signals(self.stop_signal).name)
            for server in self.servers:
                server.close()  # no new connections; uvicorn closes it again, harmlessly
            for sock in sockets or []:
                sock.close()
            await asyncio.sleep(SETTLE_SECONDS)
        read_deadline.server_stopping()
        await super().shutdown(sockets)


def _role_source(options: ServeOptions) -> tuple[RoleSource, Any]:
    """The role cache when a cluster is reachable by configuration, else a blind source."""
    if options.kubeconfig is None and "KUBERNETES_SERVICE_HOST" not in os.environ:
        log.info("role_cache_disabled", reason="no --kubeconfig and not running in a cluster")
        return UnreadableRoles(), None
    from webhook.kube import role_cache_from_kubeconfig  # the kubernetes client loads slowly

    cache = role_cache_from_kubeconfig(options.kubeconfig)
    return cache, cache


def build_worker(options: ServeOptions) -> tuple[Starlette, uvicorn.Config, ServerState]:
    """The application and uvicorn configuration one worker process serves."""
    settings = load_settings(options.config_path)
    context = server_context()
    reloader = CertificateReloader(context, options.cert_dir, interval=options.cert_poll_seconds)
    reloader.load()
    roles, cache = _role_source(options)
    state = ServerState(
        settings=settings,
        roles=roles,
        max_body_bytes=options.max_body_bytes,
        certificate_ok=reloader.healthy,
        roles_synced=(lambda: bool(cache.synced)) if cache is not None else (lambda: True),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(reloader.watch(lambda: state.draining))
        if cache is not None:
            cache.start()
        try:
            yield
        finally:
            watcher.cancel()
            if cache is not None:
                cache.stop()

    app = create_app(state)
    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ssl_certfile=str(reloader.cert_path),
        ssl_keyfile=str(reloader.key_path),
        timeout_graceful_shutdown=math.ceil(options.drain_seconds),
        lifespan="on",
        **{**UVICORN_OPTIONS, "http": with_read_deadline(options.request_read_seconds)},
    )
    try:
        config.load()  # it reads the pair again, for a context of its own replaced below
    except (OSError, ssl.SSLError) as error:  # the files changed since `reloader.load()`
        raise CertificateError(f"cannot load the pair in {options.cert_dir}: {error}") from None
    config.ssl = context  # the reloader's context, so new pairs reach new handshakes
    return app, config, state


def _prepare(options: ServeOptions) -> None:
    hosts = service_hosts(options.service, options.namespace)
    if ensure_serving_pair(options.cert_dir, hosts):
        log.warning(
            "self_signed_certificate_created",
            cert_dir=str(Path(options.cert_dir).resolve()),
            hosts=hosts,
            note="for local use; give the API server ca.crt as the caBundle",
        )


def _bind(options: ServeOptions) -> socket.socket:
    """The listening socket, bound here so that a busy port is one clear error."""
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((options.host, options.port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise BulwarkError(
            f"cannot listen on {options.host}:{options.port}: {error.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock


def _worker_server(options: ServeOptions, supervisor: int | None = None) -> _DrainingServer:
    """A worker's server, already stopping cleanly on SIGTERM or SIGINT.

    The stop handler is installed before uvicorn's own, so a signal that lands while the
    worker is still starting is not lost: it marks the server stopping, which its first
    tick acts on. A signal that came earlier still, while the settings and certificates
    were read, was held by `hold_stop_signals` and is applied here.
    """
    _, config, state = build_worker(options)
    server = _DrainingServer(config, state, supervisor)
    for signum in _install_stop_handlers(server.request_stop):
        server.request_stop(signum)  # one that came while the worker was being built
    return server


# CPython collects its youngest generation once allocations outrun deallocations by 700.
# A review allocates a few hundred objects (its parsed body, models, verdict) and frees
# them all when it is answered, so at 700 a collection often comes in the middle of a review
# and walks that review's live objects; at 20,000 it finds almost nothing alive. Measured:
# 7% less CPU per one-container review (bench/README.md). Cyclic garbage, rare here
# (an exception's traceback), waits a little longer for its collection.
YOUNG_GENERATION_THRESHOLD = 20_000


def settle_heap() -> None:
    """Set the collector up for serving, once start-up is over.

    What exists now (modules, settings, the app) lives as long as the process. Frozen, it
    is no longer re-scanned by the full collections that the objects of large reviews set
    off (a tenth of the CPU time of a 10-container pod's review).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def _run_worker(options: ServeOptions, sock: socket.socket, supervisor: int | None = None) -> None:
    hold_stop_signals()  # a worker process starts afresh, with the default dispositions
    logs.configure_logging(options.log_level)
    server = _worker_server(options, supervisor)
    settle_heap()
    port = sock.getsockname()[1]  # with --port 0, the one the system chose
    log.info("listening", host=options.host, port=port, pid=os.getpid())
    server.run(sockets=[sock])


_held_signals: list[int] = []


def hold_stop_signals() -> None:
    """Until a real handler is installed, remember SIGTERM and SIGINT instead of dying.

    A SIGTERM during start-up (a rollout that changes its mind) then still ends in a
    drain and status 0. Called first thing by `serve`; a signal that lands while the
    interpreter itself is still importing ends the process as signals do (status 143).
    """

    def hold(signum: int, frame: FrameType | None) -> None:
        _held_signals.append(signum)

    signal.signal(signal.SIGTERM, hold)
    signal.signal(signal.SIGINT, hold)


def _install_stop_handlers(stop: Callable[[int], None]) -> list[int]:
    """Send SIGTERM and SIGINT to `stop(signum)` from now on; the signals held until now."""
    signal.signal(signal.SIGTERM, lambda signum, frame: stop(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop(signum))
    held = list(_held_signals)
    _held_signals.clear()
    return held


def serve(options: ServeOptions) -> int:
    """Run the HTTPS admission server until SIGTERM; 0 after a clean drain."""
    hold_stop_signals()
    logs.configure_logging(options.log_level)
    _prepare(options)
    # Fail here, once, rather than in every worker, when the configuration is unusable.
    load_settings(options.config_path)
    sock = _bind(options)
    if options.workers <= 1:
        _run_worker(options, sock)
        return 0
    return _supervise(options, sock)


def _supervise(options: ServeOptions, sock: socket.socket) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int) -> None:
        nonlocal stopping
        stopping = True  # the loop below does the rest, with the whole list of workers

    def start() -> Any:
        process = context.Process(
            target=_run_worker, args=(options, sock, os.getpid()), daemon=False
        )
        process.start()
        return process

    if _install_stop_handlers(stop):
        return 0
    workers: list[Any] = []
    for _ in range(options.workers):
        if not stopping:
            workers.append(start())
    log.info("supervising", workers=[p.pid for p in workers], port=sock.getsockname()[1])
    while not stopping:
        for index, process in enumerate(workers):
            if not process.is_alive() and not stopping:
                log.error("worker_died", pid=process.pid, exitcode=process.exitcode)
                workers[index] = start()
        time.sleep(0.1)
    # New connections are refused once the workers close their copies of the socket too.
    sock.close()
    for process in workers:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    # One deadline for all of them: they drain side by side, not one after another.
    deadline = time.monotonic() + LAME_DUCK_SECONDS + SETTLE_SECONDS + options.drain_seconds + 5
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in workers:
        if process.is_alive():
            log.error("worker_kept_running", pid=process.pid)
            process.kill()
            process.join()
    failed = [p.exitcode for p in workers if p.exitcode not in (0, -signal.SIGTERM)]
    return 1 if failed else 0
