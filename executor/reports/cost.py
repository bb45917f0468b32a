"""Utilization U and cost C of the executor's task pods.

The seed's two formulas (see DESIGN.md)::

    U = R_used / R_requested           per pod and resource (cpu, memory)
    C = sum_i c_i * t_i                c_i = price per pod-hour of pod i's tier, t_i = its runtime in hours

**Where the inputs come from.**  Pods of succeeded tasks are deleted, so the durable record of
past cost is the executor's :class:`~airflow_k8s.executor.tasks.results.TaskResult` records (tier, started_at,
finished_at).  Pods that still exist add what the results cannot know: running pods accrue cost
up to ``now``, and terminal pods without a recorded result (a restart in between) are counted
from their own status.  Pod names are a pure function of the task try, so the two sources are
de-duplicated by pod name and a task try is never counted twice: the result wins when it has
both timestamps, the live pod's observed runtime is used otherwise.

**Prices.**  c_i is the ``cost_per_pod_hour`` of the tier the pod was labelled with
(``airflow_executor_tier``).  A missing or unknown tier is billed at the config's
``default_tier`` and flagged in :attr:`CostReport.assumed_tier_pods`.  Money is
:class:`~decimal.Decimal` end to end; rounding happens only when rendering.

**Utilization** comes from metrics.k8s.io PodMetrics (metrics-server): container usage summed
per pod, divided by the pod's effective requests (:func:`airflow_k8s.executor.pods.capacity.pod_requests`).  It
exists only for live pods.  When the metrics API is absent (404), forbidden (403) or otherwise
unavailable, utilization is simply unknown: :class:`UtilizationResult` says why, and the cost
report is produced all the same.

Placeholder pods are not billed to tasks: they are warm-capacity overhead with no task, and
their history is not recorded anywhere, so including only the live ones would be misleading.

Everything that computes is a pure function over plain data (:func:`compute_utilization`,
:func:`build_report`, :func:`render_table`); :func:`gather_utilization` and
:func:`gather_report` are the thin layer that fetches the inputs through a KubeClient.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.errors import ExecutorError, KubeApiError, QuantityError
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.pods.capacity import pod_requests
from airflow_k8s.executor.pods.podstate import TERMINAL_PHASES, parse_time, pod_status
from airflow_k8s.executor.reports.monitor import is_placeholder, phase_of
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import TaskResult

log = logging.getLogger(__name__)

RESOURCES = ("cpu", "memory")
GROUPINGS = ("task", "dag", "tier")
UNKNOWN = "(unknown)"
_SECONDS_PER_HOUR = Decimal(3600)
_CENTS4 = Decimal("0.0001")


class CostError(ExecutorError, ValueError):
    """A cost report was asked for with invalid arguments (a naive ``now``, an unknown grouping...)."""


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise CostError(f"now = {now!r} must be a timezone-aware datetime, e.g. datetime.now(UTC)")
    return now.astimezone(UTC)


def hours_between(start: datetime | None, end: datetime | None) -> Decimal:
    """Exact hours from ``start`` to ``end`` (0 when either is unknown or the span is negative)."""
    if start is None or end is None:
        return Decimal(0)
    span = end - start
    if span <= timedelta(0):
        return Decimal(0)
    seconds = Decimal(span.days * 86400 + span.seconds) + Decimal(span.microseconds) / Decimal(1_000_000)
    return seconds / _SECONDS_PER_HOUR


# -- utilization ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UtilizationRow:
    """U for one pod and resource: ``used`` / ``requested`` (cores or bytes); ratio None if nothing requested."""

    pod: str
    resource: str
    used: Decimal
    requested: Decimal
    ratio: float | None


@dataclass(frozen=True)
class UtilizationResult:
    """Utilization rows, or none with ``available`` False and a ``message`` saying why."""

    rows: tuple[UtilizationRow, ...] = ()
    available: bool = True
    message: str = ""

    def ratio(self, pod: str, resource: str) -> float | None:
        for row in self.rows:
            if row.pod == pod and row.resource == resource:
                return row.ratio
        return None


def container_usage(item: Mapping[str, Any]) -> dict[str, Decimal]:
    """Usage of one PodMetrics item, summed over its containers (malformed quantities are skipped)."""
    total: dict[str, Decimal] = {}
    for container in item.get("containers") or []:
        for name, text in (container.get("usage") or {}).items():
            try:
                value = quantity.parse(text)
            except QuantityError:
                log.warning("ignoring malformed usage %s=%r of pod %s", name, text, _name(item))
                continue
            total[name] = total.get(name, Decimal(0)) + value
    return total


def compute_utilization(
    pods: Iterable[Mapping[str, Any]], metrics: Iterable[Mapping[str, Any]]
) -> tuple[UtilizationRow, ...]:
    """One row per (pod, cpu|memory) for pods that have both a spec and a PodMetrics item (pure)."""
    usage = {_name(item): container_usage(item) for item in metrics}
    rows: list[UtilizationRow] = []
    for pod in pods:
        name = _name(pod)
        if name not in usage:
            continue
        requests = pod_requests(pod)
        for resource in RESOURCES:
            used = usage[name].get(resource, Decimal(0))
            requested = requests.get(resource, Decimal(0))
            ratio = float(used / requested) if requested > 0 else None
            rows.append(UtilizationRow(name, resource, used, requested, ratio))
    return tuple(rows)


def gather_utilization(kube: KubeClient, namespace: str, pods: Iterable[Mapping[str, Any]]) -> UtilizationResult:
    """U of ``pods`` from the metrics API; never raises for an absent or inaccessible metrics API."""
    try:
        metrics = kube.pod_metrics(namespace)
    except KubeApiError as exc:
        if exc.status == 404:
            message = "metrics API (metrics.k8s.io) is not available: install metrics-server to see utilization"
        elif exc.status == 403:
            message = (
                "metrics API access is forbidden: grant get/list on pods.metrics.k8s.io "
                f"in namespace {namespace} to see utilization"
            )
        else:
            message = f"metrics API unavailable: {exc}"
        log.warning("utilization unknown: %s", message)
        return UtilizationResult(rows=(), available=False, message=message)
    return UtilizationResult(rows=compute_utilization(pods, metrics), available=True)


# -- cost ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostItem:
    """One pod's share of C: ``cost = rate * hours``."""

    pod: str
    task: str  # "<dag_id>.<task_id>", or "(unknown)" when the pod carries no task key
    dag: str
    tier: str  # the tier whose price was used
    tier_label: str  # the tier as recorded ("" when none)
    tier_assumed: bool  # tier_label was missing/unknown: billed at the default tier
    hours: Decimal
    rate: Decimal
    cost: Decimal
    source: str  # "result" | "pod"
    state: str  # result state (success/failed) or pod phase
    cpu_utilization: float | None = None
    memory_utilization: float | None = None


