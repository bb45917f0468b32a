"""Prometheus metrics of the scheduler, in a registry of its own (one per engine).

Names follow Prometheus conventions (``_total`` counters, base units).  ``launches/s`` is
``rate(airflow_executor_pod_launches_total[1m])`` in PromQL; the EWMA gauge
``airflow_executor_launch_rate`` gives the same at a glance without a query.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queued = Gauge("airflow_executor_tasks_queued", "Tasks waiting for a pod slot.", registry=r)
        self.pending = Gauge("airflow_executor_pods_pending", "Task pods created, not yet running.", registry=r)
        self.running = Gauge("airflow_executor_pods_running", "Task pods running.", registry=r)
        self.placeholders = Gauge("airflow_executor_placeholder_pods", "Warm-capacity placeholder pods.", registry=r)
        self.succeeded = Counter("airflow_executor_tasks_succeeded", "Tasks that succeeded.", registry=r)
        self.failed = Counter("airflow_executor_tasks_failed", "Tasks that failed, by reason.", ["reason"], registry=r)
        self.launches = Counter("airflow_executor_pod_launches", "Task pods created.", registry=r)
        self.launch_rate = Gauge("airflow_executor_launch_rate", "Pod launches per second (EWMA, 10 s).", registry=r)
        self.api_errors = Counter(
            "airflow_executor_api_errors", "Kubernetes API errors by HTTP code and verb.", ["code", "verb"], registry=r
        )
        self.watch_restarts = Counter(
            "airflow_executor_watch_restarts", "Watch restarts by cause.", ["cause"], registry=r
        )
        self.start_latency = Histogram(
            "airflow_executor_task_start_latency_seconds",
            "Time from a task being queued to its pod running.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.quota_refusals = Counter(
            "airflow_executor_quota_refusals", "Pod creations refused by ResourceQuota (retried).", registry=r
        )
        self.unschedulable = Gauge(
            "airflow_executor_pods_unschedulable", "Pending task pods the scheduler cannot place.", registry=r
        )
        self.api_pace = Gauge(
            "airflow_executor_api_write_pace",
            "API writes per second the server's pushback allows now (0: unpaced; kube/flowcontrol.py).",
            registry=r,
        )
        self.api_window = Gauge(
            "airflow_executor_api_write_window",
            "API writes allowed in flight now (the server's pushback lowers it; kube/flowcontrol.py).",
            registry=r,
        )
        self.api_writes = Gauge(
            "airflow_executor_api_writes_answered", "API writes answered since start (any outcome).", registry=r
        )
        self.api_write_signals = Gauge(
            "airflow_executor_api_write_signals",
            "Overload signals the flow control acted on since start (429, 5xx, timeouts, rising latency).",
            registry=r,
        )
        self.api_writes_throttled = Gauge(
            "airflow_executor_api_writes_throttled", "API writes answered 429 since start.", registry=r
        )
        self.handed_over = Counter(
            "airflow_executor_pods_handed_over",
            "Task pods another scheduler adopted from this one (tasks handed over, not failed).",
            registry=r,
        )
        self.placeholder_keeper = Gauge(
            "airflow_executor_placeholder_keeper",
            "1 when this scheduler keeps the namespace's placeholder pods (one of several schedulers does).",
            registry=r,
        )
        self.placeholder_keeper.set(1)
        self._rate_lock = threading.Lock()
        self._rate = 0.0
        self._rate_stamp = time.monotonic()

    def launched(self) -> None:
        self.launches.inc()
        with self._rate_lock:
            now = time.monotonic()
            elapsed = max(now - self._rate_stamp, 1e-6)
            decay = 0.5 ** (elapsed / 10.0)
            self._rate = self._rate * decay + (1 - decay) / elapsed
            self._rate_stamp = now
            self.launch_rate.set(self._rate)

    def api_error(self, code: int, verb: str) -> None:
        self.api_errors.labels(code=str(code), verb=verb).inc()
