"""Cost C = sum c_i * t_i and utilization U = R_used / R_requested: pure arithmetic, grouping, rendering, plots."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.reports.cost import (
    CostError,
    UtilizationResult,
    build_report,
    compute_utilization,
    container_usage,
    gather_report,
    gather_utilization,
    hours_between,
    plot,
    render_table,
)
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, TaskResult
from airflow_k8s.executor.tasks.spool import Spool
from tests.fakekube.server import FakeKubeServer

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CONFIG = ExecutorConfig()  # DEFAULT_TIERS: the seed's table, default_tier "medium"


def key(task_id: str = "t", dag_id: str = "dag", run_id: str = "run1", try_number: int = 1) -> TaskKey:
    return TaskKey(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number)


def result(
    task_key: TaskKey, tier: str, hours: float | None, *, end: datetime = NOW, state: str = SUCCESS
) -> TaskResult:
    started = None if hours is None else end - timedelta(hours=hours)
    finished = None if hours is None else end
    return TaskResult(
        key=task_key,
        state=state,
        reason="Completed",
        pod_name=identity.pod_name(task_key),
        tier=tier,
        started_at=started,
        finished_at=finished,
    )


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    task_key: TaskKey | None,
    *,
    tier: str | None = "light",
    phase: str = "Running",
    started: datetime | None = None,
    finished: datetime | None = None,
    requests: dict[str, str] | None = None,
    name: str | None = None,
    placeholder: bool = False,
) -> dict[str, Any]:
    labels = identity.task_labels(task_key, "default") if task_key else identity.placeholder_labels("default")
    if tier is not None:
        labels[identity.LABEL_TIER] = tier
    if placeholder:
        labels[identity.LABEL_PLACEHOLDER] = "True"
    state: dict[str, Any] = {}
    if started and finished:
        state = {"terminated": {"exitCode": 0, "startedAt": stamp(started), "finishedAt": stamp(finished)}}
    elif started:
        state = {"running": {"startedAt": stamp(started)}}
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "base", "state": state}]}
    if started:
        status["startTime"] = stamp(started)
    return {
        "metadata": {
            "name": name or (identity.pod_name(task_key) if task_key else "placeholder-0"),
            "labels": labels,
            "annotations": identity.task_annotations(task_key) if task_key else {},
        },
        "spec": {"containers": [{"name": "base", "resources": {"requests": requests or {}}}]},
        "status": status,
    }


def metrics_item(name: str, *usages: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "containers": [{"name": f"c{i}", "usage": usage} for i, usage in enumerate(usages)],
    }


# -- C = sum c_i * t_i -------------------------------------------------------------------------------
def test_three_light_pods_for_half_an_hour_cost_exactly_three_cents() -> None:
    results = [result(key(f"t{i}"), "light", 0.5) for i in range(3)]
    report = build_report(results, [], CONFIG, now=NOW)
    assert report.total.cost == Decimal("0.03")
    assert report.total.hours == Decimal("1.5")
    assert report.total.pods == 3
    assert all(isinstance(item.cost, Decimal) for item in report.items)


def test_each_tier_of_the_seed_table_is_billed_at_its_own_price_per_pod_hour() -> None:
    results = [result(key(tier), tier, 1) for tier in ("light", "medium", "heavy", "gpu")]
    report = build_report(results, [], CONFIG, now=NOW)
    assert {line.name: line.cost for line in report.by_tier} == {
        "light": Decimal("0.02"),
        "medium": Decimal("0.08"),
        "heavy": Decimal("0.16"),
        "gpu": Decimal("1.50"),
    }
    assert report.total.cost == Decimal("1.76")


def test_runtime_hours_are_exact_to_the_microsecond() -> None:
    start = NOW - timedelta(minutes=20, microseconds=1)
    assert hours_between(start, NOW) == (Decimal(1200) + Decimal("0.000001")) / Decimal(3600)
    assert hours_between(NOW, start) == 0
    assert hours_between(None, NOW) == 0


def test_a_task_that_never_started_costs_nothing_but_still_counts_as_a_pod() -> None:
    report = build_report([result(key("x"), "heavy", None, state=FAILED)], [], CONFIG, now=NOW)
    assert report.total.cost == 0
    assert report.total.pods == 1


def test_lines_are_grouped_by_task_dag_and_tier_and_sorted_by_cost() -> None:
    results = [
        result(key("extract", dag_id="etl", run_id="r1"), "light", 1),
        result(key("extract", dag_id="etl", run_id="r2"), "light", 1),
        result(key("train", dag_id="ml"), "gpu", 2),
        result(key("load", dag_id="etl"), "medium", 0.25),
    ]
    report = build_report(results, [], CONFIG, now=NOW)
    by_task = {line.name: (line.pods, line.hours, line.cost) for line in report.by_task}
    assert by_task == {
        "etl.extract": (2, Decimal(2), Decimal("0.04")),
        "ml.train": (1, Decimal(2), Decimal("3.00")),
        "etl.load": (1, Decimal("0.25"), Decimal("0.02")),
    }
    assert [(line.name, line.pods, line.cost) for line in report.by_dag] == [
        ("ml", 1, Decimal("3.00")),
        ("etl", 3, Decimal("0.06")),
    ]
    assert [line.name for line in report.by_tier] == ["gpu", "light", "medium"]
    assert report.lines("task") == report.by_task
    assert sum(line.cost for line in report.by_tier) == report.total.cost == Decimal("3.06")


def test_a_kept_terminal_pod_with_a_recorded_result_is_counted_once() -> None:
    task_key = key("failing")
    recorded = result(task_key, "heavy", 1, state=FAILED)
    # delete_worker_pods_on_failure=False: the failed pod is still there, labelled done.
    live = pod(task_key, tier="heavy", phase="Failed", started=NOW - timedelta(hours=1), finished=NOW)
    report = build_report([recorded], [live], CONFIG, now=NOW + timedelta(hours=5))
    assert report.total.pods == 1
    assert report.total.cost == Decimal("0.16")
    assert report.items[0].source == "result"


def test_the_same_result_read_twice_is_counted_once() -> None:
    recorded = result(key("dup"), "light", 1)
    report = build_report([recorded, recorded], [], CONFIG, now=NOW)
    assert report.total.pods == 1
    assert report.total.cost == Decimal("0.02")


def test_a_terminal_pod_without_a_result_is_billed_from_its_own_status() -> None:
    live = pod(
        key("orphan"),
        tier="medium",
        phase="Succeeded",
        started=NOW - timedelta(hours=3),
        finished=NOW - timedelta(hours=1),
    )
    report = build_report([], [live], CONFIG, now=NOW)
    assert report.total.hours == Decimal(2)
    assert report.total.cost == Decimal("0.16")
    assert report.items[0].source == "pod"
    assert report.items[0].task == "dag.orphan"


def test_running_pods_accrue_cost_up_to_now() -> None:
    live = pod(key("long"), tier="medium", started=NOW - timedelta(minutes=90))
    assert build_report([], [live], CONFIG, now=NOW).total.cost == Decimal("0.12")
    later = build_report([], [live], CONFIG, now=NOW + timedelta(minutes=30))
    assert later.total.cost == Decimal("0.16")
    assert later.now == NOW + timedelta(minutes=30)


def test_a_pending_pod_that_has_not_started_accrues_nothing() -> None:
    live = pod(key("waiting"), tier="gpu", phase="Pending")
    report = build_report([], [live], CONFIG, now=NOW)
    assert report.total.pods == 1
    assert report.total.cost == 0


def test_a_result_without_timestamps_uses_the_live_pods_observed_runtime() -> None:
    task_key = key("timed-out")
    recorded = result(task_key, "light", None, state=FAILED)  # e.g. failed while the pod was still running
    live = pod(task_key, tier="light", started=NOW - timedelta(hours=2))
    report = build_report([recorded], [live], CONFIG, now=NOW)
    assert report.total.pods == 1
    assert report.total.cost == Decimal("0.04")
    assert report.items[0].state == FAILED


def test_results_and_live_pods_of_different_tasks_are_both_counted() -> None:
    finished = result(key("done"), "light", 1)
    running = pod(key("busy"), tier="light", started=NOW - timedelta(hours=1))
    report = build_report([finished], [running], CONFIG, now=NOW)
    assert report.total.pods == 2
    assert report.total.cost == Decimal("0.04")


def test_an_unknown_or_missing_tier_is_billed_at_the_default_tier_and_flagged() -> None:
    odd = result(key("odd"), "platinum", 1)
    bare = pod(key("bare"), tier=None, started=NOW - timedelta(hours=1))
    report = build_report([odd], [bare], CONFIG, now=NOW)
    assert report.total.cost == Decimal("0.16")  # 2 x medium ($0.08)
    assert {item.pod: (item.tier, item.tier_label, item.tier_assumed) for item in report.items} == {
        identity.pod_name(key("odd")): ("medium", "platinum", True),
        identity.pod_name(key("bare")): ("medium", "", True),
    }
    assert set(report.assumed_tier_pods) == {identity.pod_name(key("odd")), identity.pod_name(key("bare"))}
    assert any("default tier" in note for note in report.notes)


def test_a_default_tier_missing_from_the_config_is_an_error_not_a_free_pod() -> None:
    config = ExecutorConfig(default_tier="nope")
    with pytest.raises(CostError, match="default_tier 'nope'"):
        build_report([result(key("x"), "mystery", 1)], [], config, now=NOW)


def test_placeholder_pods_are_not_billed_to_tasks() -> None:
    balloon = pod(None, tier="light", started=NOW - timedelta(hours=4), placeholder=True)
    report = build_report([], [balloon], CONFIG, now=NOW)
    assert report.items == ()
    assert report.total.cost == 0


def test_a_naive_now_is_rejected() -> None:
    with pytest.raises(CostError, match="timezone-aware"):
        build_report([], [], CONFIG, now=datetime(2024, 6, 1, 12, 0))


def test_now_in_another_timezone_means_the_same_instant() -> None:
    live = pod(key("tz"), tier="medium", started=NOW - timedelta(hours=1))
    eastern = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert build_report([], [live], CONFIG, now=eastern).total.cost == Decimal("0.08")


# -- U = R_used / R_requested ----------------------------------------------------------------------
def test_container_usage_is_summed_from_metrics_quantities() -> None:
    item = metrics_item("p", {"cpu": "250000000n", "memory": "123456Ki"}, {"cpu": "50m", "memory": "1Mi"})
    assert container_usage(item) == {"cpu": Decimal("0.3"), "memory": Decimal(123456 * 1024 + 1024 * 1024)}


def test_utilization_is_usage_over_requests_per_pod_and_resource() -> None:
    live = pod(key("u"), requests={"cpu": "500m", "memory": "1Gi"}, started=NOW)
    item = metrics_item(
        identity.pod_name(key("u")),
        {"cpu": "250000000n", "memory": "262144Ki"},
        {"cpu": "50000000n", "memory": "262144Ki"},
    )
    rows = {row.resource: row for row in compute_utilization([live], [item])}
    assert rows["cpu"].used == Decimal("0.3")
    assert rows["cpu"].requested == Decimal("0.5")
    assert rows["cpu"].ratio == pytest.approx(0.6)
    assert rows["memory"].ratio == pytest.approx(0.5)


def test_utilization_of_an_unrequested_resource_is_none_not_a_division_error() -> None:
    live = pod(key("u"), requests={"cpu": "1"}, started=NOW)
    item = metrics_item(identity.pod_name(key("u")), {"cpu": "500m", "memory": "64Mi"})
    rows = {row.resource: row for row in compute_utilization([live], [item])}
    assert rows["cpu"].ratio == pytest.approx(0.5)
    assert rows["memory"].requested == 0
    assert rows["memory"].ratio is None


def test_malformed_usage_quantities_are_skipped() -> None:
    item = metrics_item("p", {"cpu": "lots", "memory": "1Ki"})
    assert container_usage(item) == {"memory": Decimal(1024)}


def test_pods_without_metrics_get_no_utilization_rows() -> None:
    live = pod(key("u"), requests={"cpu": "1"}, started=NOW)
    assert compute_utilization([live], [metrics_item("someone-else", {"cpu": "1"})]) == ()


def test_mean_utilization_of_a_group_is_over_pods_where_it_is_known() -> None:
    a, b, c = key("a", dag_id="d"), key("b", dag_id="d"), key("c", dag_id="d")
    pods = [pod(k, requests={"cpu": "1", "memory": "1Gi"}, started=NOW - timedelta(hours=1)) for k in (a, b, c)]
    metrics = [
        metrics_item(identity.pod_name(a), {"cpu": "200m", "memory": "512Mi"}),
        metrics_item(identity.pod_name(b), {"cpu": "600m", "memory": "256Mi"}),
    ]
    util = UtilizationResult(compute_utilization(pods, metrics))
    report = build_report([], pods, CONFIG, now=NOW, utilization=util)
    (dag_line,) = report.by_dag
    assert dag_line.cpu_utilization == pytest.approx(0.4)
    assert dag_line.memory_utilization == pytest.approx(0.375)
    assert {line.name: line.cpu_utilization for line in report.by_task}["d.c"] is None


def test_an_unavailable_metrics_api_is_reported_in_the_notes_and_costs_still_add_up() -> None:
    util = UtilizationResult(available=False, message="metrics API (metrics.k8s.io) is not available")
    live = pod(key("x"), started=NOW - timedelta(hours=1))
    report = build_report([], [live], CONFIG, now=NOW, utilization=util)
    assert not report.utilization_available
    assert report.total.cost == Decimal("0.02")
    assert report.total.cpu_utilization is None
    assert any("metrics.k8s.io" in note for note in report.notes)


# -- rendering -------------------------------------------------------------------------------------
def sample_report():
    results = [result(key(f"t{i}", dag_id="light_dag"), "light", 0.5) for i in range(3)]
    results.append(result(key("big", dag_id="ml"), "gpu", 2))
    return build_report(results, [], CONFIG, now=NOW)


def test_the_table_has_a_header_one_row_per_group_and_a_total_row() -> None:
    text = render_table(sample_report(), "dag")
    lines = text.rstrip("\n").splitlines()
    assert lines[0].split() == ["DAG", "PODS", "HOURS", "COST", "CPU", "UTIL", "MEM", "UTIL"]
    assert lines[2].split() == ["ml", "1", "2.0000", "$3.0000", "-", "-"]
    assert lines[3].split() == ["light_dag", "3", "1.5000", "$0.0300", "-", "-"]
    assert set(lines[4]) == {"-", " "}
    assert lines[5].split() == ["TOTAL", "4", "3.5000", "$3.0300", "-", "-"]


def test_the_table_columns_are_aligned() -> None:
    lines = render_table(sample_report(), "task").rstrip("\n").splitlines()
    rows = [line for line in lines if not set(line) <= {"-", " "}]
    # Right-aligned numeric columns: the COST column ends at the same offset on every row.
    ends = {m.end() for line in rows for m in [re.search(r"\$\d+\.\d{4}", line)] if m}
    assert len(ends) == 1
    assert lines[0].index("COST") + len("COST") == ends.pop()


def test_the_table_shows_utilization_as_percentages() -> None:
    live = pod(key("u"), requests={"cpu": "1", "memory": "1Gi"}, started=NOW - timedelta(hours=1))
    util = UtilizationResult(
        compute_utilization([live], [metrics_item(identity.pod_name(key("u")), {"cpu": "250m", "memory": "512Mi"})])
    )
    text = render_table(build_report([], [live], CONFIG, now=NOW, utilization=util), "tier")
    assert text.splitlines()[2].split() == ["light", "1", "1.0000", "$0.0200", "25.0%", "50.0%"]


@pytest.mark.parametrize("by", ["pod", "", "TIER"])
def test_an_unknown_grouping_is_a_value_error_naming_the_allowed_ones(by: str) -> None:
    with pytest.raises(ValueError, match="allowed: task, dag, tier"):
        render_table(sample_report(), by)


def test_the_plot_is_written_as_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    target = plot(sample_report(), tmp_path / "cost.png", by="tier")
    assert target == tmp_path / "cost.png"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_rejects_an_unknown_grouping_before_writing(tmp_path) -> None:
    with pytest.raises(ValueError, match="allowed"):
        plot(sample_report(), tmp_path / "x.png", by="node")
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_the_plot_error_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ExecutorError, match=re.escape("pip install '.[plot]'")):
        plot(sample_report(), tmp_path / "cost.png")


# -- over HTTP against the fake API server -----------------------------------------------------------
NS = "airflow"


def launch(kube: KubeClient, task_key: TaskKey, tier: str, requests: dict[str, str], **annotations: str) -> str:
    """A task pod as the executor labels it; the fake runs it per the fakekube/* annotations."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": identity.pod_name(task_key),
            "labels": {**identity.task_labels(task_key, "default"), identity.LABEL_TIER: tier},
            "annotations": {
                **identity.task_annotations(task_key),
                **{f"fakekube/{k.replace('_', '-')}": v for k, v in annotations.items()},
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "base", "image": "apache/airflow:2.8.0", "resources": {"requests": requests}}],
        },
    }
    return str(kube.create_pod(NS, manifest)["metadata"]["name"])


def test_utilization_is_read_from_the_metrics_api_of_running_pods(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
) -> None:
    name = launch(kube, key("busy"), "light", {"cpu": "250m", "memory": "512Mi"}, outcome="hang", cpu_usage="0.4")
    fake_kube.cluster.wait_for_phase(NS, name, "Running")
    pods = kube.list_pods(NS).items
    util = gather_utilization(kube, NS, pods)
    assert util.available
    rows = {row.resource: row for row in util.rows}
    assert rows["cpu"].used == Decimal("0.1")  # served as nanocores: "100000000n"
    assert rows["cpu"].ratio == pytest.approx(0.4)
    assert rows["memory"].used == 256 * 1024 * 1024  # served as Ki
    assert rows["memory"].ratio == pytest.approx(0.5)


def test_an_absent_metrics_api_yields_no_rows_and_says_so(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
) -> None:
    fake_kube.configure(metrics_enabled=False)
    name = launch(kube, key("busy"), "light", {"cpu": "250m"}, outcome="hang")
    fake_kube.cluster.wait_for_phase(NS, name, "Running")
    util = gather_utilization(kube, NS, kube.list_pods(NS).items)
    assert (util.rows, util.available) == ((), False)
    assert "metrics-server" in util.message


def test_a_forbidden_metrics_api_yields_no_rows_and_names_the_missing_permission(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
) -> None:
    fake_kube.faults.fail_next("GET", path="^/apis/metrics.k8s.io/", status=403)
    util = gather_utilization(kube, NS, [])
    assert not util.available
    assert "forbidden" in util.message and "pods.metrics.k8s.io" in util.message


def test_the_gathered_report_combines_results_with_live_pods_without_double_counting(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    tmp_path,
) -> None:
    config = ExecutorConfig(namespace=NS)
    busy = launch(
        kube, key("busy", dag_id="ml"), "gpu", {"cpu": "2", "memory": "8Gi"}, outcome="hang", cpu_usage="0.25"
    )
    kept = launch(kube, key("kept"), "heavy", {"cpu": "2", "memory": "4Gi"}, outcome="fail")
    for name, phase in ((busy, "Running"), (kept, "Failed")):
        fake_kube.cluster.wait_for_phase(NS, name, phase)
    running = kube.get_pod(NS, busy)["status"]["containerStatuses"][0]["state"]["running"]
    started = datetime.fromisoformat(running["startedAt"].replace("Z", "+00:00"))
    now = started + timedelta(minutes=30)
    spool = Spool(tmp_path / "intake")
    spool.record(result(key("kept"), "heavy", 1, state=FAILED))  # its failed pod was kept
    spool.record(result(key("gone"), "light", 0.5))  # its pod was deleted on success
    report = gather_report(config, spool.read_results(), kube, now=now)
    assert report.total.pods == 3
    by_pod = {item.pod: item for item in report.items}
    assert by_pod[busy].cost == Decimal("0.75")  # gpu $1.50/h x 0.5 h, accrued up to now
    assert by_pod[busy].cpu_utilization == pytest.approx(0.25)
    assert by_pod[kept].source == "result" and by_pod[kept].cost == Decimal("0.16")
    assert report.total.cost == Decimal("0.75") + Decimal("0.16") + Decimal("0.01")
    assert report.utilization_available


def test_without_cluster_access_the_report_covers_recorded_results_only() -> None:
    report = gather_report(CONFIG, [result(key("a"), "light", 0.5), result(key("b"), "light", 0.5)], None, now=NOW)
    assert report.total.cost == Decimal("0.02")
    assert not report.utilization_available
    assert "recorded results only" in report.utilization_message