@dataclass(frozen=True)
class CostLine:
    """An aggregate of items: pod count, hours, cost, mean utilization over pods where it is known."""

    name: str
    pods: int
    hours: Decimal
    cost: Decimal
    cpu_utilization: float | None = None
    memory_utilization: float | None = None


@dataclass(frozen=True)
class CostReport:
    items: tuple[CostItem, ...]
    by_task: tuple[CostLine, ...]
    by_dag: tuple[CostLine, ...]
    by_tier: tuple[CostLine, ...]
    total: CostLine
    now: datetime
    utilization_available: bool = True
    utilization_message: str = ""
    assumed_tier_pods: tuple[str, ...] = ()

    def lines(self, by: str) -> tuple[CostLine, ...]:
        """The lines grouped ``by`` task, dag or tier (CostError for anything else)."""
        if by == "task":
            return self.by_task
        if by == "dag":
            return self.by_dag
        if by == "tier":
            return self.by_tier
        raise CostError(f"cannot group a cost report by {by!r}; allowed: {', '.join(GROUPINGS)}")

    @property
    def notes(self) -> tuple[str, ...]:
        """Caveats an operator should read next to the numbers."""
        out = []
        if not self.utilization_available:
            out.append(f"utilization unknown: {self.utilization_message}")
        if self.assumed_tier_pods:
            shown = ", ".join(self.assumed_tier_pods[:5]) + (" ..." if len(self.assumed_tier_pods) > 5 else "")
            out.append(f"{len(self.assumed_tier_pods)} pod(s) without a known tier billed at the default tier: {shown}")
        return tuple(out)


