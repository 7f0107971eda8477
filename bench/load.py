"""Load generators: ``wrk`` (C, epoll, keep-alive) when installed, else a compact
multi-process Python generator (keep-alive ``http.client`` connections).

Both run closed-loop: every connection sends its next request as soon as the
previous answer is read, for a fixed time, to 127.0.0.1 only. Both report the same
``Result``: completed requests, errors (non-2xx/3xx answers and socket errors),
requests per second and latency percentiles.

The Python generator's own ceiling is far below wrk's (README.md: about 55 % of
what wrk reaches on granian's ``/status/health`` on 2 cores); it is a fallback so
that ``make bench`` runs everywhere, and its ratios stay meaningful only while the
server, not the client, is the bottleneck (every database endpoint; not health).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

HOST = "127.0.0.1"  # the only address any bench sends traffic to


@dataclass(frozen=True)
class Request:
    """What every connection sends, again and again."""

    method: str = "GET"
    path: str = "/status/health"
    body: bytes | None = None
    content_type: str | None = None
    # An Authorization header value (bench.auth measures auth on ÷ off).
    authorization: str | None = None


HEALTH = Request()
NOOP_SUBMIT = Request(
    "POST", "/druid/indexer/v1/task", b'{"type":"noop"}', "application/json"
)


@dataclass(frozen=True)
class Result:
    """One run, or several merged. ``quantiles`` is the latency distribution as
    (milliseconds, weight) points: every sample for the Python generator, a
    200-quantile sketch per run for wrk (p50/p99 then within ±0.25 percentile
    points)."""

    requests: int
    seconds: float
    errors: int
    quantiles: tuple[tuple[float, float], ...]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        points = sorted(self.quantiles)
        total = sum(weight for _, weight in points)
        if total <= 0:
            return 0.0
        seen = 0.0
        for value, weight in points:
            seen += weight
            if seen >= fraction * total:
                return value
        return points[-1][0]

    @property
    def p50_ms(self) -> float:
        return self.percentile(0.50)

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99)


def merge(parts: list[Result]) -> Result:
    """Slices of one endpoint measured at different times, as one result."""
    return Result(
        requests=sum(p.requests for p in parts),
        seconds=sum(p.seconds for p in parts),
        errors=sum(p.errors for p in parts),
        quantiles=tuple(q for p in parts for q in p.quantiles),
    )


class LoadGenerator(Protocol):
    name: str

    def run(
        self, port: int, request: Request, *, connections: int, seconds: float
    ) -> Result: ...


# -- wrk ----------------------------------------------------------------------

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 1, 200 do q[i] = string.format("%d", latency:percentile((i - 0.5) / 2)) end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"socket_errors":%d,' ..
    '"status_errors":%d,"quantiles_us":[%s]}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, table.concat(q, ",")))
end
"""


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Wrk:
    """wrk with one thread (one core is plenty for it at these rates) and a Lua
    ``done`` hook that prints the summary as JSON."""

    name = "wrk"

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def run(
        self, port: int, request: Request, *, connections: int, seconds: float
    ) -> Result:
        script = [_WRK_DONE]
        if request.method != "GET":
            script.append(f"wrk.method = {_lua_string(request.method)}")
        if request.body is not None:
            script.append(f"wrk.body = {_lua_string(request.body.decode())}")
        if request.content_type is not None:
            script.append(
                f'wrk.headers["Content-Type"] = {_lua_string(request.content_type)}'
            )
        if request.authorization is not None:
            script.append(
                f'wrk.headers["Authorization"] = {_lua_string(request.authorization)}'
            )
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write("\n".join(script) + "\n")
        try:
            completed = subprocess.run(
                [
                    self.executable,
                    "-t1",
                    f"-c{connections}",
                    f"-d{max(1, round(seconds))}s",
                    "--timeout",
                    "10s",
                    "-s",
                    lua.name,
                    f"http://{HOST}:{port}{request.path}",
                ],
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                check=False,
            )
        finally:
            os.unlink(lua.name)
        for line in completed.stdout.splitlines():
            if line.startswith("WRKJSON "):
                data = json.loads(line[len("WRKJSON ") :])
                points = data["quantiles_us"]
                weight = data["requests"] / len(points)
                return Result(
                    requests=data["requests"],
                    seconds=data["duration_us"] / 1e6,
                    errors=data["socket_errors"] + data["status_errors"],
                    quantiles=tuple((us / 1000, weight) for us in points),
                )
        raise RuntimeError(
            f"wrk gave no summary (exit {completed.returncode}): "
            f"{completed.stdout[-500:]} {completed.stderr[-500:]}"
        )


