"""Prometheus metrics (prometheus-client): what a server or worker observes, and
the scrape of ``GET /metrics``.

Event metrics (requests, task starts and ends, duty runs) are recorded by the
process that sees the event. Under ``overlord serve`` every process (granian's HTTP
workers, the embedded worker) writes them to ``PROMETHEUS_MULTIPROC_DIR``, which
serve creates empty before it starts anything and removes when it stops; a scrape
merges every process's files (prometheus-client's multiprocess mode). Without that
variable (tests, a plain WSGI server) they live in this process's default registry.

State metrics (tasks by state, queue depth, workers and slots) are read from the
store at scrape time, so they are right whichever server is scraped.

Names are fixed for dashboards: ``overlord_*`` as the operability issue lists them,
plus the Druid families a Druid dashboard reads through Druid's prometheus-emitter
(``druid_task_run_time`` … with its default buckets and label names,
spec/operability.md §1.5). Druid's snapshot counts (``druid_task_running_count``
…) are counters there, one increment by the current count per emission period:
serve's embedded worker alone adds them (``emit_task_counts``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Text format 0.0.4: what every Prometheus (2.x included) and Druid's exporter
# speak; the samples are the same in 1.0.0.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Druid's prometheus-emitter histogram buckets, in seconds (defaultMetrics.json).
DRUID_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300)
# Tasks run from milliseconds (noop) to hours (ingestion).
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400)
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "overlord_http_requests",
    "HTTP requests answered, by route template (never a task id), method and status.",
    ("route", "method", "status"),
)
HTTP_DURATION = Histogram(
    "overlord_http_request_duration_seconds",
    "Time from the request's arrival in the app to its response (streamed list "
    "bodies are sent after this).",
    ("route", "method"),
)
TASK_DISPATCH = Histogram(
    "overlord_task_dispatch_seconds",
    "From a task becoming ready (PENDING) to a worker claiming it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TASK_RUN = Histogram(
    "overlord_task_run_seconds",
    "Run time of tasks that ended on a worker, by type and final status.",
    ("type", "status"),
    buckets=TASK_BUCKETS,
)
DUTY_RUNS = Counter(
    "overlord_duty_runs", "Runs of the periodic duties, by duty.", ("duty",)
)
PENDING_SEGMENTS_DELETED = Counter(
    "overlord_pending_segments_deleted",
    "Pending segments deleted by the stale-pending-segments duty.",
)
# Druid's own families (prometheus-emitter's default mapping).
DRUID_TASK_RUN_TIME = Histogram(
    "druid_task_run_time",
    "Druid task/run/time: milliseconds in Druid, seconds here as the emitter exports.",
    ("dataSource", "taskType"),
    buckets=DRUID_BUCKETS,
)
DRUID_TASK_PENDING_TIME = Histogram(
    "druid_task_pending_time",
    "Druid task/pending/time: from ready to running.",
    ("dataSource", "taskType"),
    buckets=DRUID_BUCKETS,
)
DRUID_TASK_SUCCESS = Counter(
    "druid_task_success_count", "Druid task/success/count.", ("dataSource",)
)
DRUID_TASK_FAILED = Counter(
    "druid_task_failed_count", "Druid task/failed/count.", ("dataSource",)
)
# Druid's TaskCountStatsMonitor snapshots: the emitter maps them as counts, so each
# emission period adds the current number of tasks (see emit_task_counts).
DRUID_TASK_COUNTS = {
    state: Counter(
        f"druid_task_{state.lower()}_count",
        f"Druid task/{state.lower()}/count: every emission period (Druid's "
        f"druid.monitoring.emissionPeriod) adds the number of {state} tasks then.",
        ("dataSource", "taskType"),
    )
    for state in ("RUNNING", "PENDING", "WAITING")
}
# TaskSlotCountStatsMonitor, the same way (not in the emitter's default mapping).
DRUID_TASK_SLOTS = {
    kind: Counter(
        f"druid_taskslot_{kind}_count",
        f"Druid taskSlot/{kind}/count: every emission period adds the number of "
        f"{kind} task slots of the live workers then.",
        ("category",),
    )
    for kind in ("total", "idle", "used")
}

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def druid_label(value: str | None) -> str:
    """A label value as Druid's PrometheusEmitter writes it: runs of characters
    other than ``[A-Za-z0-9_]`` become ``_``; a missing dimension is ``unknown``."""
    return _UNSAFE.sub("_", value) if value else "unknown"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route, method).observe(seconds)


def task_dispatched(task_type: str, datasource: str, seconds: float) -> None:
    TASK_DISPATCH.observe(seconds)
    DRUID_TASK_PENDING_TIME.labels(
        druid_label(datasource), druid_label(task_type)
    ).observe(seconds)


def task_ended(task_type: str, datasource: str, status: str, seconds: float) -> None:
    TASK_RUN.labels(task_type, status).observe(seconds)
    DRUID_TASK_RUN_TIME.labels(druid_label(datasource), druid_label(task_type)).observe(
        seconds
    )
    counter = DRUID_TASK_SUCCESS if status == "SUCCESS" else DRUID_TASK_FAILED
    counter.labels(druid_label(datasource)).inc()


def emit_task_counts(
    tasks: dict[tuple[str, str, str], int],
    slots: dict[str, tuple[int, int, int]],
) -> None:
    """One emission of Druid's TaskCountStatsMonitor and TaskSlotCountStatsMonitor
    as its prometheus-emitter exports them: each count is added to its counter.

    ``tasks``: (runner state, datasource, type) → active tasks, only those that
    exist (Druid emits one event per entry of its maps); ``slots``: category →
    (total, idle, used) task slots."""
    for (state, datasource, task_type), count in tasks.items():
        counter = DRUID_TASK_COUNTS.get(state)
        if counter is not None and count > 0:
            counter.labels(druid_label(datasource), druid_label(task_type)).inc(count)
    for category, values in slots.items():
        for kind, count in zip(("total", "idle", "used"), values, strict=True):
            DRUID_TASK_SLOTS[kind].labels(druid_label(category)).inc(count)


def duty_ran(duty: str, pending_segments_deleted: int = 0) -> None:
    DUTY_RUNS.labels(duty).inc()
    if pending_segments_deleted:
        PENDING_SEGMENTS_DELETED.inc(pending_segments_deleted)


@dataclass(frozen=True)
class StoreState:
    """What the store says at scrape time."""

    # (runner state of an active task: WAITING, PENDING or RUNNING; type) → count
    active_tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    workers: int = 0
    capacity: int = 0
    used: int = 0


class _StoreCollector(Collector):
    def __init__(self, state: StoreState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.state
        tasks = GaugeMetricFamily(
            "overlord_tasks",
            "Active tasks in the store by runner state (WAITING, PENDING, RUNNING) "
            "and type; ended tasks are counted by overlord_task_run_seconds_count.",
            labels=("state", "type"),
        )
        for (runner_state, task_type), count in sorted(state.active_tasks.items()):
            tasks.add_metric((runner_state, task_type), count)
        yield tasks
        depth = sum(
            count for (s, _), count in state.active_tasks.items() if s == "PENDING"
        )
        yield GaugeMetricFamily(
            "overlord_task_queue_depth",
            "Ready tasks no worker has claimed yet (PENDING).",
            value=depth,
        )
        yield GaugeMetricFamily(
            "overlord_workers", "Live workers (fresh heartbeat).", value=state.workers
        )
        yield GaugeMetricFamily(
            "overlord_worker_slots",
            "Task slots of the live workers.",
            value=state.capacity,
        )
        yield GaugeMetricFamily(
            "overlord_worker_slots_free",
            "Task slots of the live workers not running a task.",
            value=max(state.capacity - state.used, 0),
        )


class _ProcessCollector(Collector):
    """This process's default registry, for a scrape without multiprocess files."""

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        return REGISTRY.collect()


def render(read_state: Callable[[], StoreState]) -> bytes:
    """The text exposition of every metric (a new registry per scrape, as
    prometheus-client's multiprocess mode requires).

    The processes' samples are read before the store (``read_state``): a worker
    records a task's end just after committing it, so this order never counts a
    task as ended and still running in one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessCollector())
    families = list(registry.collect())
    families += _StoreCollector(read_state()).collect()
    collected = CollectorRegistry(auto_describe=False)
    collected.register(_Collected(families))
    return generate_latest(collected)


class _Collected(Collector):
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families
