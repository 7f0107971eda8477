"""The production HTTP server (granian) that ``overlord serve`` runs in the foreground."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from overlord.config import Settings
from overlord.startup_probe import startup_step

# prometheus-client's multiprocess directory (overlord.metrics reads it).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Exit status of a serve stopped at once by a second Ctrl-C (128 + SIGINT, as a
# shell reports a process killed by it).
ABORT_EXIT_CODE = 128 + signal.SIGINT


# How long a stopping serve lets its HTTP workers finish in-flight requests.
HTTP_DRAIN_SECONDS = 30


def listen_address(host: str, port: int) -> str:
    """host:port as a listener's address reads (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(host: str, port: int) -> str | None:
    """Why serve cannot listen on host:port, or None when it can.

    granian binds with SO_REUSEPORT, so a second server on a port already in use
    would share it with the first and the two would answer requests in turn.
    Binding here without SO_REUSEPORT fails on any port with a listener, whoever
    holds it. SO_REUSEADDR, as every server sets it, still allows a port whose
    last connections are in TIME_WAIT.
    """
    try:
        addresses = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as error:
        return f"cannot listen on {listen_address(host, port)}: {error}"
    family, kind, proto, _, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = (
                "address already in use"
                if error.errno == errno.EADDRINUSE
                else error.strerror or str(error)
            )
            return f"cannot listen on {listen_address(host, port)}: {reason}"
    return None


def prepare_metrics_dir() -> str | None:
    """Give the processes serve starts one empty ``PROMETHEUS_MULTIPROC_DIR``:
    a new temporary directory (returned, for remove_metrics_dir), or the one the
    environment names, emptied of a previous run's files (stale values otherwise).
    prometheus-client picks its mode when first imported: this runs before."""
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.unlink(os.path.join(given, name))
        return None
    created = tempfile.mkdtemp(prefix="overlord-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created


def remove_metrics_dir(created: str | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


def run_http_server(
    settings: Settings,
    on_stop: Callable[[], None] = lambda: None,
    on_abort: Callable[[], None] = lambda: None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain and return.

    ``on_stop`` runs once, in the signal handler, when the first stop signal
    arrives; a SIGINT after it (a second Ctrl-C) calls ``on_abort``, SIGKILLs the
    HTTP workers and exits with ABORT_EXIT_CODE at once.
    """
    from granian.constants import Interfaces
    from granian.server import MPServer

    from overlord.wsgi import prepare_worker_forks

    # granian's process-per-worker server (what `Granian` is on a GIL build): the
    # fork hooks of overlord.wsgi and the stop below rely on worker processes.
    class Server(MPServer):
        def signal_handler_interrupt(self, signum: Any = None, *args: Any) -> None:
            # granian's main process calls this on SIGINT and SIGTERM; a second
            # one would only set its flag again while it waits for the workers.
            if not self.interrupt_signal:
                super().signal_handler_interrupt(signum, *args)  # type: ignore[no-untyped-call]
                on_stop()
            elif signum == signal.SIGINT:
                on_abort()
                for worker in list(self.wrks):
                    worker.kill()  # type: ignore[no-untyped-call]
                os.write(2, b"overlord serve: interrupted again, stopping at once\n")
                os._exit(ABORT_EXIT_CODE)

        def _spawn_workers(self, spawn_target: Any, target_loader: Any) -> None:
            startup_step("http-spawn")
            super()._spawn_workers(spawn_target, target_loader)  # type: ignore[no-untyped-call]
            startup_step("http-spawned")

    startup_step("http-server")
    prepare_worker_forks()
    server = Server(
        "overlord.wsgi:create",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=settings.http_workers,
        # Waiting _tasks calls hold a thread each (at most opensearch_max_waits per
        # process): they get threads of their own beside Druid's polls.
        blocking_threads=settings.http_threads + settings.opensearch_max_waits,
        log_access=False,
        # A stop never waits unbounded on an HTTP worker (granian's default joins it
        # forever): in-flight requests get this long to finish, then it is killed.
        workers_kill_timeout=HTTP_DRAIN_SECONDS,
    )
    server.serve()