# -- the Python fallback ------------------------------------------------------


def _connection_loop(
    port: int,
    request: Request,
    start: float,
    deadline: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    if request.authorization is not None:
        headers["Authorization"] = request.authorization
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    while time.time() < start:
        time.sleep(0.001)
    while True:
        began = time.perf_counter()
        if time.time() >= deadline:
            break
        try:
            connection.request(
                request.method, request.path, body=request.body, headers=headers
            )
            response = connection.getresponse()
            response.read()
            ok = response.status < 400
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(HOST, port, timeout=10)
            ok = False
        if time.time() > deadline:
            break  # finished after the window: not counted
        if ok:
            latencies.append(time.perf_counter() - began)
        else:
            errors[0] += 1
    connection.close()


def _process_main(
    port: int,
    request: Request,
    threads: int,
    start: float,
    deadline: float,
    queue: Any,
) -> None:
    latencies: list[float] = []
    errors = [0]
    workers = [
        threading.Thread(
            target=_connection_loop,
            args=(port, request, start, deadline, latencies, errors),
        )
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors[0]))


class PythonLoad:
    """Processes x threads, one keep-alive ``http.client`` connection per thread."""

    name = "python"

    def __init__(self, processes: int | None = None) -> None:
        # Half the cores: on 2 cores one client process measured more than two,
        # which took CPU from the server they measure.
        self.processes = processes or max(1, (os.cpu_count() or 2) // 2)

    def run(
        self, port: int, request: Request, *, connections: int, seconds: float
    ) -> Result:
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        processes = min(self.processes, connections)
        per_process = [connections // processes] * processes
        for index in range(connections % processes):
            per_process[index] += 1
        start = time.time() + 0.3
        deadline = start + seconds
        children = [
            context.Process(
                target=_process_main,
                args=(port, request, count, start, deadline, queue),
            )
            for count in per_process
        ]
        for child in children:
            child.start()
        latencies: list[float] = []
        errors = 0
        for _ in children:
            found, failed = queue.get(timeout=seconds + 60)
            latencies.extend(found)
            errors += failed
        for child in children:
            child.join(10)
        return Result(
            requests=len(latencies),
            seconds=seconds,
            errors=errors,
            quantiles=tuple((value * 1000, 1.0) for value in latencies),
        )


# -- choosing -----------------------------------------------------------------


def _install_wrk() -> str | None:
    """Try Debian's wrk (root only); None when that is not possible here."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        done = subprocess.run(
            install, capture_output=True, env=env, timeout=300, check=False
        )
        if done.returncode == 0:
            break
        if attempt == 0:  # package lists may be missing on a fresh machine
            update = ["apt-get", "update", "-qq"]
            subprocess.run(
                update, capture_output=True, env=env, timeout=300, check=False
            )
    return shutil.which("wrk")


def choose(preference: str = "auto") -> LoadGenerator:
    """``auto``: wrk, installing it with apt-get when allowed (root, and
    BENCH_NO_INSTALL unset), else the Python generator; ``wrk`` or ``python``
    force one."""
    if preference == "python":
        return PythonLoad()
    found = shutil.which("wrk")
    if found is None and not os.environ.get("BENCH_NO_INSTALL"):
        print("bench: wrk not found; trying `apt-get install -y wrk` ...", flush=True)
        try:
            found = _install_wrk()
        except (OSError, subprocess.SubprocessError) as error:
            print(f"bench: installing wrk failed: {error}", flush=True)
    if found is not None:
        return Wrk(found)
    if preference == "wrk":
        raise SystemExit("bench: wrk is required (--load wrk) but is not installed")
    print(
        "bench: wrk unavailable (install it with `apt-get install -y wrk`); using "
        "the Python load generator, whose own ceiling is about half of wrk's: "
        "ratios near 1.0 may then measure the client, not the server.",
        flush=True,
    )
    return PythonLoad()