def price(config: ExecutorConfig, tier_label: str | None) -> tuple[Tier, bool]:
    """The tier to bill ``tier_label`` at, and whether it was assumed (missing/unknown label)."""
    tiers = {tier.name: tier for tier in config.tiers}
    if tier_label and tier_label in tiers:
        return tiers[tier_label], False
    default = tiers.get(config.default_tier)
    if default is None:
        raise CostError(
            f"default_tier {config.default_tier!r} is not one of the configured tiers ({', '.join(tiers) or 'none'}); "
            "cannot price pods without a known tier"
        )
    return default, True


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _task_and_dag(dag_id: str | None, task_id: str | None) -> tuple[str, str]:
    if not dag_id or not task_id:
        return UNKNOWN, UNKNOWN
    return f"{dag_id}.{task_id}", dag_id


def _result_timed(result: TaskResult) -> bool:
    return result.started_at is not None and result.finished_at is not None


def _pod_runtime(pod: Mapping[str, Any], now: datetime) -> Decimal:
    """Observed runtime of a live pod: to its finish if terminal, to ``now`` if it started and is not."""
    status = pod_status(dict(pod))
    if status.started_at is None:
        return Decimal(0)
    if phase_of(pod) in TERMINAL_PHASES:
        end = status.finished_at
        if end is None:  # no base container finish: the latest container finish, if any
            finishes = [
                parse_time(((item.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                for item in (pod.get("status") or {}).get("containerStatuses") or []
            ]
            known = [f for f in finishes if f is not None]
            end = max(known) if known else None
        return hours_between(status.started_at, end)
    return hours_between(status.started_at, now)


def build_report(
    results: Iterable[TaskResult],
    pods: Iterable[Mapping[str, Any]],
    config: ExecutorConfig,
    *,
    now: datetime | None = None,
    utilization: UtilizationResult | None = None,
) -> CostReport:
    """C over finished tasks (``results``) and live pods (``pods``), de-duplicated by pod name (pure).

    ``now`` (timezone-aware; default: the current time) is where running pods' cost stops.
    """
    current = _aware(now)
    util = utilization if utilization is not None else UtilizationResult()
    by_pod_result: dict[str, TaskResult] = {}
    for record in results:
        name = record.pod_name or identity.pod_name(record.key)
        previous = by_pod_result.get(name)
        if previous is None or _result_timed(record) or not _result_timed(previous):
            by_pod_result[name] = record
    live: dict[str, Mapping[str, Any]] = {}
    for item in pods:
        if not is_placeholder(item):
            live[_name(item)] = item

    items: list[CostItem] = []
    for name in sorted(set(by_pod_result) | set(live)):
        result = by_pod_result.get(name)
        pod = live.get(name)
        labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
        if result is not None:
            task, dag = _task_and_dag(result.key.dag_id, result.key.task_id)
            tier_label = result.tier or labels.get(identity.LABEL_TIER, "")
            if _result_timed(result) or pod is None:
                hours, source = hours_between(result.started_at, result.finished_at), "result"
            else:
                hours, source = _pod_runtime(pod, current), "pod"
            state = result.state
        else:
            assert pod is not None
            key = identity.key_from_annotations((pod.get("metadata") or {}).get("annotations"))
            task, dag = _task_and_dag(key.dag_id if key else None, key.task_id if key else None)
            tier_label = labels.get(identity.LABEL_TIER, "")
            hours, source, state = _pod_runtime(pod, current), "pod", phase_of(pod)
        tier, assumed = price(config, tier_label)
        rate = tier.cost_per_pod_hour
        items.append(
            CostItem(
                pod=name,
                task=task,
                dag=dag,
                tier=tier.name,
                tier_label=tier_label,
                tier_assumed=assumed,
                hours=hours,
                rate=rate,
                cost=rate * hours,
                source=source,
                state=state,
                cpu_utilization=util.ratio(name, "cpu") if pod is not None else None,
                memory_utilization=util.ratio(name, "memory") if pod is not None else None,
            )
        )
    return CostReport(
        items=tuple(items),
        by_task=_group(items, lambda i: i.task),
        by_dag=_group(items, lambda i: i.dag),
        by_tier=_group(items, lambda i: i.tier),
        total=_aggregate("TOTAL", items),
        now=current,
        utilization_available=util.available,
        utilization_message=util.message,
        assumed_tier_pods=tuple(i.pod for i in items if i.tier_assumed),
    )


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _aggregate(name: str, items: Sequence[CostItem]) -> CostLine:
    return CostLine(
        name=name,
        pods=len(items),
        hours=sum((i.hours for i in items), Decimal(0)),
        cost=sum((i.cost for i in items), Decimal(0)),
        cpu_utilization=_mean(i.cpu_utilization for i in items),
        memory_utilization=_mean(i.memory_utilization for i in items),
    )


def _group(items: Sequence[CostItem], key: Any) -> tuple[CostLine, ...]:
    groups: dict[str, list[CostItem]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    lines = [_aggregate(name, members) for name, members in groups.items()]
    return tuple(sorted(lines, key=lambda line: (-line.cost, line.name)))


def gather_report(
    config: ExecutorConfig,
    results: Iterable[TaskResult],
    kube: KubeClient | None = None,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    now: datetime | None = None,
    utilization: bool = True,
) -> CostReport:
    """Build the report from ``results`` plus, when ``kube`` is given, the live pods and their metrics.

    ``results`` is usually ``Spool(config.task_intake_dir).read_results()``.  The namespace
    defaults to the config's, the selector to this scheduler instance's pods.  Without ``kube``
    (offline) the report covers recorded results only and says utilization is unknown.
    """
    current = _aware(now)
    if kube is None:
        offline = UtilizationResult(available=False, message="no cluster access: recorded results only")
        return build_report(results, [], config, now=current, utilization=offline)
    ns = namespace or config.namespace
    selector = label_selector or identity.instance_selector(config.scheduler_instance_id)
    pods = kube.list_pods(ns, label_selector=selector).items
    util = gather_utilization(kube, ns, pods) if utilization else None
    return build_report(results, pods, config, now=current, utilization=util)


# -- rendering -----------------------------------------------------------------------------------
def _money(value: Decimal) -> str:
    return f"${value.quantize(_CENTS4, rounding=ROUND_HALF_UP)}"


def _hours(value: Decimal) -> str:
    return f"{value.quantize(_CENTS4, rounding=ROUND_HALF_UP)}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def render_table(report: CostReport, by: str) -> str:
    """An aligned plain-text table of the lines grouped ``by`` task|dag|tier, with a total row."""
    lines = report.lines(by)
    header = (by.upper(), "PODS", "HOURS", "COST", "CPU UTIL", "MEM UTIL")
    rows = [
        (
            line.name,
            str(line.pods),
            _hours(line.hours),
            _money(line.cost),
            _percent(line.cpu_utilization),
            _percent(line.memory_utilization),
        )
        for line in (*lines, report.total)
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(r) for r in rows[:-1]), rule, fmt(rows[-1])]) + "\n"


def plot(report: CostReport, path: str | Path, *, by: str = "tier") -> Path:
    """Write a PNG bar chart of cost per task|dag|tier to ``path`` (needs the ``plot`` extra)."""
    lines = report.lines(by)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ExecutorError(
            "cost plots need matplotlib, which is not installed: pip install '.[plot]' (or pip install matplotlib)"
        ) from exc
    target = Path(path)
    # The object-oriented API with an explicit Agg canvas: no pyplot global state, no display needed,
    # and the host application's matplotlib backend is left alone.
    figure = Figure(figsize=(8, max(2.5, 0.45 * len(lines) + 1.5)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    names = [line.name for line in lines]
    values = [float(line.cost) for line in lines]
    bars = axes.barh(names, values, color="#4c72b0")
    axes.invert_yaxis()
    axes.bar_label(bars, labels=[_money(line.cost) for line in lines], padding=3, fontsize=8)
    axes.set_xlabel("cost (USD)")
    axes.set_title(f"Pod cost by {by}: total {_money(report.total.cost)} over {_hours(report.total.hours)} pod-hours")
    axes.margins(x=0.2)
    figure.tight_layout()
    try:
        figure.savefig(target, format="png")
    except OSError as exc:
        raise ExecutorError(f"cannot write cost plot {target}: {exc}") from exc
    return target
