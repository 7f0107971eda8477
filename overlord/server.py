"""The production HTTP server (granian) that ``overlord serve`` runs in the foreground."""

from __future__ import annotations

from overlord.config import Settings


def run_http_server(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    from overlord.wsgi import prepare_worker_forks

    prepare_worker_forks()
    server = Granian(
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
    )
    server.serve()
