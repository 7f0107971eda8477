"""What both benches share: tools of the virtualenv, throw-away databases, server
processes on a free 127.0.0.1 port, measurements with a warm-up, and tables."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from bench.load import HOST, LoadGenerator, Request, Result, merge

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"
)


def tool(name: str) -> str:
    """A console script of the virtualenv running this bench (``.venv/bin``)."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        candidate = folder / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: {name} is not installed (run `make install`)")
    return found


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# -- databases ----------------------------------------------------------------


@contextlib.contextmanager
def temp_database(backend: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database of ``backend``; dropped (or deleted) afterwards."""
    if backend == "sqlite":
        path = folder / f"overlord-bench-{secrets.token_hex(3)}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = {"postgresql": PG_ADMIN_URL, "mariadb": MARIADB_ADMIN_URL}[backend]
    name = f"overlord_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            extra = " CHARACTER SET utf8mb4" if backend == "mariadb" else ""
            connection.execute(text(f"CREATE DATABASE {name}{extra}"))
        url = make_url(admin_url).set(database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                force = " WITH (FORCE)" if backend == "postgresql" else ""
                connection.execute(text(f"DROP DATABASE {name}{force}"))
    finally:
        admin.dispose()


def backend_available(backend: str) -> str | None:
    """None when usable, else why not (the bench then skips that backend)."""
    if backend == "sqlite":
        return None
    from sqlalchemy import create_engine, text

    admin_url = {"postgresql": PG_ADMIN_URL, "mariadb": MARIADB_ADMIN_URL}[backend]
    engine = create_engine(admin_url, pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any driver error means "not reachable here"
        return f"{backend} unreachable ({type(error).__name__}); `make services`?"
    finally:
        engine.dispose()
    return None


def migrate(url: str) -> None:
    done = subprocess.run(
        [tool("overlord"), "db", "upgrade", "--database-url", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"overlord db upgrade failed: {done.stderr[-2000:]}")


# -- servers ------------------------------------------------------------------


class Server:
    """One server command in its own process group, on ``port``; ready once
    ``GET /status/health`` answers 200. Stopped with SIGTERM to that group."""

    def __init__(
        self, label: str, argv: Sequence[str], port: int, env: dict[str, str]
    ) -> None:
        self.label = label
        self.argv = list(argv)
        self.port = port
        self.env = env
        self.log: TextIO | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(60.0)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with {self.process.returncode}: "
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_call(self.port, "GET", "/status/health", timeout=2)
                if status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.label} not ready after {timeout}s: {self.log_tail()}"
        )

    def log_tail(self, size: int = 2000) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read()[-size:]

    def __exit__(self, *_: object) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Children that outlived their parent (same group) get the group's KILL.
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self.log is not None:
            self.log.close()
            self.log = None


def server_env(database_url: str, **settings: Any) -> dict[str, str]:
    env = dict(os.environ)
    env["OVERLORD_DATABASE_URL"] = database_url
    env["OVERLORD_LOG_LEVEL"] = "WARNING"
    for key, value in settings.items():
        env[f"OVERLORD_{key.upper()}"] = str(value)
    return env


def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def submit_noop(port: int) -> str:
    status, body = http_call(port, "POST", "/druid/indexer/v1/task", b'{"type":"noop"}')
    if status != 200:
        raise RuntimeError(f"submit answered {status}: {body[:300]!r}")
    task_id: str = json.loads(body)["task"]
    return task_id


def measure_round_robin(
    load: LoadGenerator,
    port: int,
    plan: Sequence[tuple[str, Request, int]],
    *,
    seconds: float,
    warmup: float,
    slice_seconds: float = 1.0,
) -> dict[str, Result]:
    """Measure every (name, request, connections) of ``plan`` for ``seconds`` each,
    in 1 s slices taken in turn (health, status, …, health, status, …), so that
    load from anything else on the machine falls on baseline and endpoints alike.
    A warm-up of ``warmup`` seconds per entry comes first and is discarded."""
    if warmup > 0:
        for _, request, connections in plan:
            load.run(port, request, connections=connections, seconds=warmup)
    parts: dict[str, list[Result]] = {name: [] for name, _, _ in plan}
    for _ in range(max(1, round(seconds / slice_seconds))):
        for name, request, connections in plan:
            parts[name].append(
                load.run(port, request, connections=connections, seconds=slice_seconds)
            )
    return {name: merge(results) for name, results in parts.items()}


# -- output -------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.rjust(width) if index and _numeric(cell) else cell.ljust(width)
                for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if value < 1000 else f"{value:.0f}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("x", "").replace("-", "", 1).isdigit()


def rate(rps: float) -> str:
    return f"{rps:.0f}" if rps >= 100 else f"{rps:.1f}"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}" if baseline > 0 else "n/a"


def save_results(name: str, document: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql, mariadb (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="per measurement (%(default)s)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="discarded run before each (%(default)s)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="concurrent keep-alive connections (%(default)s)",
    )
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (default: wrk if installable, else python)",
    )


def usable_backends(names: str) -> list[str]:
    chosen = []
    for backend in [n.strip() for n in names.split(",") if n.strip()]:
        if backend not in ("sqlite", "postgresql", "mariadb"):
            raise SystemExit(f"bench: unknown backend {backend!r}")
        why = backend_available(backend)
        if why is None:
            chosen.append(backend)
        else:
            print(f"bench: skipping {backend}: {why}", flush=True)
    return chosen


def machine_note() -> str:
    """Cores and load before a run: a busy machine skews even ratios."""
    load1, _, _ = os.getloadavg()
    cores = os.cpu_count() or 1
    note = f"{cores} cores, load average {load1:.2f}"
    if load1 > 0.5 * cores:
        note += " (busy: other processes compete with the bench; ratios are noisier)"
    return note
